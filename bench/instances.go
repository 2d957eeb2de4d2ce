package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// The idle cost by number of virtual routers: one node holds N of them as
// master, each its own VRID and one VIP, under vipvisor (one process,
// VIPVISOR_INSTANCES) and under tuned keepalived (N vrrp_instance blocks).
// Both watch nginx once, whatever N is: vipvisor probes its one child,
// and the keepalived instances all track one vrrp_script, as a keepalived
// user writes it.

// defaultRouterCounts are the numbers of virtual routers measured.
const defaultRouterCounts = "1,10,50"

// maxRouters is the most a node can hold: VRIDs 1 to 255.
const maxRouters = 255

// routerSubnet holds the routers' VIPs, Host(1000) on.
var routerSubnet = netip.MustParsePrefix("10.79.0.0/16")

// routerCost is what one setup's supervisor used idle as master of
// routers virtual routers.
type routerCost struct {
	usage
	routers int
}

// fleet is one setup holding several virtual routers on one node.
type fleet struct {
	in    *instance
	vrids []int
	vips  []netip.Prefix // vips[i] is the VIP of vrids[i]
}

// parseCounts parses the -instances option: numbers of virtual routers,
// comma-separated, each from 1 to maxRouters, none twice.
func parseCounts(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > maxRouters {
			return nil, fmt.Errorf("-instances %q: %q is not a number of virtual routers from 1 to %d", s, f, maxRouters)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("-instances %q: %d is there twice", s, n)
		}
		out = append(out, n)
	}
	return out, nil
}

// routerCosts measures, for each count, vipvisor and tuned keepalived
// (the same advert interval) holding that many virtual routers, each
// alone in a lab of its own, both at once, as resources does. Every
// router must be master with its VIP before and after the measurement, or
// the benchmark fails.
func (b *bench) routerCosts(counts []int, idle time.Duration) []routerCost {
	var out []routerCost
	for _, count := range counts {
		var fs []*fleet
		var ins []*instance
		for _, s := range []*setup{setVipvisor, setTuned} {
			f := b.startFleet(s, count)
			fs, ins = append(fs, f), append(ins, f.in)
		}
		for _, f := range fs {
			b.awaitMasters(f, 30*time.Second)
		}
		// The fleets run different binaries: nothing else shares their
		// pages.
		us := b.idleUsage(ins, idle)
		for i, in := range ins {
			us[i].rss, us[i].pss, us[i].anon = memory(in.pids())
		}
		for _, f := range fs {
			b.mustBeMasters(f, "after the measurement")
		}
		for i, f := range fs {
			u := us[i]
			b.r.Say("  %3d router(s), %-19s CPU %.2f%% (%.2f%% with check), PSS %d KiB, anonymous %d KiB",
				count, u.setup.name, u.own, u.all, u.pss, u.anon)
			out = append(out, routerCost{usage: u, routers: count})
			f.in.stop()
		}
	}
	return out
}

// startFleet starts setup s as master of count virtual routers, VRIDs 1
// on, on a node of a lab of its own.
func (b *bench) startFleet(s *setup, count int) *fleet {
	l := lab.New(b.r, routerSubnet)
	n := newNode(b.r, l, filepath.Join(b.dir, fmt.Sprintf("routers-%d-%s", count, s.key)), "a", 11, 100)
	f := &fleet{vrids: make([]int, count), vips: make([]netip.Prefix, count)}
	for i := range count {
		f.vrids[i] = 1 + i
		f.vips[i] = netip.PrefixFrom(l.Host(1000+i).Addr(), 32)
	}
	f.in = b.newInstance(s, n)
	if s.keepalived {
		f.in.web = startService(b.r, n, b.nginx)
		b.startKeepalived(f.in, keepalivedRouters(s, n, f.vrids, f.vips))
	} else {
		b.startVipvisor(f.in, vipvisorRouters(n.prio, f.vrids, f.vips)...)
	}
	b.r.Cleanup(f.in.stop)
	return f
}

// vipvisorRouters are vipvisor's settings for one instance per VRID,
// named vr<VRID>, with its VIP; prio is every instance's priority.
func vipvisorRouters(prio int, vrids []int, vips []netip.Prefix) []string {
	names := make([]string, len(vrids))
	env := []string{"VIPVISOR_PRIORITY=" + strconv.Itoa(prio)}
	for i, id := range vrids {
		names[i] = "vr" + strconv.Itoa(id)
		env = append(env, fmt.Sprintf("VIPVISOR_VR%d_VRID=%d", id, id), fmt.Sprintf("VIPVISOR_VR%d_VIPS=%s", id, vips[i]))
	}
	return append(env, "VIPVISOR_INSTANCES="+strings.Join(names, ","))
}

// keepalivedRouters is keepalived.conf with one vrrp_instance VI_<VRID>
// per VRID, with its VIP, all tracking the one vrrp_script.
func keepalivedRouters(s *setup, n *node, vrids []int, vips []netip.Prefix) string {
	var w strings.Builder
	keepalivedGlobals(&w, s, n)
	for i, id := range vrids {
		keepalivedInstance(&w, s, n, id, vips[i:i+1], true)
	}
	return w.String()
}

// awaitMasters waits until every router of f is master with its VIP on
// the interface, and fails naming those that are not after timeout.
func (b *bench) awaitMasters(f *fleet, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	// Real time: the supervisors run on their own.
	for time.Now().Before(deadline) && len(f.notMaster()) > 0 {
		b.pause(50 * time.Millisecond)
	}
	b.mustBeMasters(f, fmt.Sprintf("within %v of the start", timeout))
}

// mustBeMasters fails the benchmark unless every router of f is master
// with its VIP: nothing is measured from a setup that did not converge.
func (b *bench) mustBeMasters(f *fleet, when string) {
	missing := f.notMaster()
	if len(missing) == 0 {
		return
	}
	if len(missing) > 10 {
		missing = append(missing[:10], fmt.Sprintf("and %d more", len(missing)-10))
	}
	b.r.Errorf("%s with %d virtual routers, %s: not master with its VIP: %s",
		f.in.s.name, len(f.vrids), when, strings.Join(missing, "; "))
	b.r.Print("%s", f.in.sup.LogTail(30))
	b.r.Abort()
}

// notMaster describes the routers of f that are not master with their VIP.
func (f *fleet) notMaster() []string {
	return notMaster(f.vrids, f.vips, f.states(), f.in.n.Addrs())
}

// states returns the state of each router of f by VRID: vipvisor's
// /status ("STARTING" for all while its child is not healthy), keepalived's
// log.
func (f *fleet) states() map[int]string {
	out := map[int]string{}
	if f.in.s.keepalived {
		states := f.in.kaStates()
		for _, id := range f.vrids {
			out[id] = states[fmt.Sprintf("VI_%d", id)]
		}
		return out
	}
	st, ok := f.in.status()
	for _, r := range st.Instances {
		out[r.VRID] = r.State
		if !st.Child.Healthy {
			out[r.VRID] = "STARTING"
		}
	}
	if !ok {
		clear(out)
	}
	return out
}

// notMaster describes each of vrids whose state is not MASTER or whose
// VIP is not among addrs.
func notMaster(vrids []int, vips []netip.Prefix, states map[int]string, addrs []netip.Prefix) []string {
	have := map[netip.Addr]bool{}
	for _, a := range addrs {
		have[a.Addr()] = true
	}
	var out []string
	for i, id := range vrids {
		st, ok := states[id]
		switch {
		case !ok || st == "":
			out = append(out, fmt.Sprintf("VRID %d: no state", id))
		case st != "MASTER":
			out = append(out, fmt.Sprintf("VRID %d: %s", id, st))
		case !have[vips[i].Addr()]:
			out = append(out, fmt.Sprintf("VRID %d: %s not on the interface", id, vips[i].Addr()))
		}
	}
	return out
}

// routerHeading starts the section of results.md routerTable writes.
const routerHeading = "## Idle cost by number of virtual routers"

// routerTable writes the section of the report on rep.routers: when and
// where, how, and a row per count and setup. "Per extra instance" is the
// growth over the setup's smallest count, divided by the routers added.
func (rep *report) routerTable(w io.Writer) {
	if len(rep.routers) == 0 {
		return
	}
	fmt.Fprintf(w, "%s\n\n", routerHeading)
	fmt.Fprintf(w, "Measured %s on %s; %v idle per cell, this part took %s.\n\n",
		rep.date, rep.machine, rep.routerIdle, rep.routerTook.Round(time.Second))
	fmt.Fprintln(w, "For each count, vipvisor (one process holding every router through `VIPVISOR_INSTANCES`, GET /health of its one nginx every 1 s) "+
		"and tuned keepalived (as many `vrrp_instance` blocks, all tracking the one `vrrp_script` of the tuned setup, every 1 s, as a keepalived user writes it) "+
		"ran alone as master in a lab of their own, both at once: VRRPv3, advert 100 ms, priority 100, each router its own VRID and one /32 VIP. "+
		"Every router was checked to be MASTER (vipvisor's /status, keepalived's log) with its VIP on the interface before and after the period; "+
		"then, after 6 s for start-up work, CPU and memory are measured as in the resources table, summed over the supervisor's processes (vipvisor and its guard; keepalived's parent and VRRP child; nginx not counted), "+
		"**anonymous** being smaps_rollup's Pss_Anon.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| instances | setup | CPU, own | CPU, with check | PSS | anonymous | per extra instance: CPU, with check | per extra instance: PSS |")
	fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range rep.routers {
		cpu, pss := "—", "—"
		if base := smallest(rep.routers, c.setup); base.routers < c.routers {
			added := float64(c.routers - base.routers)
			cpu = fmt.Sprintf("%.3f%%", (c.all-base.all)/added)
			pss = fmt.Sprintf("%.0f KiB", float64(c.pss-base.pss)/added)
		}
		fmt.Fprintf(w, "| %d | %s | %.2f%% | %.2f%% | %.1f MiB | %.1f MiB | %s | %s |\n", c.routers, c.setup.name,
			c.own, c.all, float64(c.pss)/1024, float64(c.anon)/1024, cpu, pss)
	}
	fmt.Fprintln(w)
}

// smallest returns the cost of s with the fewest routers in cs.
func smallest(cs []routerCost, s *setup) routerCost {
	var out routerCost
	for _, c := range cs {
		if c.setup == s && (out.setup == nil || c.routers < out.routers) {
			out = c
		}
	}
	return out
}

// writeRouters prints the section on rep.routers and puts it into
// dir/results.md, in place of the one there or after the rest, leaving
// the rest as it is: for a run of this part alone.
func (b *bench) writeRouters(dir string, rep *report) {
	rep.date = time.Now().UTC().Format("2006-01-02")
	var md strings.Builder
	rep.routerTable(&md)
	fmt.Fprint(b.r.Out(), "\n"+md.String())
	path := filepath.Join(dir, "results.md")
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.r.Fatalf("%v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.r.Fatalf("%v", err)
	}
	b.writeFile(path, replaceSection(string(old), md.String()), 0o644)
	b.r.Say("wrote %s", path)
}

// replaceSection returns doc with section in place of the section of doc
// with the same heading (its first line), up to the next "## " heading,
// or appended after a blank line if doc has none.
func replaceSection(doc, section string) string {
	heading, _, _ := strings.Cut(section, "\n")
	start := -1
	if strings.HasPrefix(doc, heading+"\n") {
		start = 0
	} else if i := strings.Index(doc, "\n"+heading+"\n"); i >= 0 {
		start = i + 1
	}
	if start < 0 {
		if doc = strings.TrimRight(doc, "\n"); doc != "" {
			doc += "\n\n"
		}
		return doc + section
	}
	end := len(doc)
	if i := strings.Index(doc[start+len(heading):], "\n## "); i >= 0 {
		end = start + len(heading) + i + 1
	}
	return doc[:start] + section + doc[end:]
}
