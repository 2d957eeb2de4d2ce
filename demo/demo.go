package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vipvisor/vipvisor/internal/progrun"
)

// demo builds the cluster and tells the story. Its first cleanup, run
// last, checks that nothing was left behind.
func demo(r *progrun.Runner, vipvisor, nginx string) {
	if abs, err := filepath.Abs(vipvisor); err == nil {
		vipvisor = abs
	}
	began := time.Now()
	var c *cluster
	r.Cleanup(func() { leftBehind(r, c, began) })
	r.Say("vipvisor demo: two web nodes, a (priority 150) and b (100), share one virtual IP;")
	r.Say("a client asks it every 10ms throughout and we count what it sees.")
	c = newCluster(r, vipvisor, nginx)
	(&story{c: c}).tell()
}

// leftBehind reports, once every other cleanup has run, whether any of
// the lab's namespaces or of its processes is left.
func leftBehind(r *progrun.Runner, c *cluster, began time.Time) {
	if c == nil {
		return
	}
	var left []string
	if out, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range out {
			if strings.Contains(e.Name(), c.lab.ID) {
				left = append(left, "namespace "+e.Name())
			}
		}
	}
	for _, p := range processesMentioning(c.dir) {
		left = append(left, "process "+p)
	}
	interrupted := r.Interrupted()
	switch {
	case len(left) > 0:
		r.Errorf("left behind: %s", strings.Join(left, ", "))
	case interrupted:
		fmt.Fprintln(r.Out(), "removed the lab: nothing left behind")
	case r.Failed():
		r.Say("\nthe demo did not finish: %s failed (see above); the lab is removed", c.step)
	default:
		r.Say("\nremoved the lab: no namespace, vipvisor or nginx left (%s in all)",
			dur(time.Since(began)))
	}
}

// processesMentioning lists the pids whose command line contains s.
func processesMentioning(s string) []string {
	entries, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
