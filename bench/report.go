package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// report is everything one benchmark run measured.
type report struct {
	date, machine string
	reps          int
	idle          time.Duration
	res           []usage
	ann           []announcement
	routers       []routerCost  // by count, then setup
	routerIdle    time.Duration // measured per count
	routerTook    time.Duration // that part in all
	results       []result
	wall          time.Duration
}

// describeMachine names the date, CPU, cores, kernel and the programs'
// versions.
func describeMachine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	ver := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).CombinedOutput()
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return fmt.Sprintf("%s, %d cores (nproc), Linux %s; %s; %s", model, runtime.NumCPU(),
		strings.TrimSpace(string(kernel)), ver(find("keepalived"), "--version"), ver(find("nginx"), "-v"))
}

// write prints the Markdown report and writes it, with a picture per
// scenario, to dir.
func (b *bench) write(dir string, rep *report) {
	rep.date = time.Now().UTC().Format("2006-01-02")
	sums := summarize(rep.results)
	var md strings.Builder
	rep.markdown(&md, sums)
	fmt.Fprint(b.r.Out(), "\n"+md.String())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.r.Fatalf("%v", err)
	}
	b.writeFile(filepath.Join(dir, "results.md"), md.String(), 0o644)
	for _, sc := range scenarios {
		var lanes []lane
		for _, s := range setups {
			if sm, ok := lookup(sums, sc, s); ok {
				lanes = append(lanes, laneOf(sm))
			}
		}
		if len(lanes) == 0 {
			continue
		}
		var svg strings.Builder
		drawTimeline(&svg, sc, lanes)
		b.writeFile(filepath.Join(dir, "scenario-"+sc.key+".svg"), svg.String(), 0o644)
	}
	b.r.Say("wrote %s and %s; make bench took %s", filepath.Join(dir, "results.md"),
		filepath.Join(dir, "scenario-{a..g}.svg"), rep.wall.Round(time.Second))
}

// markdown writes the whole report.
func (rep *report) markdown(w io.Writer, sums []summary) {
	fmt.Fprintf(w, "# Benchmark results\n\nMeasured %s on %s. `make bench` took %s in all.\n\n",
		rep.date, rep.machine, rep.wall.Round(time.Second))
	fmt.Fprintf(w, "Setups: **vipvisor** (VRRPv3, advert 100 ms, GET /health every 1 s, timeout 200 ms, fall 2, one restart then yield); "+
		"**vipvisor, LISTEN** (the same, holding nginx's listening socket: `VIPVISOR_LISTEN=:80`); "+
		"**keepalived, guides** (v2, advert 1 s, `vrrp_script` `ss -ltn 'sport = :80' | grep -q LISTEN` every 2 s, weight −20); "+
		"**keepalived, tuned** (v3, advert 100 ms, the same script every 1 s); for scenario (g), **vipvisor, 10 ms** and **keepalived, 10 ms**, "+
		"vipvisor and tuned keepalived advertising every 10 ms. Priorities 100 (a) and 90 (b) in all. "+
		"Under keepalived, nginx is restarted as systemd's `Restart=on-failure` would (a small loop in the benchmark: "+
		"the rest of the process group killed, a new nginx after `RestartSec=100ms`).\n\n")
	fmt.Fprintf(w, "A client in its own namespace asks the VIP over HTTP every 10 ms with a 100 ms timeout. "+
		"**Outage** is the longest run of its failed requests after the fault, from the start of the first to the start of the next answered one; "+
		"≥ marks one that lasted to the end of the measured window. "+
		"Meanwhile a **load** from the same namespace asks the VIP %d times a second, open loop (each request starts on schedule, "+
		"whether or not the earlier ones have ended), every other request over a kept-alive connection and the rest each over a new one, "+
		"with a %v timeout; its failed requests are counted from the start of the picture (500 ms before the fault; "+
		"for (b), 2.5 s, so both crashes) to the end of the window. "+
		"%d repetitions per scenario and setup, %d for (b), (c) and (d) and for the keepalived setups, whose figures have varied little from run to run; setups alternating run by run.\n\n",
		loadRate, loadTimeout, rep.reps, min(rep.reps, convergedReps))
	rep.outageTable(w, sums)
	rep.targetTable(w, sums)
	rep.resourceTable(w)
	rep.announceTable(w)
	rep.routerTable(w)
}

func (rep *report) outageTable(w io.Writer, sums []summary) {
	fmt.Fprintln(w, "## Client-visible outage")
	fmt.Fprintln(w)
	for _, sc := range scenarios {
		fmt.Fprintf(w, "- (%s) %s.\n", sc.key, sc.title)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| scenario | setup | runs | outage, median | outage, worst | failed requests, median (worst) | under load: failed of %d/s, median (worst) | under load: failures of the worst run | b answered after, median | last answer from | first setup's outage ÷ this, median |\n", loadRate)
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |")
	for _, sm := range sums {
		ref, _ := lookup(sums, sm.scen, sm.scen.ref)
		r := "—"
		if sm.setup != sm.scen.ref {
			r = ratio(ref.medOutage, sm.medOutage)
		}
		toB := "never"
		if sm.bRuns > 0 {
			toB = ms(sm.medToB)
			if sm.bRuns < len(sm.runs) {
				toB += fmt.Sprintf(" (%d of %d runs)", sm.bRuns, len(sm.runs))
			}
		}
		if sm.scen == scenBack {
			toB = "— (b served before)"
		}
		fmt.Fprintf(w, "| (%s) %s, %v window | %s | %d | %s | %s | %d (%d) | %d (%d) | %s | %s | %s | %s |\n",
			sm.scen.key, sm.scen.short, sm.scen.window, sm.setup.name, len(sm.runs),
			atLeast(sm.medOutage, sm.medToEnd), atLeast(sm.maxOutage, sm.maxToEnd),
			sm.medFailed, sm.maxFailed, sm.medLoad, sm.maxLoad, cmp.Or(sm.worstKinds, "none"), toB, sm.last, r)
	}
	fmt.Fprintln(w)
}

func atLeast(d time.Duration, toEnd bool) string {
	if toEnd {
		return "≥ " + ms(d)
	}
	return ms(d)
}

// skewB is Skew_Time of b (priority 90) at 100ms adverts, RFC 5798 §6.1.
const skewB = (256 - 90) * 100 * time.Millisecond / 256

func (rep *report) targetTable(w io.Writer, sums []summary) {
	get := func(sc *scenario, s *setup) summary { sm, _ := lookup(sums, sc, s); return sm }
	v := setVipvisor
	fmt.Fprintln(w, "## Targets (vipvisor, judged on the worst run)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | vipvisor | met |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	// A part left out (bench -scenarios) has no row.
	row := func(target, figure string, met bool, of ...summary) {
		for _, sm := range of {
			if len(sm.runs) == 0 {
				return
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", target, figure, yes(met))
	}
	a := get(scenKill, v)
	row("(a) outage ≤ 50 ms, the VIP stays on the master", fmt.Sprintf("worst %s; b answered in %d of %d runs",
		ms(a.maxOutage), a.bRuns, len(a.runs)), len(a.runs) > 0 && a.maxOutage <= 50*time.Millisecond && a.bRuns == 0, a)
	al := get(scenKill, setListen)
	row(fmt.Sprintf("(a) with LISTEN, under load: 0 failed requests of %d/s, the VIP stays", loadRate),
		fmt.Sprintf("worst run %d failed (%s); b answered in %d of %d runs", al.maxLoad, cmp.Or(al.worstKinds, "none"), al.bRuns, len(al.runs)),
		len(al.runs) > 0 && al.maxLoad == 0 && al.bRuns == 0, al)
	bb := get(scenLoop, v)
	row("(b) b serving ≤ 150 ms after the second crash", fmt.Sprintf("worst %s (in %d of %d runs)",
		ms(bb.maxToB), bb.bRuns, len(bb.runs)), len(bb.runs) > 0 && bb.bRuns == len(bb.runs) && bb.maxToB <= 150*time.Millisecond, bb)
	c := get(scenHang, v)
	row("(c) outage ≤ probe interval × fall + 200 ms = 2200 ms", "worst "+atLeast(c.maxOutage, c.maxToEnd),
		len(c.runs) > 0 && !c.maxToEnd && c.maxOutage <= 2200*time.Millisecond, c)
	d, dt := get(scenLink, v), get(scenLink, setTuned)
	limit := 300*time.Millisecond + skewB + 50*time.Millisecond
	// One poll interval (10ms) is the client's resolution.
	row(fmt.Sprintf("(d) outage ≤ 3 × advert + skew + 50 ms = %s, median no worse than tuned keepalived's (+10 ms, the client's resolution)", ms(limit)),
		fmt.Sprintf("worst %s; median %s vs %s", ms(d.maxOutage), ms(d.medOutage), ms(dt.medOutage)),
		len(d.runs) > 0 && d.maxOutage <= limit && d.medOutage <= dt.medOutage+10*time.Millisecond, d, dt)
	for _, s := range []*setup{v, setListen} {
		e := get(scenStop, s)
		row(fmt.Sprintf("(e) %s: zero failed requests in every run, polled and under load", s.name),
			fmt.Sprintf("worst run %d failed polled, %d under load (%s)", e.maxFailed, e.maxLoad, cmp.Or(e.worstKinds, "none")),
			len(e.runs) > 0 && e.maxFailed == 0 && e.maxLoad == 0, e)
	}
	g, gk := get(scenFast, setFast), get(scenFast, setKAFast)
	// The poller cannot time a failover shorter than its timeout: its
	// request in flight at the cut is lost with the link. b's first
	// answer, of the load's requests too, can.
	row("(g) link cut at 10 ms adverts: b serving ≤ 50 ms after the cut", fmt.Sprintf("worst %s (in %d of %d runs); median %s vs keepalived's %s",
		ms(g.maxToB), g.bRuns, len(g.runs), ms(g.medToB), ms(gk.medToB)), g.bRuns == len(g.runs) && g.maxToB <= 50*time.Millisecond, g, gk)
	use := map[*setup]usage{}
	for _, u := range rep.res {
		use[u.setup] = u
	}
	if u, t, ok := pick(use, v, setTuned); ok {
		row("memory (PSS) ≤ keepalived's (tuned)", fmt.Sprintf("PSS %d KiB vs %d KiB; anonymous %d KiB vs %d KiB", u.pss, t.pss, u.anon, t.anon),
			u.pss <= t.pss)
		row("idle CPU, own processes, ≤ keepalived's at the same advert interval (tuned, 100 ms)",
			fmt.Sprintf("%.2f%% vs %.2f%% (with keepalived's check script: %.2f%%)", u.own, t.own, t.all), u.own <= t.own)
	}
	if u, t, ok := pick(use, setFast, setKAFast); ok {
		row("idle CPU, own processes, ≤ keepalived's at 10 ms adverts",
			fmt.Sprintf("%.2f%% vs %.2f%% (with keepalived's check script: %.2f%%)", u.own, t.own, t.all), u.own <= t.own)
	}
	fmt.Fprintln(w)
}

// pick returns the usage of two setups, if both were measured.
func pick(use map[*setup]usage, x, y *setup) (usage, usage, bool) {
	ux, okx := use[x]
	uy, oky := use[y]
	return ux, uy, okx && oky
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func (rep *report) resourceTable(w io.Writer) {
	if len(rep.res) == 0 {
		return
	}
	fmt.Fprintf(w, "## Resources, idle as master for %v\n\n", rep.idle)
	fmt.Fprintln(w, "Each setup alone in a lab of its own, all at once, nothing else running. "+
		"Memory is the sum of VmRSS of the supervisor's processes (vipvisor: itself and its guard; keepalived: its parent and VRRP child; no checker runs with `-P`), "+
		"and the sum of their PSS, which counts the pages two processes of one binary share once, "+
		"and of their anonymous memory (Pss_Anon: heap and stacks, the part that is theirs alone); "+
		"nginx not counted in either. Memory is read of vipvisor and tuned keepalived only, once the others have stopped: "+
		"PSS would share a binary's pages among setups of the same binary running at once. CPU is utime+stime from /proc/PID/stat over the period, in % of one core; "+
		"\"with check\" adds the CPU time of the children the supervisor reaped (keepalived's check script: sh, ss, grep), "+
		"since vipvisor's HTTP probe runs inside its own process.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| setup | advert | processes | resident (RSS) | proportional (PSS) | anonymous | CPU, own | CPU, with check |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	mib := func(kib int64) string {
		if kib == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
	}
	for _, u := range rep.res {
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %.2f%% | %.2f%% |\n", u.setup.name, u.setup.advertWords(), u.procs,
			mib(u.rss), mib(u.pss), mib(u.anon), u.own, u.all)
	}
	fmt.Fprintln(w)
}

func (rep *report) announceTable(w io.Writer) {
	if len(rep.ann) == 0 {
		return
	}
	fmt.Fprintln(w, "## Becoming master: VIPs installed and announced")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The master is stopped (SIGTERM, so it sends priority 0) and tcpdump on the lab's bridge records the backup taking over. "+
		"**All announced** is the time from the new master's first VRRP advert to the first gratuitous ARP of the last VIP to get one; "+
		"**burst over**, to the last gratuitous ARP of the first burst (both send the second 5 s later). "+
		"Both send the advert before adding the VIPs. Median of the runs; the worst in parentheses. "+
		"tcpdump captures with a 32 MiB buffer and a snapshot length of 1,024 bytes, and a run whose capture dropped frames (its closing statistics) is run again, not counted: "+
		"**left out** says how many were.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| VIPs | setup | all announced | burst over | addresses in the advert | VIPs never announced | runs left out |")
	fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
	for _, n := range vipCounts {
		for _, s := range []*setup{setVipvisor, setTuned} {
			var all, end []time.Duration
			count, missing, dropped := 0, 0, 0
			for _, a := range rep.ann {
				if a.setup == s && a.vips == n {
					all, end = append(all, a.all), append(end, a.end)
					count, missing = a.count, max(missing, a.missing)
					dropped += a.dropped
				}
			}
			if len(all) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %d | %s | %s (%s) | %s (%s) | %d | %d | %d |\n", n, s.name, msf(medianDuration(all)),
				msf(maxOf(all)), msf(medianDuration(end)), msf(maxOf(end)), count, missing, dropped)
		}
	}
	fmt.Fprintln(w)
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// msf formats a duration in milliseconds to a tenth.
func msf(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
