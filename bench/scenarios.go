package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// scenario is one fault whose client-visible effect is measured; t=0 is
// the fault.
type scenario struct {
	key, title string
	short      string        // for the table
	before     time.Duration // shown before t=0 in the picture
	window     time.Duration // measured after t=0
	ref        *setup        // the setup the others are compared with
}

var (
	scenKill  = &scenario{short: "nginx killed once", key: "a", title: "nginx killed once on the master", before: 500 * time.Millisecond, window: 3 * time.Second, ref: setVipvisor}
	scenLoop  = &scenario{short: "nginx killed twice", key: "b", title: "nginx killed twice, 2 s apart (crash loop); t=0 is the second kill", before: 2500 * time.Millisecond, window: 3 * time.Second, ref: setVipvisor}
	scenHang  = &scenario{short: "nginx hung", key: "c", title: "nginx hung (SIGSTOP) on the master", before: 500 * time.Millisecond, window: 5 * time.Second, ref: setVipvisor}
	scenLink  = &scenario{short: "link cut", key: "d", title: "master's link cut (node loss)", before: 500 * time.Millisecond, window: 4500 * time.Millisecond, ref: setVipvisor}
	scenStop  = &scenario{short: "planned stop", key: "e", title: "planned stop of the master's supervisor (SIGTERM)", before: 500 * time.Millisecond, window: 3 * time.Second, ref: setVipvisor}
	scenBack  = &scenario{short: "recovery, preempt back", key: "f", title: "recovery: the old master's supervisor started again, healthy, preempts", before: 500 * time.Millisecond, window: 4500 * time.Millisecond, ref: setVipvisor}
	scenFast  = &scenario{short: "link cut, 10 ms adverts", key: "g", title: "master's link cut, both nodes advertising every 10 ms", before: 500 * time.Millisecond, window: 1500 * time.Millisecond, ref: setFast}
	scenarios = []*scenario{scenKill, scenLoop, scenHang, scenLink, scenStop, scenBack, scenFast}
)

// group is what one run of the benchmark does on a fresh pair: one
// scenario, or two in a row (e+f). converged groups, whose figures varied
// little from run to run in earlier benchmarks, run at most
// convergedReps times, to keep make bench within its time.
type group struct {
	name      string
	run       func(*bench, *cluster, *setup, *pair) []result
	setups    []*setup
	converged bool
}

// convergedReps bounds the repetitions of a converged group, and of the
// keepalived setups in every group: their figures have varied by a few
// milliseconds from run to run in every benchmark so far.
const convergedReps = 3

// repsOf is how many times setup s runs group g, of reps asked.
func repsOf(g group, s *setup, reps int) int {
	if g.converged || s.keepalived {
		return min(reps, convergedReps)
	}
	return reps
}

// the setups of scenarios (a) to (f), and of (g).
var (
	mainSetups = []*setup{setVipvisor, setListen, setGuides, setTuned}
	fastSetups = []*setup{setFast, setKAFast}
)

var groups = []group{
	{"a", (*bench).runKill, mainSetups, false},
	{"b", (*bench).runLoop, mainSetups, true},
	{"c", (*bench).runHang, mainSetups, true},
	{"d", func(b *bench, c *cluster, s *setup, p *pair) []result { return b.runLink(scenLink, c, s, p) }, mainSetups, true},
	{"e+f", (*bench).runStopStart, mainSetups, false},
	{"g", func(b *bench, c *cluster, s *setup, p *pair) []result { return b.runLink(scenFast, c, s, p) }, fastSetups, false},
}

// crashGap is the time between the two kills of the crash loop: long
// enough for the restarted nginx to pass a probe round.
const crashGap = 2 * time.Second

// result is what the client saw in one run of one scenario.
type result struct {
	scen  *scenario
	setup *setup
	rep   int
	t0    time.Time
	view  lab.Samples // from t0-before to the end of the window
	// load is what the load client saw from t0-before to the end of the
	// window: requests made and failed, and the failures by kind.
	load loadCount
	// outage is the longest run of failed requests that started at or
	// after t0; toEnd says it lasted to the end of the window.
	outage time.Duration
	toEnd  bool
	failed int
	// toB is how long after t0 the first answer from node b arrived, of
	// the requests of the poller and the load that started at t0 or
	// later; -1 if none did.
	toB  time.Duration
	last string // who answered the last request
}

// cluster is the scenarios' lab: a client polling the VIP and two web
// nodes, a (priority 100) and b (90).
type cluster struct {
	lab    *lab.Lab
	client *lab.Node
	a, b   *node
	vip    netip.Prefix
}

func (b *bench) newCluster() *cluster {
	l := lab.New(b.r, netip.Prefix{})
	c := &cluster{lab: l, client: l.AddNode("client", l.Host(50)), vip: l.Host(100)}
	c.a = newNode(b.r, l, filepath.Join(b.dir, "scen"), "a", 11, 100)
	c.b = newNode(b.r, l, filepath.Join(b.dir, "scen"), "b", 12, 90)
	return c
}

// scenarios runs each of groups reps times for each of its setups (see
// repsOf), the setups alternating run by run.
func (b *bench) scenarios(c *cluster, groups []group, reps int) []result {
	var all []result
	for _, g := range groups {
		for rep := 1; rep <= reps; rep++ {
			for _, s := range g.setups {
				if rep > repsOf(g, s, reps) {
					continue
				}
				b.r.Checkpoint()
				t := time.Now()
				p := b.up(c, s)
				up := time.Since(t)
				var rc *runCapture
				if b.capture != "" {
					rc = b.startRunCapture(c, fmt.Sprintf("%s-%s-%d", g.name, s.key, rep))
				}
				rs := g.run(b, c, s, p)
				if rc != nil {
					rc.stop(b, c, p, rs)
				}
				t2 := time.Now()
				b.down(c, p)
				down := time.Since(t2)
				for i := range rs {
					rs[i].rep = rep
					b.r.Say("  %s %-18s %d: outage %7s, %3d failed, b after %6s, last %-4q; load %5d of %5d failed %s (up %s, down %s)",
						rs[i].scen.key, s.name, rep, ms(rs[i].outage), rs[i].failed, msOrNone(rs[i].toB),
						rs[i].last, rs[i].load.failed, rs[i].load.made, rs[i].load.kinds, ms(up), ms(down))
				}
				all = append(all, rs...)
			}
		}
	}
	return all
}

// pair is one setup running on both web nodes, the client polling and
// the load.
type pair struct {
	a, b *instance
	poll *lab.Client
	load *lab.Load
}

// up starts s on a and b at once (b, with the lower priority, does not
// keep the VIP even if it is first), waits for a to serve the VIP and b to
// be a healthy backup, and starts the client polling and the load.
func (b *bench) up(c *cluster, s *setup) *pair {
	p := &pair{a: b.start(s, c.a, []netip.Prefix{c.vip}, true), b: b.start(s, c.b, []netip.Prefix{c.vip}, false)}
	url := "http://" + c.vip.Addr().String() + "/"
	b.await(p.a, 20*time.Second, "a to serve the VIP", func() bool {
		if p.a.state() != "MASTER" || c.b.HasAddr(c.vip.Addr()) {
			return false
		}
		_, body, err := c.client.HTTPGet(url, 100*time.Millisecond)
		return err == nil && body == "a"
	})
	b.await(p.b, 20*time.Second, "b to be a healthy backup", func() bool { return p.b.state() == "BACKUP" })
	p.poll = lab.NewClient(c.client, url)
	p.poll.Start()
	p.load = lab.NewLoad(c.client, url)
	p.load.Rate, p.load.Timeout = loadRate, loadTimeout
	p.load.Start()
	return p
}

// down stops the client, the load and both nodes at once and removes any
// VIP left behind.
func (b *bench) down(c *cluster, p *pair) {
	p.poll.Stop()
	p.load.Stop()
	done := make(chan struct{})
	go func() { p.b.stop(); close(done) }()
	p.a.stop()
	<-done
	for _, n := range []*node{c.a, c.b} {
		if n.HasAddr(c.vip.Addr()) {
			n.Run("ip", "addr", "del", c.vip.String(), "dev", lab.Iface)
		}
	}
}

// await polls cond every 10ms; after timeout it ends the benchmark with
// the tail of the instance's log.
func (b *bench) await(in *instance, timeout time.Duration, what string, cond func() bool) {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.r.Errorf("%s: waited %v for %s", in.s.name, timeout, what)
			b.r.Print("%s", in.sup.LogTail(30))
			b.r.Abort()
		}
		// Real time: the supervisors run on their own.
		time.Sleep(10 * time.Millisecond)
	}
}

// pause lets real time pass: the client records what users see.
func (b *bench) pause(d time.Duration) {
	time.Sleep(d)
	b.r.Checkpoint()
}

// killNginx kills every process of nginx on n with SIGKILL, as a crash
// of the whole service would, and returns when.
func (b *bench) signalNginx(n *node, sig syscall.Signal) time.Time {
	pid := n.nginxPID()
	if pid == 0 {
		b.r.Fatalf("no nginx runs on %s", n.Name)
	}
	at := time.Now()
	// nginx leads its own process group under vipvisor and the service.
	if err := syscall.Kill(-pid, sig); err != nil {
		b.r.Fatalf("kill -%d -%d: %v", sig, pid, err)
	}
	return at
}

func (b *bench) runKill(c *cluster, s *setup, p *pair) []result {
	b.pause(scenKill.before)
	t0 := b.signalNginx(c.a, syscall.SIGKILL)
	b.pause(scenKill.window)
	return []result{b.measure(scenKill, s, p, t0, time.Now())}
}

func (b *bench) runLoop(c *cluster, s *setup, p *pair) []result {
	b.pause(500 * time.Millisecond)
	b.signalNginx(c.a, syscall.SIGKILL)
	b.pause(crashGap)
	t0 := b.signalNginx(c.a, syscall.SIGKILL)
	b.pause(scenLoop.window)
	return []result{b.measure(scenLoop, s, p, t0, time.Now())}
}

// runHang measures before nginx is continued: the requests the hung one
// holds at the end of the window count as failed once they time out.
func (b *bench) runHang(c *cluster, s *setup, p *pair) []result {
	b.pause(scenHang.before)
	pid := c.a.nginxPID()
	t0 := b.signalNginx(c.a, syscall.SIGSTOP)
	b.pause(scenHang.window)
	res := b.measure(scenHang, s, p, t0, time.Now())
	syscall.Kill(-pid, syscall.SIGCONT)
	return []result{res}
}

// runLink cuts the master's link for the window of sc, (d) or (g).
func (b *bench) runLink(sc *scenario, c *cluster, s *setup, p *pair) []result {
	b.pause(sc.before)
	t0 := time.Now()
	c.a.LinkDown()
	b.pause(sc.window)
	res := b.measure(sc, s, p, t0, time.Now())
	c.a.LinkUp()
	return []result{res}
}

// runStopStart stops the master's supervisor (e), then starts it again
// and lets it preempt (f). For keepalived, nginx runs on throughout.
func (b *bench) runStopStart(c *cluster, s *setup, p *pair) []result {
	b.pause(scenStop.before)
	t0 := time.Now()
	go p.a.stopSupervisor()
	b.pause(scenStop.window)
	e := b.measure(scenStop, s, p, t0, time.Now())
	p.a.stopSupervisor()
	t1 := time.Now()
	p.a = b.restart(p.a, []netip.Prefix{c.vip}, true)
	b.pause(scenBack.window)
	return []result{e, b.measure(scenBack, s, p, t1, time.Now())}
}

// measure cuts one scenario out of the run of p, once the load's
// requests that started before end have ended.
func (b *bench) measure(sc *scenario, s *setup, p *pair, t0, end time.Time) result {
	return measure(sc, s, p.poll.Samples(), p.load.Settled(end), t0, end)
}

// measure cuts the samples of one scenario out of a run: the polling
// client's and the load's.
func measure(sc *scenario, s *setup, all, load lab.Samples, t0, end time.Time) result {
	res := result{scen: sc, setup: s, t0: t0, view: all.Between(t0.Add(-sc.before), end), toB: -1,
		load: countLoad(load.Between(t0.Add(-sc.before), end), t0)}
	after := all.Between(t0, end)
	res.outage = after.Outage()
	res.failed = after.Failures()
	if len(after) > 0 {
		res.last = after[len(after)-1].Who()
		res.toEnd = !after[len(after)-1].OK()
	}
	// By arrival, not by start: a request whose SYN was lost in the
	// failover and that b answered a second later does not say b served
	// from the moment it started.
	for _, x := range append(after, load.Between(t0, end)...) {
		if at := x.At.Add(x.Took).Sub(t0); x.Who() == "b" && (res.toB < 0 || at < res.toB) {
			res.toB = at
		}
	}
	return res
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}

func msOrNone(d time.Duration) string {
	if d < 0 {
		return "—"
	}
	return ms(d)
}
