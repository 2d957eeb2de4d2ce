package main

import (
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// steps is the number of steps the story tells.
const steps = 6

// before is how far back from an event a step's client timeline starts,
// so it shows who answered just before.
const before = 100 * time.Millisecond

// story tells the demo step by step, measuring what the client saw.
type story struct {
	c   *cluster
	n   int // steps told so far
	res results
	// crashed is when nginx on a crashed the second time, faulted when a
	// was seen in FAULT after that.
	crashed, faulted time.Time
}

// heading starts a step.
func (s *story) heading(format string, args ...any) {
	s.c.r.Checkpoint()
	s.n++
	title := fmt.Sprintf(format, args...)
	s.c.step = fmt.Sprintf("step %d (%s)", s.n, title)
	s.c.stepStart = time.Now()
	s.c.r.Say("")
	s.c.r.Say("[%d/%d] %s", s.n, steps, title)
}

// say prints one line of a step, indented.
func (s *story) say(format string, args ...any) { s.c.r.Say("      "+format, args...) }

// tell runs the whole story.
func (s *story) tell() {
	s.lab()
	s.bringUp()
	s.crashOnce()
	s.crashAgain()
	s.heal()
	s.plannedStop()
	s.c.poll.Stop()
	s.c.r.Say("")
	s.c.r.Say("measured (by the client's requests, and /status asked every 20ms)")
	all := s.c.poll.Samples()
	s.res.add("client requests, whole demo", "%d, %s", len(all), failed(all.Failures()))
	s.res.print(s.c.r.Out())
}

func (s *story) lab() {
	s.heading("a lab of network namespaces; nothing touches this machine's interfaces")
	c := s.c
	s.say("namespaces %s%s-{sw,client,a,b}: a bridge and three nodes on it", lab.Prefix, c.lab.ID)
	s.say("client %s   a %s   b %s   VIP %s", c.client.Addr.Addr(), c.a.Addr.Addr(),
		c.b.Addr.Addr(), c.vip.Addr())
	s.say("on a and b: nginx answering its node's name, run by vipvisor (a priority %d, b %d)",
		c.a.prio, c.b.prio)
	s.say("vipvisor: VRRPv3 adverts every 100ms; GET /health every 200ms, sick after 2 failures;")
	s.say("          a crash is answered by one restart, a second within 60s by yielding the VIP")
}

func (s *story) bringUp() {
	c := s.c
	s.heading("start vipvisor on a, then on b")
	t0 := time.Now()
	c.start(c.a)
	took := c.await(10*time.Second, "a to take the VIP", func() bool { return c.hasVIP(c.a) }).Sub(t0)
	s.say("a took the VIP %s after it started: nginx healthy, then no advert heard", dur(took))
	s.say("for Master_Down_Interval (3 × 100ms + skew)")
	c.poll.Start()
	first := c.answer(5*time.Second, "a", time.Time{})
	c.start(c.b)
	c.await(10*time.Second, "b to be a BACKUP with nginx healthy", func() bool {
		st, ok := c.b.watch.current()
		return ok && st.VRRP.State == "BACKUP" && st.Child.Healthy
	})
	c.settle(300 * time.Millisecond)
	s.showStatus()
	s.say("client, asking http://%s/ every 10ms from now on:", c.vip.Addr())
	s.say("      %s", timeline(c.poll.Samples().Between(first.At, time.Time{})))
	s.res.add("a takes the VIP after starting", "%s", dur(took))
}

// showStatus prints each web node's /status in a line.
func (s *story) showStatus() {
	for _, n := range []*webNode{s.c.a, s.c.b} {
		st, ok := n.watch.current()
		if !ok {
			s.say("%s  vipvisor not answering /status", n.Name)
			continue
		}
		s.say("%s  %s", n.Name, st)
	}
}

func (s *story) crashOnce() {
	c := s.c
	s.heading("nginx on a crashes: kill -9 of its master process")
	old, at := c.crash(c.a)
	s.say("killed pid %d", old)
	var pid int
	healthy := c.await(10*time.Second, "vipvisor to restart nginx on a and see it healthy", func() bool {
		st, ok := c.a.watch.current()
		pid = st.Child.PID
		return ok && st.Child.Healthy && pid != old && pid != 0
	})
	c.settle(time.Second)
	window := c.poll.Samples().Between(at.Add(-before), time.Time{})
	s.say("vipvisor restarted it, VRRP left alone: nginx pid %d healthy %s after the kill",
		pid, dur(healthy.Sub(at)))
	s.say("a: %s", c.a.watch.trail(at))
	s.say("client: %s", timeline(window))
	if slices.ContainsFunc(window.Spans(), func(sp lab.Span) bool { return sp.Who == "b" }) {
		c.r.Errorf("%s: b answered during a's restart; the VIP should have stayed on a", c.step)
	}
	if left, ok := c.a.watch.entered(at, "FAULT", "BACKUP"); ok || !c.hasVIP(c.a) {
		c.r.Errorf("%s: a left MASTER (%s) or lost the VIP during a single restart", c.step, left.State)
	}
	s.res.add("crash 1: nginx restarted, healthy", "%s after kill -9", dur(healthy.Sub(at)))
	s.res.add("crash 1: client-visible outage", "%s (%s)", dur(window.Outage()), failed(window.Failures()))
}

func (s *story) crashAgain() {
	c := s.c
	s.heading("it crashes again within RESTART_WINDOW: a yields, b serves")
	old, at := c.crash(c.a)
	s.say("killed pid %d", old)
	b := c.answer(10*time.Second, "b", at)
	var fault change
	c.await(3*time.Second, "a to enter FAULT", func() bool {
		var ok bool
		fault, ok = c.a.watch.entered(at, "FAULT")
		return ok
	})
	c.settle(300 * time.Millisecond)
	window := c.poll.Samples().Between(at.Add(-before), time.Time{})
	if c.hasVIP(c.a) {
		c.r.Errorf("%s: a still holds the VIP after yielding", c.step)
	}
	s.say("a yielded (priority 0, VIP removed); b serves %s after the kill", dur(b.At.Sub(at)))
	s.say("a: %s", c.a.watch.trail(at))
	s.say("b: %s", c.b.watch.trail(at))
	s.say("client: %s", timeline(window))
	s.res.add("crash 2: b serving the VIP", "%s after kill -9 (%s)", dur(b.At.Sub(at)),
		failed(window.Failures()))
	s.crashed, s.faulted = at, fault.At
}

func (s *story) heal() {
	c := s.c
	s.heading("a heals: vipvisor retries nginx after a backoff, rejoins, preempts")
	var back change
	c.await(15*time.Second, "a to leave FAULT", func() bool {
		var ok bool
		back, ok = c.a.watch.entered(s.faulted, "BACKUP", "MASTER")
		return ok
	})
	a := c.answer(10*time.Second, "a", back.At)
	c.settle(300 * time.Millisecond)
	window := c.poll.Samples().Between(back.At.Add(-before), time.Time{})
	since := func(t time.Time) string { return dur(t.Sub(s.crashed)) }
	s.say("a rejoined as %s %s after the crash; with the higher priority it took", back.State, since(back.At))
	s.say("the VIP back and serves again %s after the crash", since(a.At))
	s.say("a: %s", c.a.watch.trail(s.crashed))
	s.say("b: %s", c.b.watch.trail(s.crashed))
	s.say("client: %s", timeline(window))
	s.showStatus()
	s.res.add("a back as "+back.State, "%s after crash 2", since(back.At))
	s.res.add("a preempts, serving again", "%s after crash 2 (%s)", since(a.At), failed(window.Failures()))
}

func (s *story) plannedStop() {
	c := s.c
	s.heading("planned stop: SIGTERM to vipvisor on a")
	at := time.Now()
	if err := c.a.proc.Signal(syscall.SIGTERM); err != nil {
		c.r.Fatalf("%s: SIGTERM: %v", c.step, err)
	}
	b := c.answer(5*time.Second, "b", at)
	code, ok := c.a.proc.Wait(15 * time.Second)
	if !ok {
		c.r.Fatalf("%s: waited 15s for vipvisor on a to exit", c.step)
	}
	exited := time.Since(at)
	c.settle(300 * time.Millisecond)
	window := c.poll.Samples().Between(at.Add(-before), time.Time{})
	s.say("a advertises priority 0 and keeps the VIP until b is master, then stops nginx")
	s.say("b serves %s after the SIGTERM; vipvisor on a exited %d after %s", dur(b.At.Sub(at)), code, dur(exited))
	s.say("a: %s", c.a.watch.trail(at))
	s.say("b: %s", c.b.watch.trail(at))
	s.say("client: %s", timeline(window))
	if code != 0 {
		c.r.Errorf("%s: vipvisor on a exited %d after SIGTERM, want 0", c.step, code)
	}
	if n := window.Failures(); n > 0 {
		c.r.Errorf("%s: %s during a planned stop, want none", c.step, failed(n))
	}
	s.res.add("planned stop: b serving", "%s after SIGTERM (%s)", dur(b.At.Sub(at)), failed(window.Failures()))
}
