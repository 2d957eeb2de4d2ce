package e2e

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
	"github.com/vipvisor/vipvisor/vrrp"
)

// The VRRP rows of the fault matrix: what an attacker on the LAN or an
// unlucky network does to a two-node cluster (priorities 150 and 100,
// VRRPv3 at 100ms, real nginx, a client polling the VIP), and what must
// hold. Floods come from a third node of the lab, x, and stay bounded: at
// most floodRate packets a second for floodFor.

const (
	advertInterval = 100 * time.Millisecond // the cluster's, see vipvisorEnv
	floodRate      = 10_000
	floodFor       = 2 * time.Second
)

// counterKeys are the /status vrrp.counters every node reports.
var counterKeys = []string{"adverts_received", "adverts_sent", "priority_zero_received", "priority_zero_sent",
	"become_master", "release_master", "announcements", "answers_suppressed", "split_brain", "interval_mismatch"}

// faultPair is the cluster of these tests: a (150) master and serving, b
// (100) its backup.
func faultPair(t *testing.T) (*cluster, *node, *node) {
	t.Helper()
	c, a, b := twoNodes(t, nil, nil)
	lab.WaitFor(t, 5*time.Second, "b to be a's backup", func() bool { return b.state() == "BACKUP" })
	return c, a, b
}

// vrrpCounters is the part of /status the fault tests read.
type vrrpCounters struct {
	VRRP struct {
		State      string            `json:"state"`
		Drops      map[string]uint64 `json:"drops"`
		Counters   map[string]uint64 `json:"counters"`
		SplitBrain uint64            `json:"split_brain"`
	} `json:"vrrp"`
}

// reading is what a node said at one moment: its /status and how many
// VRRP packets its kernel dropped because vipvisor's socket was full, which
// vipvisor cannot count.
type reading struct {
	at         time.Time
	st         vrrpCounters
	kernelDrop uint64
}

func (n *node) read(t *testing.T) reading {
	t.Helper()
	var r reading
	r.at = time.Now()
	code, body, err := n.HTTPGet("http://127.0.0.1:9797/status", 2*time.Second)
	if err != nil || code != 200 {
		t.Fatalf("%s: /status: %d %v", n.Name, code, err)
	}
	if err := json.Unmarshal([]byte(body), &r.st); err != nil {
		t.Fatalf("%s: /status: %v\n%s", n.Name, err, body)
	}
	r.kernelDrop = n.rawSocketDrops(t)
	return r
}

// counter returns one of vrrp.counters, failing the test if it is missing.
func (r reading) counter(t *testing.T, who, key string) uint64 {
	t.Helper()
	v, ok := r.st.VRRP.Counters[key]
	if !ok {
		t.Errorf("%s: /status vrrp.counters has no %q (it has %v)", who, key, r.st.VRRP.Counters)
	}
	return v
}

// since is the growth of one counter from r0 to r.
func (r reading) since(t *testing.T, r0 reading, who, key string) uint64 {
	t.Helper()
	return r.counter(t, who, key) - r0.counter(t, who, key)
}

// dropsSince is the growth of every drop reason from r0 to r.
func (r reading) dropsSince(r0 reading) (by map[string]uint64, total uint64) {
	by = map[string]uint64{}
	for k, v := range r.st.VRRP.Drops {
		if d := v - r0.st.VRRP.Drops[k]; d > 0 {
			by[k] = d
			total += d
		}
	}
	return by, total
}

// rawSocketDrops sums the drops column of the node's raw sockets of
// protocol 112 (local port 0070 in /proc/net/raw, read inside the node's
// namespace): packets the kernel discarded because the socket's receive
// buffer was full.
func (n *node) rawSocketDrops(t *testing.T) uint64 {
	t.Helper()
	var sum uint64
	for _, line := range strings.Split(n.Run("cat", "/proc/net/raw"), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasSuffix(f[1], ":0070") {
			continue
		}
		d, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err != nil {
			t.Fatalf("%s: /proc/net/raw line %q: %v", n.Name, line, err)
		}
		sum += d
	}
	return sum
}

// metric returns the sum of the series called name in the node's
// /metrics, with or without labels (one per instance, say), and whether
// there was any.
func (n *node) metric(t *testing.T, name string) (float64, bool) {
	t.Helper()
	_, body, err := n.HTTPGet("http://127.0.0.1:9797/metrics", 2*time.Second)
	if err != nil {
		t.Fatalf("%s: /metrics: %v", n.Name, err)
	}
	var sum float64
	found := false
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || rest[0] != ' ' && rest[0] != '{' {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

// forgedAdvert is a valid VRRPv3 advert for the cluster's virtual router
// (VRID 51, the VIP), sent by from to the group with TTL 255.
func (c *cluster) forgedAdvert(from *lab.Node, prio uint8, interval time.Duration) lab.Forged {
	c.t.Helper()
	a := vrrp.Advert{Version: 3, VRID: 51, Priority: prio, Interval: interval,
		Addrs: []netip.Addr{c.vip.Addr()}, Src: from.Addr.Addr(), Dst: lab.VRRPGroup}
	b, err := a.MarshalBinary()
	if err != nil {
		c.t.Fatal(err)
	}
	return lab.Forged{Payload: b}
}

// flood sends ps from f, round robin, at floodRate for floodFor, and
// returns how many of each were sent.
func flood(t *testing.T, f *lab.Forger, ps []lab.Forged) []int {
	t.Helper()
	sent, err := f.Flood(ps, floodRate, floodFor)
	if err != nil {
		t.Fatalf("flood: %v after %d packets", err, sent)
	}
	each := make([]int, len(ps))
	for i := range each {
		each[i] = sent / len(ps)
		if i < sent%len(ps) {
			each[i]++
		}
	}
	return each
}

// perInterval is how many advert intervals fit in d, rounded up.
func perInterval(d time.Duration) uint64 {
	return uint64((d + advertInterval - 1) / advertInterval)
}

// frameCapture counts the VRRP and ARP frames a node sends, as its bridge
// port receives them: what reaches the wire, whatever vipvisor counts.
type frameCapture struct {
	t       *testing.T
	cmd     *exec.Cmd
	out     string
	done    chan struct{}
	errDone chan struct{} // closed once stderr, tcpdump's messages, is read
	stderr  strings.Builder
}

func (c *cluster) capture(n *node) *frameCapture {
	t := c.t
	t.Helper()
	fc := &frameCapture{t: t, out: filepath.Join(t.TempDir(), "frames.txt"),
		done: make(chan struct{}), errDone: make(chan struct{})}
	out, err := os.Create(fc.out)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	fc.cmd = c.lab.Command("tcpdump", "-i", n.Port, "-Q", "in", "-nn", "-l", "ip proto 112 or arp")
	fc.cmd.Stdout = out
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fc.cmd.Stderr = pw
	if err := fc.cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	pw.Close()
	go func() { fc.cmd.Wait(); close(fc.done) }()
	t.Cleanup(func() { fc.cmd.Process.Kill(); <-fc.done; <-fc.errDone })
	// tcpdump says "listening on" once it captures; the bound guards a hang.
	listening := make(chan bool, 1)
	go func() {
		defer close(fc.errDone)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fc.stderr.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "listening on") {
				listening <- true
			}
		}
	}()
	select {
	case <-listening:
	case <-fc.errDone:
		t.Fatalf("tcpdump on %s ended: %s", n.Port, fc.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("tcpdump on %s did not start", n.Port)
	}
	return fc
}

// stop ends the capture and returns the frames seen.
func (fc *frameCapture) stop() (vrrpFrames, arpFrames uint64) {
	fc.t.Helper()
	fc.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-fc.done:
	case <-time.After(10 * time.Second):
		fc.t.Fatal("tcpdump did not stop on SIGINT")
	}
	<-fc.errDone
	// A capture that lost frames undercounts: say so next to the figures.
	for _, line := range strings.Split(fc.stderr.String(), "\n") {
		if strings.Contains(line, "dropped by kernel") && !strings.HasPrefix(line, "0 ") {
			fc.t.Logf("tcpdump: %s", line)
		}
	}
	b, err := os.ReadFile(fc.out)
	if err != nil {
		fc.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(line, "VRRP"):
			vrrpFrames++
		case strings.Contains(line, "ARP,"):
			arpFrames++
		}
	}
	return vrrpFrames, arpFrames
}

// servedOnlyBy checks that every request of the client succeeded and was
// answered by want.
func servedOnlyBy(t *testing.T, client *lab.Client, want *node, during string) {
	t.Helper()
	if n := client.Failures(); n > 0 {
		t.Errorf("%d requests failed %s (longest outage %v): %s", n, during, client.Outages(), client)
	}
	for _, s := range client.WhoAnswered() {
		if s.Who != want.Name && !strings.HasPrefix(s.Who, "!") {
			t.Errorf("%s answered %s, want only %s: %s", s.Who, during, want.Name, client)
			break
		}
	}
}

// garbageKind is one kind of bad packet and the drop reason it must be
// counted under, at the nodes it reaches.
type garbageKind struct {
	name, reason string
	pkt          lab.Forged
	unicastTo    *node // nil: sent to the group, so both nodes drop it
}

// garbage is one packet of every kind that vipvisor must drop, each wrong
// in one way only, built from a valid advert of priority 254 from x:
// whichever slipped through would make the master step down.
func (c *cluster) garbage(x *lab.Node, a *node) []garbageKind {
	valid := c.forgedAdvert(x, 254, advertInterval).Payload
	src := x.Addr.Addr()
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), valid...)) }
	resum := func(b []byte) []byte { lab.SetVRRPv3Checksum(b, src, lab.VRRPGroup); return b }
	v2, err := (&vrrp.Advert{Version: 2, VRID: 51, Priority: 254, Interval: time.Second,
		Addrs: []netip.Addr{c.vip.Addr()}}).MarshalBinary()
	if err != nil {
		c.t.Fatal(err)
	}
	otherVRID := vrrp.Advert{Version: 3, VRID: 52, Priority: 254, Interval: advertInterval,
		Addrs: []netip.Addr{c.vip.Addr()}, Src: src, Dst: lab.VRRPGroup}
	other, err := otherVRID.MarshalBinary()
	if err != nil {
		c.t.Fatal(err)
	}
	return []garbageKind{
		{"empty", "bad_length", lab.Forged{Payload: []byte{}}, nil},
		{"short", "bad_length", lab.Forged{Payload: valid[:4]}, nil},
		{"count beyond the end", "bad_length", lab.Forged{Payload: edit(func(b []byte) []byte { b[3] = 9; return resum(b) })}, nil},
		{"trailing bytes", "bad_length", lab.Forged{Payload: append(append([]byte(nil), valid...), 0, 0, 0, 0)}, nil},
		{"bad checksum", "bad_checksum", lab.Forged{Payload: edit(func(b []byte) []byte { b[6] ^= 0x5a; return b })}, nil},
		{"version 4", "bad_version", lab.Forged{Payload: edit(func(b []byte) []byte { b[0] = 0x41; return b })}, nil},
		{"version 2 to a v3 router", "bad_version", lab.Forged{Payload: v2}, nil},
		{"type 2", "bad_type", lab.Forged{Payload: edit(func(b []byte) []byte { b[0] = 0x32; return resum(b) })}, nil},
		{"VRID 0", "bad_vrid", lab.Forged{Payload: edit(func(b []byte) []byte { b[1] = 0; return resum(b) })}, nil},
		{"interval 0", "bad_interval", lab.Forged{Payload: edit(func(b []byte) []byte { b[4], b[5] = 0, 0; return resum(b) })}, nil},
		{"TTL 1", "bad_ttl", lab.Forged{TTL: 1, Payload: valid}, nil},
		{"another VRID", "other_vrid", lab.Forged{Payload: other}, nil},
		{"unicast in multicast mode", "wrong_destination", unicastTo(c, x, a), a},
	}
}

// unicastTo is a valid advert of priority 254 from x sent to n's own
// address rather than the group.
func unicastTo(c *cluster, x *lab.Node, n *node) lab.Forged {
	a := vrrp.Advert{Version: 3, VRID: 51, Priority: 254, Interval: advertInterval,
		Addrs: []netip.Addr{c.vip.Addr()}, Src: x.Addr.Addr(), Dst: n.Addr.Addr()}
	b, err := a.MarshalBinary()
	if err != nil {
		c.t.Fatal(err)
	}
	return lab.Forged{Dst: n.Addr.Addr(), Payload: b}
}

// TestFaultGarbageFlood: 20,000 bad packets of every kind in 2s change
// nothing for the client, each is counted under its reason, and the log
// gets a line per reason, not per packet.
func TestFaultGarbageFlood(t *testing.T) {
	c, a, b := faultPair(t)
	x := c.lab.AddNode("x", c.lab.Host(13))
	kinds := c.garbage(x, a)
	pkts := make([]lab.Forged, len(kinds))
	for i, k := range kinds {
		pkts[i] = k.pkt
	}
	f := x.Forger()
	client := lab.NewClient(c.client, c.url())
	client.Start()
	a0, b0 := a.read(t), b.read(t)
	sent := flood(t, f, pkts)
	// The last packets are in flight for a moment; the bound guards a hang.
	want := func(n *node) map[string]uint64 {
		m := map[string]uint64{}
		for i, k := range kinds {
			if k.unicastTo == nil || k.unicastTo == n {
				m[k.reason] += uint64(sent[i])
			}
		}
		return m
	}
	for _, n := range []*node{a, b} {
		r0 := a0
		if n == b {
			r0 = b0
		}
		wantBy := want(n)
		var wantTotal uint64
		for _, v := range wantBy {
			wantTotal += v
		}
		var r reading
		lab.WaitFor(t, 5*time.Second, n.Name+" to account for the flood", func() bool {
			r = n.read(t)
			_, got := r.dropsSince(r0)
			return got+r.kernelDrop-r0.kernelDrop >= wantTotal
		})
		gotBy, _ := r.dropsSince(r0)
		lost := r.kernelDrop - r0.kernelDrop
		for reason, w := range wantBy {
			// Every packet that reached vipvisor's socket is counted under
			// its own reason: only the kernel's drops may be missing.
			if g := gotBy[reason]; g > w || g+lost < w {
				t.Errorf("%s: %d dropped as %s, want %d (the kernel dropped %d before vipvisor saw them)",
					n.Name, g, reason, w, lost)
			}
		}
		for reason, g := range gotBy {
			if _, ok := wantBy[reason]; !ok {
				t.Errorf("%s: %d dropped as %s, which no packet was", n.Name, g, reason)
			}
		}
		t.Logf("%s: drops %v, kernel dropped %d of %d", n.Name, gotBy, lost, wantTotal)
		var all uint64
		for _, v := range r.st.VRRP.Drops {
			all += v
		}
		if m, ok := n.metric(t, "vipvisor_vrrp_dropped_adverts_total"); !ok || m < float64(all) {
			t.Errorf("%s: /metrics vipvisor_vrrp_dropped_adverts_total sums to %v (present %v), want at least /status's %d",
				n.Name, m, ok, all)
		}
	}
	client.Stop()
	servedOnlyBy(t, client, a, "during a garbage flood")
	if a.state() != "MASTER" || b.state() != "BACKUP" {
		t.Errorf("after the flood a is %s, b %s; want MASTER and BACKUP", a.state(), b.state())
	}
	reasons := map[string]bool{}
	for _, k := range kinds {
		reasons[k.reason] = true
	}
	for _, n := range []*node{a, b} {
		// Each reason is logged at most once per 10s: a line or two per
		// reason, not one per packet.
		if lines := strings.Count(n.v.log(), "advert dropped"); lines > 2*len(reasons) {
			t.Errorf("%s logged %d drop lines for %d packets of %d reasons, want at most %d",
				n.Name, lines, sum(sent), len(reasons), 2*len(reasons))
		}
	}
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

// checkAnswersBounded checks what the master sent while it was flooded with
// adverts it must answer (lower priority, priority 0): at most one answer
// per advert interval on top of its own adverts, and at most one
// announcement per interval, in its counters and on the wire.
func checkAnswersBounded(t *testing.T, a *node, a0, a1 reading, frames, arps uint64) {
	t.Helper()
	window := a1.at.Sub(a0.at)
	const few = 5
	maxAdverts := 2*perInterval(window) + few
	maxAnnounce := perInterval(window) + few
	if got := a1.since(t, a0, "a", "adverts_sent"); got > maxAdverts {
		t.Errorf("a counted %d adverts sent in %v of flood, want at most %d (one answer per interval)", got, window, maxAdverts)
	}
	if got := a1.since(t, a0, "a", "announcements"); got > maxAnnounce {
		t.Errorf("a counted %d announcements in %v of flood, want at most %d", got, window, maxAnnounce)
	}
	// On the wire the capture runs a little longer than the window; a
	// burst is GARP_REPEAT (5) requests and as many replies for the VIP.
	if frames > maxAdverts+few {
		t.Errorf("a sent %d VRRP frames in about %v of flood, want at most %d", frames, window, maxAdverts+few)
	}
	if maxARP := (maxAnnounce + few) * 10; arps > maxARP {
		t.Errorf("a sent %d ARP frames in about %v of flood, want at most %d", arps, window, maxARP)
	}
	t.Logf("a in %v: %d VRRP and %d ARP frames on the wire", window, frames, arps)
}

// floodAnswered floods the master a with valid adverts of priority prio
// from x and returns the readings around it, once every advert sent is
// accounted for as received under key, and the capture of a's frames.
func floodAnswered(t *testing.T, c *cluster, a, b *node, prio uint8, key string) (client *lab.Client, a0, a1, b0, b1 reading, frames, arps uint64) {
	x := c.lab.AddNode("x", c.lab.Host(13))
	f := x.Forger()
	pkt := c.forgedAdvert(x, prio, advertInterval)
	client = lab.NewClient(c.client, c.url())
	client.Start()
	capture := c.capture(a)
	a0, b0 = a.read(t), b.read(t)
	sent := flood(t, f, []lab.Forged{pkt})[0]
	a1 = waitAccounted(t, a, a0, key, sent)
	b1 = waitAccounted(t, b, b0, key, sent)
	frames, arps = capture.stop()
	return
}

// waitAccounted waits until every one of the sent adverts reached n's
// counters since r0: counted under key, dropped and counted, or dropped by
// the kernel before vipvisor could see it. The last of them are in flight
// for a moment; the bound only guards a hang. It returns the last reading.
func waitAccounted(t *testing.T, n *node, r0 reading, key string, sent int) reading {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := n.read(t)
		got := r.since(t, r0, n.Name, key)
		_, dropped := r.dropsSince(r0)
		lost := r.kernelDrop - r0.kernelDrop
		if got+dropped+lost >= uint64(sent) {
			return r
		}
		if time.Now().After(deadline) {
			t.Errorf("%s counted %d as %s and %d dropped, the kernel lost %d, of %d adverts sent",
				n.Name, got, key, dropped, lost, sent)
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// notServedBy is how long, in the client's samples, requests were not
// answered by n: failures and other nodes' answers alike.
func notServedBy(s lab.Samples, n *node) time.Duration {
	var d time.Duration
	for i := 0; i+1 < len(s); i++ {
		if s[i].Who() != n.Name {
			d += s[i+1].At.Sub(s[i].At)
		}
	}
	return d
}

// TestFaultLowerPriorityFlood: valid adverts of priority 1 at 10,000 a
// second do not move the VIP and do not make the master amplify them.
func TestFaultLowerPriorityFlood(t *testing.T) {
	c, a, b := faultPair(t)
	client, a0, a1, _, _, frames, arps := floodAnswered(t, c, a, b, 1, "adverts_received")
	client.Stop()
	servedOnlyBy(t, client, a, "during a flood of lower-priority adverts")
	if a.state() != "MASTER" || b.state() != "BACKUP" {
		t.Errorf("after the flood a is %s, b %s; want MASTER and BACKUP", a.state(), b.state())
	}
	checkAnswersBounded(t, a, a0, a1, frames, arps)

	// The flood shows in the counters (floodAnswered checked that every
	// advert was counted): all but the answers sent were suppressed.
	received := a1.since(t, a0, "a", "adverts_received")
	answered := a1.since(t, a0, "a", "adverts_sent")
	if got := a1.since(t, a0, "a", "answers_suppressed"); got == 0 || got+answered < received {
		t.Errorf("a suppressed %d answers to %d adverts received while it sent %d, want the rest suppressed",
			got, received, answered)
	}
	// Every counter is in /status and in /metrics, which reads later and
	// so has at least as much.
	for _, key := range counterKeys {
		name := "vipvisor_vrrp_" + key + "_total"
		v, ok := a.metric(t, name)
		if !ok || v < float64(a1.counter(t, "a", key)) {
			t.Errorf("a's /metrics: %s = %v (present %v), want at least /status's %d", name, v, ok, a1.counter(t, "a", key))
		}
	}
}

// TestFaultPriorityZeroFlood: priority-0 adverts ("master leaving") at
// 10,000 a second: the master answers at most once per interval, and the
// backup, whose down timer each one shortens to the skew time, does not
// hold the VIP for long.
func TestFaultPriorityZeroFlood(t *testing.T) {
	c, a, b := faultPair(t)
	client, a0, a1, b0, b1, frames, arps := floodAnswered(t, c, a, b, 0, "priority_zero_received")
	// Once the flood is over, a alone is master, at once.
	lab.WaitFor(t, time.Second, "a alone to hold the VIP after the flood", func() bool { return a.hasVIP() && !b.hasVIP() })
	c.waitServedBy(a, time.Second)
	client.Stop()
	if d := notServedBy(client.Samples(), a); d > time.Second {
		t.Errorf("during a priority-0 flood the client was not served by a for %v in all, want under a second: %s", d, client)
	}
	checkAnswersBounded(t, a, a0, a1, frames, arps)
	t.Logf("client: %s; b became master %d times", client, b1.since(t, b0, "b", "become_master"))
}

// TestFaultForgedLongInterval: one forged advert of priority 254 with the
// longest interval v3 can carry (40.95s) may make the master step down,
// but not silence the VIP for longer than about the configured
// Master_Down_Interval and a second.
func TestFaultForgedLongInterval(t *testing.T) {
	c, a, b := faultPair(t)
	x := c.lab.AddNode("x", c.lab.Host(13))
	f := x.Forger()
	client := lab.NewClient(c.client, c.url())
	client.Start()
	c.waitServedBy(a, 2*time.Second)
	if err := f.Send(c.forgedAdvert(x, 254, 4095*10*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	// Whoever is master again, the client must be answered; the bound is
	// far beyond the promise and only guards a hang.
	sent := time.Now()
	lab.WaitFor(t, 10*time.Second, "the VIP to answer again after the forged advert", func() bool {
		s := client.Samples()
		return len(s) > 0 && s[len(s)-1].At.After(sent) && s[len(s)-1].OK()
	})
	client.Stop()
	limit := vrrp.MasterDownInterval(3, 150, advertInterval) + time.Second
	if out := client.Outages(); out > 2500*time.Millisecond {
		t.Errorf("one forged advert silenced the VIP for %v, want at most about Master_Down_Interval + 1s = %v (bound 2.5s): %s",
			out, limit, client)
	}
	var mismatches uint64
	for _, n := range []*node{a, b} {
		mismatches += n.read(t).counter(t, n.Name, "interval_mismatch")
	}
	if mismatches == 0 {
		t.Errorf("neither node counted the forged interval in vrrp.counters.interval_mismatch")
	}
	c.waitServedBy(a, 5*time.Second)
	c.waitSoleHolder(a, b)
	t.Logf("longest outage %v; client: %s", client.Outages(), client)
}

// TestFaultSIGSTOPMaster: a master whose vipvisor is stopped (SIGSTOP)
// loses the VIP to the backup; once continued, the pair is back to one
// holder within a second, and the client is served.
func TestFaultSIGSTOPMaster(t *testing.T) {
	c, a, b := faultPair(t)
	a.v.signal(syscall.SIGSTOP)
	c.waitServedBy(b, 5*time.Second)
	// Stopped long enough for the backup's second GARP burst plan and many
	// down intervals to pass.
	time.Sleep(time.Second)
	a.v.signal(syscall.SIGCONT)
	resumed := time.Now()
	lab.WaitFor(t, time.Second, "exactly one VIP holder after SIGCONT", func() bool { return a.hasVIP() != b.hasVIP() })
	t.Logf("one holder %v after SIGCONT", time.Since(resumed))
	holder := a
	if b.hasVIP() {
		holder = b
	}
	c.waitServedBy(holder, 2*time.Second)
	// a has the higher priority and preempts: it ends up the master.
	c.waitServedBy(a, 5*time.Second)
	c.waitSoleHolder(a, b)
}

// TestFaultLinkFlap: the master's bridge port goes down and up five times
// in under two seconds, some downs shorter than the backup's down
// interval, some longer, so that the backup takes over in between; the
// pair settles to one master within about a second of the last change,
// and the client is served by it.
func TestFaultLinkFlap(t *testing.T) {
	c, a, b := faultPair(t)
	tookOver := 0
	for _, down := range []time.Duration{50, 400, 50, 400, 100} {
		// The stimulus: changes at about the pace of VRRP's own timers.
		a.LinkDown()
		time.Sleep(down * time.Millisecond)
		if b.hasVIP() {
			tookOver++
		}
		a.LinkUp()
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("b held the VIP at the end of %d of 5 downs", tookOver)
	last := time.Now()
	// Settled: a, which preempts, is the one master and alone holds the
	// VIP, and the client gets a's page.
	lab.WaitFor(t, 1500*time.Millisecond, "a alone to be master and serve after the last link change", func() bool {
		if a.state() != "MASTER" || b.state() != "BACKUP" || !a.hasVIP() || b.hasVIP() {
			return false
		}
		_, body, err := c.client.HTTPGet(c.url(), 100*time.Millisecond)
		return err == nil && body == "a"
	})
	t.Logf("settled %v after the last change", time.Since(last))
}

// TestFaultMulticastBlockedUnicastPeers: where multicast VRRP is dropped
// (a cloud, a firewall), unicast peers still make one master, and a
// planned stop of the master moves the VIP with no failed request.
func TestFaultMulticastBlockedUnicastPeers(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", 11), c.node("b", 12)
	for _, n := range []*node{a, b} {
		n.BlockVRRP(lab.VRRPBlock{To: lab.VRRPGroup})
	}
	a.startVipvisor(150, "VIPVISOR_UNICAST_PEERS="+b.Addr.Addr().String())
	b.startVipvisor(100, "VIPVISOR_UNICAST_PEERS="+a.Addr.Addr().String())
	c.waitServedBy(a, 10*time.Second)
	lab.WaitFor(t, 5*time.Second, "b to follow a", func() bool { return b.state() == "BACKUP" })
	// Many down intervals: b would have taken over by now if it did not
	// hear a.
	time.Sleep(time.Second)
	if a.state() != "MASTER" || b.state() != "BACKUP" {
		t.Fatalf("a is %s, b %s with multicast blocked; want MASTER and BACKUP", a.state(), b.state())
	}
	c.exactlyOneHolds(a, b)
	client := lab.NewClient(c.client, c.url())
	client.Start()
	c.waitServedBy(a, 2*time.Second)
	a.stop()
	c.waitServedBy(b, 5*time.Second)
	client.Stop()
	ss := handOverSamples(t, client)
	if n := ss.Failures(); n > 0 {
		t.Errorf("%d requests failed while a stopped: %s", n, client)
	}
	if s := ss.Spans(); len(s) != 2 || s[0].Who != "a" || s[1].Who != "b" {
		t.Errorf("answers: %s, want a then b", client)
	}
}
