package vrrp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// annCaptureTimeout bounds a capture: tcpdump must have seen every frame
// by then. Frames reach the bridge asynchronously, so this is real time.
const annCaptureTimeout = 10 * time.Second

func TestAnnouncementFrames(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	frames, err := announcements(mac, mac, []netip.Addr{netip.MustParseAddr("10.77.0.100")})
	if err != nil {
		t.Fatal(err)
	}
	const (
		eth     = "ffffffffffff" + "02000000000a" + "0806"
		arpHead = "0001" + "0800" + "06" + "04"
		pad     = "000000000000000000000000000000000000" // to 60 bytes
	)
	want := []string{
		// Request: sender and target 10.77.0.100, target MAC broadcast.
		eth + arpHead + "0001" + "02000000000a" + "0a4d0064" + "ffffffffffff" + "0a4d0064" + pad,
		// Reply: sender and target 10.77.0.100, target MAC our own.
		eth + arpHead + "0002" + "02000000000a" + "0a4d0064" + "02000000000a" + "0a4d0064" + pad,
	}
	if len(frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(frames), len(want))
	}
	for i, f := range frames {
		if got := hex.EncodeToString(f); got != want[i] {
			t.Errorf("frame %d (-want +got):\n-%s\n+%s", i, want[i], got)
		}
	}
	if _, err := announcements(mac, mac, []netip.Addr{netip.MustParseAddr("fd00::1")}); err == nil {
		t.Error("announcements for an IPv6 address: no error")
	}
}

func TestAnnounceErrors(t *testing.T) {
	// Neither call gets as far as opening a socket: no privilege needed.
	a := newARPAnnouncer("vvnosuch0", []netip.Addr{netip.MustParseAddr("10.77.0.100")}, nil)
	defer a.Close()
	if err := a.Announce(0); err != nil {
		t.Errorf("Announce(0) = %v, want nil", err)
	}
	if err := a.Announce(1); err == nil || !strings.Contains(err.Error(), "vvnosuch0") {
		t.Errorf("Announce on a missing interface = %v, want an error naming it", err)
	}
}

// annNew makes an arpAnnouncer inside the node's namespace; it then works
// from any goroutine.
func annNew(t testing.TB, n *lab.Node, vips []netip.Prefix) *arpAnnouncer {
	t.Helper()
	var a *arpAnnouncer
	if err := n.Do(func() error {
		a = newARPAnnouncer(n.Iface, VIPList(vips).Addrs(), vipTestLog(t))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// annCapture starts tcpdump on the lab's bridge for the next count ARP
// frames from mac, and returns a function that waits for them and returns
// them as a pcap file.
func annCapture(t *testing.T, l *lab.Lab, mac net.HardwareAddr, count int) (wait func() []byte) {
	t.Helper()
	var pcap, stderr bytes.Buffer
	cmd := l.Command("tcpdump", "-i", lab.Bridge, "-n", "-U", "-c", fmt.Sprint(count), "-w", "-",
		"arp and ether src "+mac.String())
	cmd.Stdout = &pcap
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tcpdump: %v", err)
	}
	pw.Close()
	exited := make(chan error, 1)
	listening := make(chan bool, 1)
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			stderr.WriteString(s.Text() + "\n")
			if strings.Contains(s.Text(), "listening on") {
				listening <- true
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case <-listening:
	case err := <-exited:
		t.Fatalf("tcpdump exited before listening: %v\n%s", err, stderr.String())
	case <-time.After(annCaptureTimeout):
		t.Fatalf("tcpdump not listening within %v", annCaptureTimeout)
	}
	return func() []byte {
		t.Helper()
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("tcpdump: %v\n%s", err, stderr.String())
			}
		case <-time.After(annCaptureTimeout):
			_ = cmd.Process.Kill()
			t.Fatalf("tcpdump did not see %d frames within %v", count, annCaptureTimeout)
		}
		return pcap.Bytes()
	}
}

// annTshark decodes the ARP frames of a pcap with Wireshark's dissector,
// an implementation other than the one that built them, one line per
// frame. It needs tshark: with CI=true its absence is a failure, elsewhere
// the test skips.
func annTshark(t *testing.T, pcap []byte) []string {
	t.Helper()
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		lab.Skip(t, "tshark not installed")
	}
	path := filepath.Join(t.TempDir(), "arp.pcap")
	if err := os.WriteFile(path, pcap, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-r", path, "-T", "fields", "-E", "separator=,"}
	for _, f := range []string{"eth.src", "eth.dst", "arp.opcode", "arp.src.hw_mac",
		"arp.src.proto_ipv4", "arp.dst.hw_mac", "arp.dst.proto_ipv4", "arp.isgratuitous"} {
		args = append(args, "-e", f)
	}
	out, err := exec.Command(tshark, args...).Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestAnnounceOnTheWire(t *testing.T) {
	t.Parallel()
	l, a := vipLab(t)
	l.AddNode("b", l.Host(12))
	vips := vipPrefixes("10.77.0.100/32", "10.77.0.101/24", "10.98.0.1/32")
	v := vipNew(t, a, vips...)
	if err := v.Add(); err != nil {
		t.Fatal(err)
	}
	ann := annNew(t, a, vips)
	const rounds = 2
	wait := annCapture(t, l, a.MAC, rounds*2*len(vips))
	if err := ann.Announce(rounds); err != nil {
		t.Fatal(err)
	}
	annCheck(t, annTshark(t, wait()), a.MAC, vips, rounds)
}

// annCheck checks that tshark's lines are the request and the reply
// form of the announcement of each VIP, rounds times each.
func annCheck(t *testing.T, lines []string, mac net.HardwareAddr, vips []netip.Prefix, rounds int) {
	t.Helper()
	annCheckForms(t, lines, mac, vips, rounds, rounds)
}

// annCheckForms is annCheck with the counts of requests and of replies
// apart.
func annCheckForms(t *testing.T, lines []string, mac net.HardwareAddr, vips []netip.Prefix, requests, replies int) {
	t.Helper()
	t.Logf("tshark, first frames:\n%s", strings.Join(lines[:min(2, len(lines))], "\n"))
	got := map[string]int{}
	for _, line := range lines {
		// Wireshark prints booleans as 1 (older) or True (newer).
		if rest, ok := strings.CutSuffix(line, ",True"); ok {
			line = rest + ",1"
		}
		got[line]++
	}
	bcast := "ff:ff:ff:ff:ff:ff"
	want := map[string]int{}
	for _, p := range vips {
		vip := p.Addr().String()
		// eth.src, eth.dst, opcode, sender MAC, sender IP, target MAC,
		// target IP, gratuitous.
		req := strings.Join([]string{mac.String(), bcast, "1", mac.String(), vip, bcast, vip, "1"}, ",")
		rep := strings.Join([]string{mac.String(), bcast, "2", mac.String(), vip, mac.String(), vip, "1"}, ",")
		want[req] = requests
		if replies > 0 {
			want[rep] = replies
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("frames and their counts (-want +got):\n-%v\n+%v", want, got)
	}
}

// TestAnnounceAsAdded: wired as an instance wires them, Add announces each
// VIP with an ARP request as soon as it is on the interface, without
// waiting for the others, and the Announce that follows sends the rest,
// so that every VIP still gets exactly its rounds of both forms.
func TestAnnounceAsAdded(t *testing.T) {
	t.Parallel()
	l, a := vipLab(t)
	vips := vipPrefixes("10.77.0.100/32", "10.77.0.101/32", "10.77.0.102/32")
	v := vipNew(t, a, vips...)
	ann := annNew(t, a, vips)
	v.added = ann.First
	const rounds = 3
	// Frames sent, as the interface counts them: nothing else sends in
	// the node's namespace meanwhile.
	sent := func(step string, f func() error) int {
		t.Helper()
		before := annTxPackets(t, a)
		if err := f(); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return annTxPackets(t, a) - before
	}
	wait := annCapture(t, l, a.MAC, len(vips))
	if n := sent("Add", v.Add); n != len(vips) {
		t.Errorf("Add sent %d frames, want one request a VIP, %d", n, len(vips))
	}
	annCheckForms(t, annTshark(t, wait()), a.MAC, vips, 1, 0)
	wait = annCapture(t, l, a.MAC, (2*rounds-1)*len(vips))
	if n := sent("Announce", func() error { return ann.Announce(rounds) }); n != (2*rounds-1)*len(vips) {
		t.Errorf("Announce(%d) after Add sent %d frames, want the first round's replies and %d rounds, %d", rounds, n, rounds-1, (2*rounds-1)*len(vips))
	}
	annCheckForms(t, annTshark(t, wait()), a.MAC, vips, rounds-1, rounds)
	// Nothing is left over for the next Announce: it sends every round.
	if n := sent("Announce again", func() error { return ann.Announce(rounds) }); n != rounds*2*len(vips) {
		t.Errorf("a second Announce(%d) sent %d frames, want %d", rounds, n, rounds*2*len(vips))
	}
}

// annTxPackets returns how many frames the node's eth0 has sent.
func annTxPackets(t *testing.T, n *lab.Node) int {
	t.Helper()
	out := n.Run("cat", "/sys/class/net/"+n.Iface+"/statistics/tx_packets")
	c, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("tx_packets %q: %v", out, err)
	}
	return c
}

// annNeighMAC returns the MAC address of the node's neighbour entry for
// addr, or "" if it has none.
func annNeighMAC(t *testing.T, n *lab.Node, addr netip.Addr) string {
	t.Helper()
	var entries []struct {
		LLAddr string `json:"lladdr"`
	}
	out := n.Run("ip", "-j", "neigh", "show", addr.String(), "dev", n.Iface)
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("ip -j neigh: %v: %s", err, out)
	}
	if len(entries) == 0 {
		return ""
	}
	return entries[0].LLAddr
}

// TestAnnounceMovesNeighbour is a takeover as a client sees it: its
// neighbour entry for the VIP points at node a; node b takes the VIP and
// announces it, and the entry moves to b's MAC. With arp_accept=0 (the
// lab's default) a gratuitous ARP only updates an entry that exists, as a
// real client's does.
func TestAnnounceMovesNeighbour(t *testing.T) {
	t.Parallel()
	l, a := vipLab(t)
	b := l.AddNode("b", l.Host(12))
	c := l.AddNode("c", l.Host(20))
	vips := vipPrefixes("10.77.0.100/32")
	vip := vips[0].Addr()
	va, vb := vipNew(t, a, vips...), vipNew(t, b, vips...)

	if err := va.Add(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(vip, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := annNeighMAC(t, c, vip); got != a.MAC.String() {
		t.Fatalf("client's entry for %s after ping: %q, want a's %s", vip, got, a.MAC)
	}
	if err := va.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := vb.Add(); err != nil {
		t.Fatal(err)
	}
	if got := annNeighMAC(t, c, vip); got != a.MAC.String() {
		t.Fatalf("client's entry for %s before the announcement: %q, want still a's %s", vip, got, a.MAC)
	}
	if err := annNew(t, b, vips).Announce(1); err != nil {
		t.Fatal(err)
	}
	// The client's kernel handles the frames asynchronously.
	lab.WaitFor(t, 5*time.Second, "client's entry to move to b", func() bool {
		return annNeighMAC(t, c, vip) == b.MAC.String()
	})
	if err := c.Ping(vip, 5*time.Second); err != nil {
		t.Fatalf("VIP on b: %v", err)
	}
}

// TestAnnounceTiming measures adding and announcing 1, 50 and 200 VIPs
// with keepalived's default of 5 rounds, and checks that every frame left
// the node. The times are logged, not asserted.
func TestAnnounceTiming(t *testing.T) {
	t.Parallel()
	l, a := vipLab(t)
	const rounds = 5
	for _, n := range []int{1, 50, 200} {
		vips := vipMany(n)
		v := vipNew(t, a, vips...)
		ann := annNew(t, a, vips)
		wait := annCapture(t, l, a.MAC, rounds*2*n)
		start := time.Now()
		if err := v.Add(); err != nil {
			t.Fatal(err)
		}
		added := time.Now()
		if err := ann.Announce(rounds); err != nil {
			t.Fatal(err)
		}
		done := time.Now()
		wait()
		t.Logf("%3d VIPs: add %v, announce %d frames %v, total %v",
			n, added.Sub(start), rounds*2*n, done.Sub(added), done.Sub(start))
		if err := v.Remove(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAnnounceWithoutIPv4 covers what arp.Dial cannot do: announce from
// an interface with no IPv4 address at all.
func TestAnnounceWithoutIPv4(t *testing.T) {
	t.Parallel()
	l, a := vipLab(t)
	a.Run("ip", "addr", "flush", "dev", a.Iface)
	wait := annCapture(t, l, a.MAC, 2)
	if err := annNew(t, a, vipPrefixes("10.77.0.100/32")).Announce(1); err != nil {
		t.Fatal(err)
	}
	wait()
}
