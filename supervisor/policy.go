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
	phHealthy
	phStopping // a child that failed but still runs is being stopped
	phWaiting  // yielded; the next try starts at the deadline
	phGaveUp   // ON_YIELD=exit: nothing more to do
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
)

func (acStart) isPolicyAction()       {}
func (acStop) isPolicyAction()        {}
func (acEligible) isPolicyAction()    {}
func (acYield) isPolicyAction()       {}
func (acRejoin) isPolicyAction()      {}
func (acGiveUp) isPolicyAction()      {}
func (acResetHealth) isPolicyAction() {}

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
	yielded  bool
	backoff  time.Duration // wait before the next try while yielded
	deadline time.Time     // START_TIMEOUT, or the end of the backoff
	reason   string        // why the child was last judged failed
}

func newPolicy(c *Config) *policy {
	return &policy{restarts: c.Restarts, window: c.RestartWindow, startTimeout: c.StartTimeout, exitOnYield: c.OnYield == "exit"}
}

// handle applies ev at now and returns the actions to carry out in order.
func (p *policy) handle(now time.Time, ev policyEvent) []policyAction {
	switch ev := ev.(type) {
	case evStarted:
		p.phase = phStarting
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

func (p *policy) health(now time.Time, ev evHealth) []policyAction {
	switch {
	case ev.healthy && p.phase == phStarting:
		p.phase, p.deadline = phHealthy, time.Time{}
		acts := []policyAction{acEligible{on: true}}
		if p.yielded {
			p.yielded, p.backoff = false, 0
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
	}
	return nil
}

// fail handles one failure of the child; running says whether its
// process still has to be stopped.
func (p *policy) fail(now time.Time, reason string, running bool) []policyAction {
	p.reason = reason
	if !p.lastFail.IsZero() && now.Sub(p.lastFail) > p.window {
		p.used = 0 // the previous failure is too long ago to count
	}
	p.lastFail = now
	acts := []policyAction{acEligible{on: false}}
	switch {
	case p.yielded:
		// Already yielded: a try failed; back off further.
		p.backoff = min(2*p.backoff, maxBackoff)
	case p.used < p.restarts:
		p.used++
	case p.exitOnYield:
		p.phase = phGaveUp
		return append(acts, acYield{reason: reason}, acGiveUp{reason: reason})
	default:
		p.yielded, p.backoff = true, firstBackoff
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
