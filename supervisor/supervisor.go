package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ChildExitError reports that the child ended on its own.
type ChildExitError struct{ Exit Exit }

func (e *ChildExitError) Error() string {
	return fmt.Sprintf("child exited on its own (%s) after %s", e.Exit.ProcessExit, e.Exit.Ran.Round(time.Millisecond))
}

// Supervisor is the driver loop: it starts the child, turns vipvisor's
// signals into actions on it, reports to systemd and pings its watchdog.
type Supervisor struct {
	child    *Child
	notifier *Notifier
	log      *slog.Logger

	signals  chan os.Signal
	stopping bool
}

// New returns a Supervisor for child.
func New(child *Child, notifier *Notifier, log *slog.Logger) *Supervisor {
	return &Supervisor{child: child, notifier: notifier, log: log, signals: make(chan os.Signal, 8)}
}

// handled are the signals vipvisor acts on. SIGQUIT stops like SIGTERM
// because container images of nginx declare it as their stop signal.
var handled = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT,
	syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2,
}

// Run starts the child and drives it until it has stopped: nil after a
// graceful stop asked for by a signal or by ctx, a *ChildExitError when the
// child ended on its own, another error when it could not start.
func (s *Supervisor) Run(ctx context.Context) error {
	signal.Notify(s.signals, handled...)
	defer signal.Stop(s.signals)
	if _, err := s.child.Start(); err != nil {
		return err
	}
	s.notifier.Ready(s.status())
	var watchdog <-chan time.Time
	if d := s.notifier.WatchdogInterval(); d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		watchdog = t.C
		s.notifier.Watchdog()
	}
	done := ctx.Done()
	for {
		select {
		case sig := <-s.signals:
			s.onSignal(sig.(syscall.Signal))
		case <-done:
			done = nil
			s.stop("context ended")
		case ex := <-s.child.Exits():
			if s.stopping {
				s.log.Info("stopped", "child_status", ex.ProcessExit.String())
				return nil
			}
			return &ChildExitError{Exit: ex}
		case <-watchdog:
			s.notifier.Watchdog()
		}
	}
}

func (s *Supervisor) onSignal(sig syscall.Signal) {
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT:
		if s.stopping {
			s.log.Warn("second stop signal: killing the child now", "signal", Signal(sig).String())
			s.child.Kill()
			return
		}
		s.stop("signal " + Signal(sig).String())
	case syscall.SIGHUP:
		s.reload()
	default:
		s.forward(sig)
	}
}

// stop begins the graceful stop; Run returns when the child's exit arrives.
func (s *Supervisor) stop(why string) {
	s.stopping = true
	s.log.Info("stopping", "reason", why)
	s.notifier.Stopping(fmt.Sprintf("stopping %s (%s)", s.child.Name(), why))
	s.child.Stop()
}

func (s *Supervisor) reload() {
	s.notifier.Reloading()
	if err := s.child.Reload(); err != nil {
		s.log.Warn("reload not delivered", "err", err)
	} else {
		s.log.Info("reload signal sent", "pid", s.child.PID(), "signal", Signal(s.child.reloadSig).String())
	}
	s.notifier.Ready(s.status())
}

func (s *Supervisor) forward(sig syscall.Signal) {
	if err := s.child.Signal(sig); err != nil {
		s.log.Warn("signal not forwarded", "signal", Signal(sig).String(), "err", err)
		return
	}
	s.log.Info("signal forwarded", "signal", Signal(sig).String(), "pid", s.child.PID())
}

func (s *Supervisor) status() string {
	if pid := s.child.PID(); pid != 0 {
		return fmt.Sprintf("%s running (pid %d)", s.child.Name(), pid)
	}
	return s.child.Name() + " not running"
}
