package supervisor

import (
	"fmt"
	"time"
)

// The health policy, as the user-facing contract states it: a failure is
// answered by restarting the child while the VRRP state is left alone; a
// second failure within RESTART_WINDOW (once RESTARTS are used up), or no
// health within START_TIMEOUT of a start, makes vipvisor yield — priority
// 0 at once, VIPs removed, FAULT — and then ON_YIELD decides: retry with
// backoff and rejoin as BACKUP once healthy, or give up and exit 3.
//
// The backoff between tries after a yield is 1 s, doubling with every
// failure up to 30 s. It starts over only once a run has stayed healthy
// for RESTART_WINDOW (the run has "settled"): a child that passes its
// probes for a moment between failures, or one with no probe that counts
// as healthy while it runs, is still backed off further.
//
// A probe verdict judges only the run that is current when it was
// decided: one decided before the run started, or arriving while no run
// is current (between runs, or while the failed one is being stopped), is
// discarded, so a leftover process answering the port cannot make a fresh
// child look healthy.
//
// policy is pure like the VRRP state machine: the driver feeds it events
// with the time and carries out the actions it returns, so every rule is
// a row of a table test.

// Backoff between tries after a yield: 1 s, doubling, at most 30 s.
const (
	firstBackoff = time.Second
	maxBackoff   = 30 * time.Second
)

type phase int

const (
	phStarting phase = iota // started; healthy within START_TIMEOUT, or a failure
	phHealthy               // settles after RESTART_WINDOW if restarts or backoff are to start over
	phStopping              // a child that failed but still runs is being stopped
	phWaiting               // yielded; the next try starts at the deadline
	phGaveUp                // ON_YIELD=exit: nothing more to do
)

var phaseNames = [...]string{"starting", "healthy", "stopping", "waiting", "gave up"}

func (p phase) String() string { return phaseNames[p] }

// policyEvent is an input of the policy.
type policyEvent interface{ isPolicyEvent() }

type (
	evStarted struct{}                // a child process started
	evExited  struct{ reason string } // the child process ended
	evHealth  struct {
		healthy bool
		reason  string
	} // the probes' verdict changed
	evTimeout struct{} // the deadline passed
)

func (evStarted) isPolicyEvent() {}
func (evExited) isPolicyEvent()  {}
func (evHealth) isPolicyEvent()  {}
func (evTimeout) isPolicyEvent() {}

// policyAction is an output of the policy, for the driver to carry out.
type policyAction interface{ isPolicyAction() }

type (
	acStart       struct{}                // start a new child process
	acStop        struct{}                // stop the running child: stop signal, SIGKILL after STOP_TIMEOUT
	acEligible    struct{ on bool }       // tell VRRP whether this node may become master
	acYield       struct{ reason string } // VRRP fault on: priority 0 if master, VIPs removed, FAULT
	acRejoin      struct{}                // VRRP fault off: back to BACKUP, VRRP decides
	acGiveUp      struct{ reason string } // stop everything and exit 3
	acResetHealth struct{}                // a new child: the probes' counts start over
	acSettled     struct{}                // healthy for RESTART_WINDOW: restarts and backoff start over
)

func (acStart) isPolicyAction()       {}
func (acStop) isPolicyAction()        {}
func (acEligible) isPolicyAction()    {}
func (acYield) isPolicyAction()       {}
func (acRejoin) isPolicyAction()      {}
func (acGiveUp) isPolicyAction()      {}
func (acResetHealth) isPolicyAction() {}
func (acSettled) isPolicyAction()     {}

// policy holds the counts and the phase; its zero value is not usable,
// see newPolicy.
type policy struct {
	restarts     int
	window       time.Duration
	startTimeout time.Duration
	exitOnYield  bool

	phase    phase
	used     int       // restarts used since the count last started fresh
	lastFail time.Time // when the last failure happened
	started  time.Time // when the current run started
	yielded  bool
	backoff  time.Duration // the wait before the latest try; 0 once a run settled
	deadline time.Time     // START_TIMEOUT, the end of the backoff, or settling
}

func newPolicy(c *Config) *policy {
	return &policy{restarts: c.Restarts, window: c.RestartWindow, startTimeout: c.StartTimeout, exitOnYield: c.OnYield == "exit"}
}

// handle applies ev at now and returns the actions to carry out in order.
func (p *policy) handle(now time.Time, ev policyEvent) []policyAction {
	switch ev := ev.(type) {
	case evStarted:
		p.phase, p.started = phStarting, now
		p.deadline = now.Add(p.startTimeout)
		return []policyAction{acResetHealth{}}
	case evHealth:
		return p.health(now, ev)
	case evExited:
		return p.exited(now, ev.reason)
	case evTimeout:
		return p.timeout(now)
	}
	return nil
}

// stale says why a verdict decided at `at` does not judge the current
// run, or "" when it does.
func (p *policy) stale(at time.Time) string {
	switch {
	case p.phase == phStopping:
		return "the failed child is being stopped"
	case p.phase != phStarting && p.phase != phHealthy:
		return "no child runs"
	case at.Before(p.started):
		return "it was decided before the current child started"
	}
	return ""
}

func (p *policy) health(now time.Time, ev evHealth) []policyAction {
	if p.stale(now) != "" {
		return nil
	}
	switch {
	case ev.healthy && p.phase == phStarting:
		p.phase, p.deadline = phHealthy, time.Time{}
		if p.used > 0 || p.backoff > 0 {
			p.deadline = now.Add(p.window) // settles then, unless it fails first
		}
		acts := []policyAction{acEligible{on: true}}
		if p.yielded {
			p.yielded = false
			acts = append(acts, acRejoin{})
		}
		return acts
	case !ev.healthy && p.phase == phHealthy:
		return p.fail(now, ev.reason, true)
	}
	return nil
}

func (p *policy) exited(now time.Time, reason string) []policyAction {
	switch p.phase {
	case phStopping:
		return p.afterStop(now)
	case phStarting, phHealthy:
		return p.fail(now, reason, false)
	}
	return nil
}

func (p *policy) timeout(now time.Time) []policyAction {
	if p.deadline.IsZero() || now.Before(p.deadline) {
		return nil
	}
	p.deadline = time.Time{}
	switch p.phase {
	case phStarting:
		return p.fail(now, fmt.Sprintf("not healthy within START_TIMEOUT (%s)", p.startTimeout), true)
	case phWaiting:
		p.phase = phStarting
		return []policyAction{acStart{}}
	case phHealthy:
		// Healthy for a whole RESTART_WINDOW: the failures before are
		// too long ago to count.
		p.used, p.backoff = 0, 0
		return []policyAction{acSettled{}}
	}
	return nil
}

// fail handles one failure of the child; running says whether its
// process still has to be stopped.
func (p *policy) fail(now time.Time, reason string, running bool) []policyAction {
	p.deadline = time.Time{}
	if !p.lastFail.IsZero() && now.Sub(p.lastFail) > p.window {
		p.used = 0 // the previous failure is too long ago to count
	}
	p.lastFail = now
	acts := []policyAction{acEligible{on: false}}
	switch {
	case p.yielded:
		// Already yielded: a try failed; back off further.
		p.backoff = nextBackoff(p.backoff)
	case p.used < p.restarts:
		p.used++
	case p.exitOnYield:
		p.phase = phGaveUp
		return append(acts, acYield{reason: reason}, acGiveUp{reason: reason})
	default:
		// Yielded again before a run settled: back off further.
		p.yielded, p.backoff = true, nextBackoff(p.backoff)
		acts = append(acts, acYield{reason: reason})
	}
	if running {
		p.phase = phStopping
		return append(acts, acStop{})
	}
	return append(acts, p.afterStop(now)...)
}

// afterStop continues once the failed child is gone: at once for a
// restart, after the backoff while yielded.
func (p *policy) afterStop(now time.Time) []policyAction {
	if p.yielded {
		p.phase, p.deadline = phWaiting, now.Add(p.backoff)
		return nil
	}
	// Starting until the driver reports the start (or its failure, as
	// an exit).
	p.phase = phStarting
	return []policyAction{acStart{}}
}

// nextBackoff is the wait after b: 1 s first, then doubling up to 30 s.
func nextBackoff(b time.Duration) time.Duration {
	if b == 0 {
		return firstBackoff
	}
	return min(2*b, maxBackoff)
}
