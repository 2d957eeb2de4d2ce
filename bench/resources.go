package main

import (
	"net/netip"
	"path/filepath"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// usage is what one setup's supervisor used while idle as master.
type usage struct {
	setup *setup
	procs int   // supervisor processes
	rss   int64 // sum of VmRSS, KiB, at the end
	pss   int64 // sum of Pss, KiB: pages shared between the processes counted once
	anon  int64 // sum of Pss_Anon, KiB: the processes' own heap and stacks
	// own is utime+stime of the supervisor's processes, all adds the CPU
	// time of the children they reaped (keepalived's check script), both
	// in % of one core.
	own, all float64
}

// resourceSetups are the setups measured idle: LISTEN costs nothing
// while idle, so it is not among them.
var resourceSetups = []*setup{setVipvisor, setGuides, setTuned, setFast, setKAFast}

// resources runs each setup as master of a lab of its own, all at once,
// and measures their supervisors over idle: nginx is not counted, for
// either. Nothing else runs meanwhile.
func (b *bench) resources(idle time.Duration) []usage {
	var ins []*instance
	for _, s := range resourceSetups {
		l := lab.New(b.r, netip.Prefix{})
		n := newNode(b.r, l, filepath.Join(b.dir, "res-"+s.key), "a", 11, 100)
		in := b.start(s, n, []netip.Prefix{l.Host(100)}, true)
		b.r.Cleanup(in.stop)
		b.await(in, 20*time.Second, "it to be master", func() bool { return in.state() == "MASTER" })
		ins = append(ins, in)
	}
	out := b.idleUsage(ins, idle)
	// PSS divides a page among all the processes that map it, those of
	// another setup of the same binary too: with three keepalived setups
	// running, each would count a third of keepalived's pages. So memory
	// is read of the compared pair, vipvisor and tuned keepalived, once
	// every other setup has stopped, and not of the others.
	for _, in := range ins {
		if !memoryMeasured(in.s) {
			in.stop()
		}
	}
	for i, in := range ins {
		if memoryMeasured(in.s) {
			out[i].rss, out[i].pss, out[i].anon = memory(in.pids())
		}
	}
	for i, u := range out {
		b.r.Say("  %-19s %d process(es), RSS %d KiB, PSS %d KiB, anonymous %d KiB, CPU %.2f%% (%.2f%% with check scripts)",
			u.setup.name, u.procs, u.rss, u.pss, u.anon, u.own, u.all)
		ins[i].stop()
	}
	return out
}

// memoryMeasured says whether the resources part reads the memory of s.
func memoryMeasured(s *setup) bool { return s == setVipvisor || s == setTuned }

// memory sums VmRSS, Pss and Pss_Anon of pids, in KiB.
func memory(pids []int) (rss, pss, anon int64) {
	for _, pid := range pids {
		rss += rssKiB(pid)
		pss += pssKiB(pid)
		anon += anonKiB(pid)
	}
	return rss, pss, anon
}

// idleUsage lets the start-up work of ins (first probes, gratuitous ARPs)
// pass, then measures their supervisors' CPU over idle, all at once; the
// caller reads their memory when nothing else shares their pages.
func (b *bench) idleUsage(ins []*instance, idle time.Duration) []usage {
	b.pause(6 * time.Second)
	pids := make([][]int, len(ins))
	before := make([]stat, len(ins))
	for i, in := range ins {
		pids[i] = in.pids()
		before[i] = sumStat(pids[i])
	}
	start := time.Now()
	b.pause(idle)
	took := time.Since(start)
	out := make([]usage, len(ins))
	for i, in := range ins {
		after := sumStat(pids[i])
		u := usage{setup: in.s, procs: len(pids[i])}
		u.own = cpuPercent(after.own-before[i].own, took)
		u.all = cpuPercent(after.own+after.children-before[i].own-before[i].children, took)
		out[i] = u
	}
	return out
}

// sumStat adds up the CPU times of pids.
func sumStat(pids []int) stat {
	var sum stat
	for _, pid := range pids {
		if st, ok := readStat(pid); ok {
			sum.own += st.own
			sum.children += st.children
		}
	}
	return sum
}

// cpuPercent converts ticks used over d to % of one core.
func cpuPercent(ticks int64, d time.Duration) float64 {
	return float64(ticks) * float64(time.Second/clockTick) / float64(d) * 100
}
