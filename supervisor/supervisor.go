package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vipvisor/vipvisor/probes"
	"github.com/vipvisor/vipvisor/vrrp"
)

// ErrGaveUp is returned by Run when ON_YIELD=exit gave up on the child.
var ErrGaveUp = errors.New("gave up on the child")

// Router is the node's VRRP instances as the supervisor drives them, all
// at once; vrrp.Group is the real one.
type Router interface {
	Run(ctx context.Context) error
	SetHealthy(healthy bool)
	SetFault(source string, on bool)
	Shutdown() <-chan struct{}
	Changes() <-chan vrrp.Change
	Status() []vrrp.InstanceStatus
}

// Process is the supervised child as the driver uses it: one run at a
// time, started, signalled and stopped, its ends delivered on Exits.
// *Child is the real one; the seam exists so that the loop's tests can
// drive a fake inside a testing/synctest bubble, where no real process
// can be waited for.
type Process interface {
	// Start starts a new run and returns its pid.
	Start() (pid int, err error)
	// Stop asks the run to end gracefully (SIGKILL after the stop
	// timeout); the channel is closed once it has ended.
	Stop() <-chan struct{}
	// Kill ends the run at once.
	Kill()
	// PID is the running process's pid, or 0 once it has ended.
	PID() int
	// Exits delivers every end of a run, in order.
	Exits() <-chan Exit
	// Name is the program's base name, e.g. "nginx".
	Name() string
	// Signal sends sig to the running process.
	Signal(sig syscall.Signal) error
	// Reload sends the reload signal, ReloadSignal.
	Reload() error
	ReloadSignal() syscall.Signal
	// RefuseConnections resets, until the next Start, the connections
	// sockets held for the child queue: it has yielded.
	RefuseConnections()
}

// Supervisor is the driver loop: it starts the child and the VRRP
// instance, turns vipvisor's signals into actions on them, reports to
// systemd and pings its watchdog.
type Supervisor struct {
	child    Process
	router   Router
	hook     *Hook
	notifier *Notifier
	log      *slog.Logger
	health   Health // the child's probes; nil: a running child is healthy
	gateway  Health // TRACK_GATEWAY; nil when not set
	policy   *policy

	// The loop's clock, real unless a test sets another (see clock.go).
	now      func() time.Time
	newTimer func(d time.Duration) timer

	signals    chan os.Signal
	verdicts   chan probes.Verdict
	gwVerdicts chan probes.Verdict
	stopping   bool
	failure    error           // what Run returns once stopped
	handover   <-chan struct{} // closed once the router let its VIPs go
	ready      bool            // READY=1 sent
	current    Status          // owned by the driver loop
	status     atomic.Pointer[Status]
}

// Health is a prober as the supervisor drives it; probes.Prober is the
// real one.
type Health interface {
	Run(ctx context.Context, out chan<- probes.Verdict)
	Reset()
}

// Parts are what a Supervisor drives. Hook, Health and Gateway may be nil.
type Parts struct {
	Child    Process
	Router   Router
	Hook     *Hook
	Notifier *Notifier
	Health   Health
	Gateway  Health
}

// New returns a Supervisor; cfg gives the health policy, version is
// reported in the status.
func New(p Parts, cfg *Config, log *slog.Logger, version string) *Supervisor {
	s := &Supervisor{
		child: p.Child, router: p.Router, hook: p.Hook, notifier: p.Notifier, health: p.Health, gateway: p.Gateway,
		policy: newPolicy(cfg), log: log, now: time.Now, newTimer: newRealTimer,
		signals: make(chan os.Signal, 8), verdicts: make(chan probes.Verdict), gwVerdicts: make(chan probes.Verdict),
	}
	s.current = Status{Version: version, Child: ChildStatus{Command: p.Child.Name(), RestartsAllowed: cfg.Restarts}}
	s.current.setVRRP(p.Router.Status())
	snap := s.current
	s.status.Store(&snap)
	return s
}

// Status returns the latest snapshot, with the router's counters as they
// are now; it is safe to call from any goroutine.
func (s *Supervisor) Status() Status {
	snap := *s.status.Load()
	snap.setVRRP(s.router.Status())
	return snap
}

// publish makes the loop's view visible to Status and to systemd.
func (s *Supervisor) publish() {
	snap := s.current
	s.status.Store(&snap)
	s.notifier.Status(snap.Summary())
}

// statusRefresh is how often STATUS= is brought up to date between
// changes.
const statusRefresh = time.Second

// handled are the signals vipvisor acts on. SIGQUIT stops like SIGTERM
// because container images of nginx declare it as their stop signal.
var handled = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT,
	syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2,
}

// Run starts the VRRP instance, the child and the probes and drives them
// until they have stopped: nil after a graceful stop asked for by a signal
// or by ctx, ErrGaveUp when ON_YIELD=exit gave up on the child, another
// error when the child could not start at all or VRRP failed.
func (s *Supervisor) Run(ctx context.Context) error {
	signal.Notify(s.signals, handled...)
	defer signal.Stop(s.signals)
	defer s.hook.Close()
	// The router gets a context of its own: ctx ending asks for the
	// graceful handover, not for the hard stop a cancelled router does.
	rctx, cancel := context.WithCancel(context.Background())
	routerDone := make(chan error, 1)
	routerExited := make(chan struct{})
	go func() { routerDone <- s.router.Run(rctx); close(routerExited) }()
	defer func() { cancel(); <-routerExited }()

	// The first start is the only one whose failure ends vipvisor: a
	// command that cannot run at all is a runtime error, not a health
	// problem to retry.
	if err := s.startChild(); err != nil {
		return err
	}
	pctx, stopProbes := context.WithCancel(context.Background())
	defer stopProbes()
	if s.health != nil {
		go s.health.Run(pctx, s.verdicts)
	}
	if s.gateway != nil {
		go s.gateway.Run(pctx, s.gwVerdicts)
	}
	return s.loop(ctx, routerDone)
}

func (s *Supervisor) loop(ctx context.Context, routerDone <-chan error) error {
	// The watchdog is pinged from this loop, so a loop that is stuck
	// stops the pings and systemd notices.
	interval := s.notifier.WatchdogInterval()
	var watchdog <-chan time.Time
	var pinger timer
	if interval > 0 {
		pinger = s.newTimer(interval)
		defer pinger.Stop()
		watchdog = pinger.C()
		s.notifier.Watchdog()
	}
	// STATUS= also says what changes without a transition (a split
	// brain seen, and when): it is refreshed every second while systemd
	// listens, and sent only when the line differs.
	var refresh <-chan time.Time
	var refresher timer
	if s.notifier.Active() {
		refresher = s.newTimer(statusRefresh)
		defer refresher.Stop()
		refresh = refresher.C()
	}
	done := ctx.Done()
	timer := s.newTimer(time.Hour)
	defer timer.Stop()
	for {
		s.arm(timer)
		select {
		case sig := <-s.signals:
			s.onSignal(sig.(syscall.Signal))
		case <-done:
			done = nil
			s.stop("context ended")
		case c := <-s.router.Changes():
			s.changed(c)
		case <-s.handover:
			// The peer has the VIPs: only now is the child stopped, so
			// clients were served throughout.
			s.handover = nil
			if s.stopChild() {
				return s.failure
			}
		case err := <-routerDone:
			routerDone = nil
			if err == nil && s.stopping {
				continue
			}
			if err == nil {
				err = errors.New("the instance stopped unasked")
			}
			s.failure = fmt.Errorf("vrrp: %w", err)
			s.log.Error("VRRP failed; stopping the child", "err", err)
			s.stopping = true
			if s.stopChild() {
				return s.failure
			}
		case ex := <-s.child.Exits():
			s.exited(ex)
			if s.stopping && s.child.PID() == 0 {
				s.log.Info("stopped", "child_status", ex.ProcessExit.String())
				s.drainChanges()
				return s.failure
			}
		case v := <-s.verdicts:
			s.verdict(v)
		case v := <-s.gwVerdicts:
			s.gatewayVerdict(v)
		case <-timer.C():
			s.apply(s.policy.handle(s.now(), evTimeout{}))
		case <-watchdog:
			s.notifier.Watchdog()
			pinger.Reset(interval)
		case <-refresh:
			s.current.setVRRP(s.router.Status())
			s.publish()
			refresher.Reset(statusRefresh)
		}
	}
}

// stopChild stops the child for good; it reports true when there is none
// to wait for (between restarts, or after giving up), so Run can return.
func (s *Supervisor) stopChild() (gone bool) {
	if s.child.PID() == 0 {
		s.drainChanges()
		return true
	}
	s.child.Stop()
	return false
}

// drainChanges reports the transitions the router made while stopping.
func (s *Supervisor) drainChanges() {
	for {
		select {
		case c := <-s.router.Changes():
			s.changed(c)
		default:
			return
		}
	}
}

func (s *Supervisor) changed(c vrrp.Change) {
	s.hook.Notify(c)
	s.current.setVRRP(s.router.Status())
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

// stop begins the graceful stop: the router hands the VIPs over first,
// then the child is stopped; Run returns when the child's exit arrives.
func (s *Supervisor) stop(why string) {
	s.stopping = true
	s.current.Stopping = true
	s.log.Info("stopping", "reason", why)
	s.notifier.Stopping(s.current.Summary())
	s.publish()
	s.handover = s.router.Shutdown()
}

func (s *Supervisor) reload() {
	s.notifier.Reloading()
	if err := s.child.Reload(); err != nil {
		s.log.Warn("reload not delivered", "err", err)
	} else {
		s.log.Info("reload signal sent", "pid", s.child.PID(), "signal", Signal(s.child.ReloadSignal()).String())
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
