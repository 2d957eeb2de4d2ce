package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
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
	current  Status // owned by the driver loop
	status   atomic.Pointer[Status]
}

// New returns a Supervisor for child; version is reported in its status.
func New(child *Child, notifier *Notifier, log *slog.Logger, version string) *Supervisor {
	s := &Supervisor{child: child, notifier: notifier, log: log, signals: make(chan os.Signal, 8)}
	s.current = Status{Version: version, Child: ChildStatus{Command: child.Name()}}
	snap := s.current
	s.status.Store(&snap)
	return s
}

// Status returns the latest snapshot; it is safe to call from any
// goroutine.
func (s *Supervisor) Status() Status { return *s.status.Load() }

// publish makes the loop's view visible to Status and to systemd.
func (s *Supervisor) publish() {
	snap := s.current
	s.status.Store(&snap)
	s.notifier.Status(snap.Summary())
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
	if err := s.start(); err != nil {
		return err
	}
	s.notifier.Ready(s.current.Summary())
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
			s.exited(ex)
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

func (s *Supervisor) start() error {
	pid, err := s.child.Start()
	if err != nil {
		return err
	}
	c := &s.current.Child
	c.PID, c.Running, c.Since = pid, true, time.Now()
	c.Starts++
	s.publish()
	return nil
}

func (s *Supervisor) exited(ex Exit) {
	c := &s.current.Child
	c.PID, c.Running, c.Since = 0, false, time.Time{}
	c.LastExit = ex.ProcessExit.String()
	if !ex.Stopped {
		c.Crashes++
	}
	s.publish()
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
	s.current.Stopping = true
	s.log.Info("stopping", "reason", why)
	s.notifier.Stopping(s.current.Summary())
	s.publish()
	s.child.Stop()
}

func (s *Supervisor) reload() {
	s.notifier.Reloading()
	if err := s.child.Reload(); err != nil {
		s.log.Warn("reload not delivered", "err", err)
	} else {
		s.log.Info("reload signal sent", "pid", s.child.PID(), "signal", Signal(s.child.reloadSig).String())
	}
	s.notifier.Ready(s.current.Summary())
}

func (s *Supervisor) forward(sig syscall.Signal) {
	if err := s.child.Signal(sig); err != nil {
		s.log.Warn("signal not forwarded", "signal", Signal(sig).String(), "err", err)
		return
	}
	s.log.Info("signal forwarded", "signal", Signal(sig).String(), "pid", s.child.PID())
}
