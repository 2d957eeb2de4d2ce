package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
	"github.com/vipvisor/vipvisor/internal/progrun"
)

// runCapture is what -capture records of one run of a group: every TCP,
// ARP and VRRP frame on the bridge, the client's neighbour table as it
// changes, and each node's network counters before and after.
type runCapture struct {
	dir, name string
	tcpdump   *progrun.Process
	neigh     *progrun.Process
	// states stops the sampling of the web nodes' sockets on the VIP.
	states chan struct{}
	done   chan struct{}
}

// startRunCapture starts recording the run called name into b.capture.
func (b *bench) startRunCapture(c *cluster, name string) *runCapture {
	rc := &runCapture{dir: b.capture, name: name}
	pcap := rc.path("pcap")
	// The headers are enough: -s 200 keeps Ethernet, IP, TCP and the
	// first bytes of a request line.
	cmd := c.lab.Command(b.tcpdump, "-i", lab.Bridge, "-n", "-s", "200", "-B", "65536",
		"--immediate-mode", "-U", "-w", pcap, "tcp or arp or vrrp")
	var err error
	if rc.tcpdump, err = progrun.StartProcess(cmd, pcap+".log"); err != nil {
		b.r.Fatalf("tcpdump: %v", err)
	}
	waitListening(b, pcap+".log")
	if rc.neigh, err = progrun.StartProcess(c.client.Command("ip", "-ts", "monitor", "neigh"), rc.path("neigh")); err != nil {
		b.r.Fatalf("ip monitor: %v", err)
	}
	rc.counters(c, "before")
	rc.states, rc.done = make(chan struct{}), make(chan struct{})
	go rc.sampleStates(c)
	return rc
}

// sampleStates writes, every 100ms, how many TCP sockets on the VIP each
// web node holds, by state: what a node that gains the VIP finds there.
func (rc *runCapture) sampleStates(c *cluster) {
	defer close(rc.done)
	f, err := os.Create(rc.path("states"))
	if err != nil {
		return
	}
	defer f.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, n := range []*node{c.a, c.b} {
			out, _ := n.TryRun("ss", "-Htan", "src", c.vip.Addr().String())
			count := map[string]int{}
			for line := range strings.SplitSeq(out, "\n") {
				if f := strings.Fields(line); len(f) > 0 {
					count[f[0]]++
				}
			}
			fmt.Fprintf(f, "%s %s %v\n", time.Now().Format("15:04:05.000"), n.Name, count)
		}
		select {
		case <-rc.states:
			return
		case <-tick.C:
		}
	}
}

func (rc *runCapture) path(ext string) string { return filepath.Join(rc.dir, rc.name+"."+ext) }

// counters writes the kernel's network counters of every node.
func (rc *runCapture) counters(c *cluster, when string) {
	var w strings.Builder
	for _, n := range []*lab.Node{c.client, c.a.Node, c.b.Node} {
		out, _ := n.TryRun("nstat", "-asz")
		fmt.Fprintf(&w, "== %s %s\n%s", n.Name, when, out)
		out, _ = n.TryRun("ip", "neigh")
		fmt.Fprintf(&w, "-- neigh\n%s", out)
	}
	f, err := os.OpenFile(rc.path("counters"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err == nil {
		f.WriteString(w.String())
		f.Close()
	}
}

// stop ends the recording and writes the failed requests of rs, with
// their connections, beside it.
func (rc *runCapture) stop(b *bench, c *cluster, p *pair, rs []result) {
	close(rc.states)
	<-rc.done
	rc.counters(c, "after")
	for _, proc := range []*progrun.Process{rc.tcpdump, rc.neigh} {
		proc.Signal(syscall.SIGINT)
		if _, ok := proc.Wait(10 * time.Second); !ok {
			b.r.Fatalf("capture of %s did not stop", rc.name)
		}
	}
	var w strings.Builder
	load := p.load.Settled(time.Now())
	for _, r := range rs {
		fmt.Fprintf(&w, "scenario %s %s t0 %s\n", r.scen.key, r.setup.name, r.t0.Format(time.RFC3339Nano))
		for _, s := range load.Between(r.t0.Add(-r.scen.before), r.t0.Add(r.scen.window)) {
			if s.OK() {
				continue
			}
			fmt.Fprintf(&w, "  load %s %+8.1fms took %6.1fms local %-21s reused %-5v %s %v\n",
				s.At.Format("15:04:05.000000"), ms1(s.At.Sub(r.t0)), ms1(s.Took), s.Local, s.Reused, s.Who(), s.Err)
		}
		fmt.Fprintf(&w, "  timeline %s\n", load.Between(r.t0.Add(-r.scen.before), r.t0.Add(r.scen.window)))
	}
	os.WriteFile(rc.path("failed"), []byte(w.String()), 0o644)
}

func ms1(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// waitListening waits for tcpdump's log to say it listens.
func waitListening(b *bench, log string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := os.ReadFile(log)
		if strings.Contains(string(out), "listening on") {
			return
		}
		if time.Now().After(deadline) {
			b.r.Fatalf("tcpdump did not start: %s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
