package supervisor

import (
	"fmt"
	"time"

	"github.com/vipvisor/vipvisor/probes"
)

// This file is the driver's side of the health policy: it feeds the
// policy the child's starts, exits and probe verdicts, and carries out
// what the policy decides.

// startChild starts a child process and tells the policy.
func (s *Supervisor) startChild() error {
	pid, err := s.child.Start()
	if err != nil {
		return err
	}
	now := s.now()
	c := &s.current.Child
	c.PID, c.Running, c.Since, c.Healthy = pid, true, now, false
	c.Starts++
	s.publish()
	s.apply(s.policy.handle(now, evStarted{}))
	if s.health == nil {
		// No probe configured: a running child is a healthy one. That
		// alone never settles a retry: the backoff starts over only
		// after RESTART_WINDOW of it.
		s.apply(s.policy.handle(now, evHealth{healthy: true}))
	}
	return nil
}

// exited records the end of a run and tells the policy, unless vipvisor
// is stopping anyway.
func (s *Supervisor) exited(ex Exit) {
	c := &s.current.Child
	c.PID, c.Running, c.Since, c.Healthy = 0, false, time.Time{}, false
	c.LastExit = ex.ProcessExit.String()
	if !ex.Stopped {
		c.Crashes++
		c.Health = "exited: " + c.LastExit
	}
	s.publish()
	if !s.stopping {
		s.apply(s.policy.handle(ex.At, evExited{reason: "exited: " + ex.ProcessExit.String()}))
	}
}

// verdict passes a probe verdict to the policy if it judges the child
// that runs now: a leftover process of an earlier run, or another one on
// the port, can answer the probes while no child of ours runs.
func (s *Supervisor) verdict(v probes.Verdict) {
	if why := s.staleVerdict(v); why != "" {
		s.log.Debug("probe verdict discarded", "healthy", v.Healthy, "verdict", v.Reason, "because", why)
		return
	}
	if v.Healthy {
		s.log.Info("child healthy", "pid", s.current.Child.PID)
	} else {
		s.log.Warn("child unhealthy", "pid", s.current.Child.PID, "reason", v.Reason)
		s.current.Child.Health = v.Reason
	}
	s.apply(s.policy.handle(v.At, evHealth{healthy: v.Healthy, reason: v.Reason}))
}

// staleVerdict says why v does not judge the current run of the child,
// or "" when it does.
func (s *Supervisor) staleVerdict(v probes.Verdict) string {
	switch {
	case s.stopping:
		return "vipvisor is stopping"
	case !s.current.Child.Running:
		return "no child runs"
	case s.child.PID() != s.current.Child.PID:
		// Ended, its exit not yet handled by the loop.
		return "the child has exited"
	}
	return s.policy.stale(v.At)
}

// gatewayVerdict: a node that cannot reach its gateway is cut off and
// must neither hold nor take the VIP; that is a fault of the node, not
// of the child.
func (s *Supervisor) gatewayVerdict(v probes.Verdict) {
	if v.Healthy {
		s.log.Info("gateway reachable again")
	} else {
		s.log.Error("gateway unreachable: this node is cut off", "reason", v.Reason)
	}
	s.current.GatewayDown = !v.Healthy
	s.router.SetFault("gateway", !v.Healthy)
	s.publish()
}

// apply carries out the policy's actions in order.
func (s *Supervisor) apply(acts []policyAction) {
	for _, a := range acts {
		switch a := a.(type) {
		case acResetHealth:
			if s.health != nil {
				s.health.Reset()
			}
		case acSettled:
			s.log.Info("the child stayed healthy for RESTART_WINDOW: restarts and retry backoff start over", "pid", s.current.Child.PID)
		case acEligible:
			s.eligible(a.on)
		case acStart:
			s.restart()
		case acStop:
			s.log.Warn("stopping the failed child before it is started again", "pid", s.child.PID())
			s.child.Stop()
		case acYield:
			if s.policy.exitOnYield {
				s.log.Error("yielding: the child failed again", "reason", a.reason, "restarts", s.policy.used)
			} else {
				s.log.Error("yielding: the child failed again", "reason", a.reason, "restarts", s.policy.used, "retry_in", s.policy.backoff)
			}
			s.current.Yielded = true
			s.router.SetFault("child", true)
			s.child.RefuseConnections()
		case acRejoin:
			s.log.Info("the child is healthy again: rejoining as BACKUP")
			s.current.Yielded = false
			s.router.SetFault("child", false)
		case acGiveUp:
			s.log.Error("giving up on the child (VIPVISOR_ON_YIELD=exit)", "reason", a.reason)
			s.failure = fmt.Errorf("%w: %s", ErrGaveUp, a.reason)
			s.stop("gave up on the child")
		}
	}
	s.current.Child.Restarts = s.policy.used
	s.publish()
}

func (s *Supervisor) eligible(on bool) {
	s.current.Child.Healthy = on
	if on {
		s.current.Child.Health = "healthy"
	}
	s.router.SetHealthy(on)
	if on && !s.ready {
		s.ready = true
		s.publish()
		s.notifier.Ready(s.current.Summary())
	}
}

// restart starts the child again; a start that fails is a failure like
// an exit, so the policy counts it.
func (s *Supervisor) restart() {
	if s.stopping {
		return
	}
	if s.current.Yielded {
		s.log.Info("trying the child again", "backoff", s.policy.backoff)
	} else {
		s.log.Warn("restarting the child", "restart", s.policy.used, "of", s.policy.restarts)
	}
	if err := s.startChild(); err != nil {
		s.log.Error("the child did not start", "err", err)
		s.apply(s.policy.handle(s.now(), evExited{reason: err.Error()}))
	}
}

// arm sets timer to the policy's deadline.
func (s *Supervisor) arm(timer timer) {
	if d := s.policy.deadline; !d.IsZero() {
		timer.Reset(d.Sub(s.now()))
		return
	}
	timer.Stop()
}
