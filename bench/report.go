package main

import (
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
		var svg strings.Builder
		drawTimeline(&svg, sc, lanes)
		b.writeFile(filepath.Join(dir, "scenario-"+sc.key+".svg"), svg.String(), 0o644)
	}
	b.r.Say("wrote %s and %s; make bench took %s", filepath.Join(dir, "results.md"),
		filepath.Join(dir, "scenario-{a..f}.svg"), rep.wall.Round(time.Second))
}

// markdown writes the whole report.
func (rep *report) markdown(w io.Writer, sums []summary) {
	fmt.Fprintf(w, "# Benchmark results\n\nMeasured %s on %s. `make bench` took %s in all.\n\n",
		rep.date, rep.machine, rep.wall.Round(time.Second))
	fmt.Fprintf(w, "Setups: **vipvisor** (VRRPv3, advert 100 ms, GET /health every 1 s, timeout 200 ms, fall 2, one restart then yield); "+
		"**keepalived, guides** (v2, advert 1 s, `vrrp_script` `ss -ltn 'sport = :80' | grep -q LISTEN` every 2 s, weight −20); "+
		"**keepalived, tuned** (v3, advert 100 ms, the same script every 1 s). Priorities 100 (a) and 90 (b) in all three. "+
		"Under keepalived, nginx is restarted as systemd's `Restart=on-failure` would (a small loop in the benchmark: "+
		"the rest of the process group killed, a new nginx after `RestartSec=100ms`).\n\n")
	fmt.Fprintf(w, "A client in its own namespace asks the VIP over HTTP every 10 ms with a 100 ms timeout. "+
		"**Outage** is the longest run of failed requests after the fault, from the start of the first to the start of the next answered one; "+
		"≥ marks one that lasted to the end of the measured window. %d repetitions per scenario and setup, setups alternating run by run.\n\n", rep.reps)
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
	fmt.Fprintln(w, "| scenario | setup | outage, median | outage, worst | failed requests, median (worst) | b answered after, median | last answer from | vipvisor ÷ this, median outage |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |")
	for _, sm := range sums {
		vip, _ := lookup(sums, sm.scen, setups[0])
		r := "—"
		if sm.setup != setups[0] {
			r = ratio(vip.medOutage, sm.medOutage)
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
		fmt.Fprintf(w, "| (%s) %s, %v window | %s | %s | %s | %d (%d) | %s | %s | %s |\n",
			sm.scen.key, sm.scen.short, sm.scen.window, sm.setup.name,
			atLeast(sm.medOutage, sm.medToEnd), atLeast(sm.maxOutage, sm.maxToEnd),
			sm.medFailed, sm.maxFailed, toB, sm.last, r)
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
	v := setups[0]
	fmt.Fprintln(w, "## Targets (vipvisor, judged on the worst run)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | vipvisor | met |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	row := func(target, figure string, met bool) {
		fmt.Fprintf(w, "| %s | %s | %s |\n", target, figure, yes(met))
	}
	a := get(scenKill, v)
	row("(a) outage ≤ 50 ms, the VIP stays on the master", fmt.Sprintf("worst %s; b answered in %d of %d runs",
		ms(a.maxOutage), a.bRuns, len(a.runs)), len(a.runs) > 0 && a.maxOutage <= 50*time.Millisecond && a.bRuns == 0)
	bb := get(scenLoop, v)
	row("(b) b serving ≤ 150 ms after the second crash", fmt.Sprintf("worst %s (in %d of %d runs)",
		ms(bb.maxToB), bb.bRuns, len(bb.runs)), len(bb.runs) > 0 && bb.bRuns == len(bb.runs) && bb.maxToB <= 150*time.Millisecond)
	c := get(scenHang, v)
	row("(c) outage ≤ probe interval × fall + 200 ms = 2200 ms", "worst "+atLeast(c.maxOutage, c.maxToEnd),
		len(c.runs) > 0 && !c.maxToEnd && c.maxOutage <= 2200*time.Millisecond)
	d, dt := get(scenLink, v), get(scenLink, setups[2])
	limit := 300*time.Millisecond + skewB + 50*time.Millisecond
	// One poll interval (10ms) is the client's resolution.
	row(fmt.Sprintf("(d) outage ≤ 3 × advert + skew + 50 ms = %s, median no worse than tuned keepalived's (+10 ms, the client's resolution)", ms(limit)),
		fmt.Sprintf("worst %s; median %s vs %s", ms(d.maxOutage), ms(d.medOutage), ms(dt.medOutage)),
		len(d.runs) > 0 && d.maxOutage <= limit && d.medOutage <= dt.medOutage+10*time.Millisecond)
	e := get(scenStop, v)
	row("(e) zero failed requests", fmt.Sprintf("worst run %d failed", e.maxFailed), len(e.runs) > 0 && e.maxFailed == 0)
	if len(rep.res) == 3 {
		u, g, t := rep.res[0], rep.res[1], rep.res[2]
		row("resident memory ≤ keepalived's", fmt.Sprintf("RSS %d KiB vs %d KiB (guides), %d KiB (tuned); PSS %d KiB vs %d KiB, %d KiB", u.rss, g.rss, t.rss, u.pss, g.pss, t.pss),
			u.rss <= g.rss && u.rss <= t.rss)
		row("idle CPU ≤ keepalived's at the same advert interval (tuned), check included",
			fmt.Sprintf("%.2f%% vs %.2f%%", u.all, t.all), u.all <= t.all)
	}
	fmt.Fprintln(w)
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func (rep *report) resourceTable(w io.Writer) {
	fmt.Fprintf(w, "## Resources, idle as master for %v\n\n", rep.idle)
	fmt.Fprintln(w, "Each setup alone in a lab of its own, all three at once, nothing else running. "+
		"Memory is the sum of VmRSS of the supervisor's processes (vipvisor: itself and its guard; keepalived: its parent and VRRP child; no checker runs with `-P`), "+
		"and the sum of their PSS, which counts the pages two processes of one binary share once, "+
		"nginx not counted in either. CPU is utime+stime from /proc/PID/stat over the period, in % of one core; "+
		"\"with check\" adds the CPU time of the children the supervisor reaped (keepalived's check script: sh, ss, grep), "+
		"since vipvisor's HTTP probe runs inside its own process.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| setup | advert | processes | resident memory (RSS) | proportional (PSS) | CPU, own | CPU, with check |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: |")
	for _, u := range rep.res {
		adv := "100 ms"
		if u.setup.advert == "1" {
			adv = "1 s"
		}
		fmt.Fprintf(w, "| %s | %s | %d | %.1f MiB | %.1f MiB | %.2f%% | %.2f%% |\n", u.setup.name, adv, u.procs,
			float64(u.rss)/1024, float64(u.pss)/1024, u.own, u.all)
	}
	fmt.Fprintln(w)
}

func (rep *report) announceTable(w io.Writer) {
	fmt.Fprintln(w, "## Becoming master: VIPs installed and announced")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The master is stopped (SIGTERM, so it sends priority 0) and tcpdump on the lab's bridge records the backup taking over. "+
		"**All announced** is the time from the new master's first VRRP advert to the first gratuitous ARP of the last VIP to get one; "+
		"**burst over**, to the last gratuitous ARP of the first burst (both send the second 5 s later). "+
		"Both send the advert before adding the VIPs. Median of the runs; the worst in parentheses. "+
		"tcpdump captures with a 32 MiB buffer, and a run whose capture dropped frames (its closing statistics) is run again, not counted: "+
		"**left out** says how many were.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| VIPs | setup | all announced | burst over | addresses in the advert | VIPs never announced | runs left out |")
	fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
	for _, n := range vipCounts {
		for _, s := range []*setup{setups[0], setups[2]} {
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
