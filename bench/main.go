// Command bench is `make bench`: it compares vipvisor with keepalived 2.2
// (as the guides set it up, and tuned) on the project's namespace lab,
// with real nginx. A client polls the VIP every 10ms with a 100ms timeout,
// and a load asks it 2,000 times a second with a 2s timeout, while faults
// are injected on the master; vipvisor runs with and without
// VIPVISOR_LISTEN, and scenario (g) at 10ms adverts. It also measures each
// supervisor's memory and idle CPU, and how long a new master takes to
// install and announce 1, 50 and 200 VIPs, and the idle cost of holding
// 1, 10 and 50 virtual routers (-instances; -instances-only measures just
// that and puts its section into results.md). It prints a Markdown table,
// writes it to bench/results.md and draws a timeline per scenario in
// bench/scenario-*.svg. It needs root, nginx, keepalived and tcpdump.
//
// Usage:
//
//	bench [-reps 5] [-idle 40s] [-instances 1,10,50] [-instances-idle 15s] [-instances-only]
//	      [-scenarios a,b,c,d,e+f,g] [-vipvisor bin/vipvisor] [-out bench]
//	      [-capture dir]
//
// -scenarios runs only the named groups of scenarios and skips the
// other parts: a quicker look at one change, written to -out as a report
// of its own. -capture leaves in dir, for each run of a group, a capture
// of the bridge, the client's neighbour changes, the web nodes' sockets
// on the VIP every 100 ms, their counters, and the load's failed
// requests with the client port of each, to find them in the capture.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vipvisor/vipvisor/internal/progrun"
)

// bench is one run of the benchmark.
type bench struct {
	r *progrun.Runner
	// programs' paths
	vipvisor, nginx, keepalived, tcpdump, ss, grep string
	dir                                            string // the nodes' files, removed at the end
	runs                                           int    // instances started, to name their logs
	// capture, if set, is where each run of a group of scenarios
	// leaves a capture of the bridge and its failed requests.
	capture string
}

func main() {
	vipvisor := flag.String("vipvisor", "bin/vipvisor", "the vipvisor binary to run (make build)")
	reps := flag.Int("reps", 5, "repetitions of each scenario for each setup")
	idle := flag.Duration("idle", 40*time.Second, "how long to measure idle CPU")
	instances := flag.String("instances", defaultRouterCounts, "numbers of virtual routers to measure idle cost for, comma-separated (empty: none)")
	instancesIdle := flag.Duration("instances-idle", 15*time.Second, "how long to measure each number of virtual routers")
	instancesOnly := flag.Bool("instances-only", false, "measure only the idle cost by number of virtual routers; replace its section of results.md")
	only := flag.String("scenarios", "", "run only these groups of scenarios (of a, b, c, d, e+f, g), comma-separated, and no other part")
	out := flag.String("out", "bench", "directory for results.md and the pictures")
	started := flag.Int64("started", 0, "when make bench started, in Unix nanoseconds (default: now)")
	verbose := flag.Bool("v", false, "on a failure, print the lab's diagnostics too")
	capture := flag.String("capture", "", "with -scenarios: a directory for a capture of the bridge and the failed requests of each run")
	flag.Parse()
	began := time.Now()
	if *started > 0 {
		began = time.Unix(0, *started)
	}
	counts, err := parseCounts(*instances)
	if err == nil && *instancesOnly && len(counts) == 0 {
		err = errors.New("-instances-only needs -instances")
	}
	var chosen []group
	if err == nil {
		chosen, err = chooseGroups(*only)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	b, err := preflight(*vipvisor)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	b.r = progrun.New(*verbose)
	b.capture = *capture
	b.r.Run(func() {
		b.main(options{reps: *reps, idle: *idle, out: *out, began: began,
			routers: counts, routerIdle: *instancesIdle, routersOnly: *instancesOnly,
			groups: chosen, groupsOnly: *only != ""})
	})
}

type options struct {
	reps  int
	idle  time.Duration
	out   string
	began time.Time
	// routers are the numbers of virtual routers measured idle, for
	// routerIdle each; routersOnly runs that part alone.
	routers     []int
	routerIdle  time.Duration
	routersOnly bool
	// groups are the groups of scenarios run; groupsOnly runs them alone.
	groups     []group
	groupsOnly bool
}

// chooseGroups parses the -scenarios option: every group if empty.
func chooseGroups(s string) ([]group, error) {
	if strings.TrimSpace(s) == "" {
		return groups, nil
	}
	var out []group
	for _, name := range strings.Split(s, ",") {
		i := slices.IndexFunc(groups, func(g group) bool { return g.name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("-scenarios %q: no group %q (a, b, c, d, e+f, g)", s, name)
		}
		out = append(out, groups[i])
	}
	return out, nil
}

// preflight finds the programs the benchmark runs before it makes
// anything.
func preflight(vipvisor string) (*bench, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("run me as root: the lab is made of network namespaces")
	}
	abs, err := filepath.Abs(vipvisor)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("%w (make build makes it)", err)
	}
	b := &bench{vipvisor: abs}
	for _, p := range []struct {
		dst  *string
		name string
	}{{&b.nginx, "nginx"}, {&b.keepalived, "keepalived"}, {&b.tcpdump, "tcpdump"}, {&b.ss, "ss"}, {&b.grep, "grep"}} {
		*p.dst = find(p.name)
		if *p.dst == "" {
			return nil, fmt.Errorf("%s is not installed (make bench installs nginx and keepalived)", p.name)
		}
	}
	return b, nil
}

func find(name string) string {
	for _, p := range []string{name, "/usr/sbin/" + name, "/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// main runs the four parts and writes the report, or with routersOnly
// just the idle cost by number of virtual routers and its section. The
// work directory is under /run, not /tmp: keepalived's
// enable_script_security refuses a check script below a directory others
// may write to.
func (b *bench) main(o options) {
	dir, err := os.MkdirTemp("/run", "vipvisor-bench-")
	if err != nil {
		b.r.Fatalf("work directory: %v", err)
	}
	b.r.Cleanup(func() { os.RemoveAll(dir) })
	b.dir = dir
	rep := report{machine: describeMachine(), reps: o.reps, idle: o.idle}
	b.r.Say("vipvisor benchmark: %s", rep.machine)
	if o.routersOnly {
		b.measureRouters(&rep, o)
		b.writeRouters(o.out, &rep)
		return
	}
	if o.groupsOnly {
		rep.results = b.scenarios(b.newCluster(), o.groups, o.reps)
		rep.wall = time.Since(o.began)
		b.write(o.out, &rep)
		return
	}
	b.r.Say("idle resources, %v as master at 100ms adverts", o.idle)
	rep.res = b.resources(o.idle)
	b.measureRouters(&rep, o)
	b.r.Say("becoming master with 1, 50, 200 VIPs")
	rep.ann = b.announcements(3)
	b.r.Say("scenarios, %d repetitions each, setups alternating", o.reps)
	rep.results = b.scenarios(b.newCluster(), o.groups, o.reps)
	rep.wall = time.Since(o.began)
	b.write(o.out, &rep)
}

// measureRouters runs the idle cost by number of virtual routers into rep,
// if o asks for any.
func (b *bench) measureRouters(rep *report, o options) {
	if len(o.routers) == 0 {
		return
	}
	b.r.Say("idle cost of %v virtual routers, %v each as master at 100ms adverts", o.routers, o.routerIdle)
	start := time.Now()
	rep.routers = b.routerCosts(o.routers, o.routerIdle)
	rep.routerIdle, rep.routerTook = o.routerIdle, time.Since(start)
}
