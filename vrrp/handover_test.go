package vrrp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"golang.org/x/net/bpf"

	"github.com/vipvisor/vipvisor/internal/lab"
	"github.com/vipvisor/vipvisor/internal/netutil"
)

// arpFrameFrom is an ARP reply frame from the Ethernet source src whose
// sender is (sha, spa), for the filter and parser tests.
func arpFrameFrom(t *testing.T, src, sha net.HardwareAddr, spa string) []byte {
	t.Helper()
	ip := netip.MustParseAddr(spa)
	p, err := arp.NewPacket(arp.OperationReply, sha, ip, sha, ip)
	if err != nil {
		t.Fatal(err)
	}
	f, err := netutil.ARPFrame(src, p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestConflictFilterAndParser runs the BPF program of Watch's socket in
// x/net/bpf's interpreter and the parser after it on the same frames:
// only another station's claim to a VIP gets through both.
func TestConflictFilterAndParser(t *testing.T) {
	ours := net.HardwareAddr{2, 0, 0, 0, 0, 0x0a}
	other := net.HardwareAddr{2, 0, 0, 0, 0, 0x0b}
	// The filter compares a MAC in two halves; each may match alone.
	sameHead := net.HardwareAddr{2, 0, 0, 0, 1, 0x0a}
	sameTail := net.HardwareAddr{6, 0, 0, 0, 0, 0x0a}
	vips := []netip.Addr{netip.MustParseAddr("10.77.0.100"), netip.MustParseAddr("10.98.0.1")}
	cfg, err := conflictFilter(ours, vips)
	if err != nil {
		t.Fatal(err)
	}
	var prog []bpf.Instruction
	for _, r := range cfg.Filter {
		prog = append(prog, r.Disassemble())
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		frame    []byte
		conflict bool
	}{
		{"another station claims the first VIP", arpFrameFrom(t, other, other, "10.77.0.100"), true},
		{"another station claims the second VIP", arpFrameFrom(t, other, other, "10.98.0.1"), true},
		{"a MAC that shares our first four bytes claims a VIP", arpFrameFrom(t, sameHead, sameHead, "10.77.0.100"), true},
		{"a MAC that shares our last two bytes claims a VIP", arpFrameFrom(t, sameTail, sameTail, "10.77.0.100"), true},
		{"another station's own address", arpFrameFrom(t, other, other, "10.77.0.12"), false},
		{"our own announcement", arpFrameFrom(t, ours, ours, "10.77.0.100"), false},
		{"our hand-over to the new master", arpFrameFrom(t, ours, other, "10.77.0.100"), false},
		{"the old master's hand-over to us", arpFrameFrom(t, other, ours, "10.77.0.100"), false},
		{"a short frame", []byte{1, 2, 3}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := vm.Run(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			c, parsed := conflictIn(tc.frame, ours, vips)
			// The filter may pass what the parser rejects, never the reverse.
			if passed := n > 0; parsed && !passed {
				t.Errorf("the filter drops a frame the parser reports")
			}
			if parsed != tc.conflict {
				t.Errorf("conflict %v (%+v), want %v", parsed, c, tc.conflict)
			}
			if tc.conflict && n < len(tc.frame) {
				t.Errorf("filter keeps %d of %d bytes", n, len(tc.frame))
			}
		})
	}
}

// TestHandOverMovesTheClient is a split brain healed one way: the client's
// entry for the VIP points at a, a steps down, b holds the VIP but never
// announces it. a's hand-over must move the client to b's MAC address,
// from frames whose Ethernet source is a's own.
func TestHandOverMovesTheClient(t *testing.T) {
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
	// The request for b's MAC, then the request and reply forms.
	wait := annCapture(t, l, a.MAC, 3)
	ctx, cancel := context.WithTimeout(t.Context(), resolveTimeout)
	defer cancel()
	mac, err := annNew(t, a, vips).HandOver(ctx, b.Addr.Addr(), a.Addr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if mac.String() != b.MAC.String() {
		t.Errorf("HandOver resolved %s to %s, want %s", b.Addr.Addr(), mac, b.MAC)
	}
	lab.WaitFor(t, 5*time.Second, "client's entry to move to b", func() bool {
		return annNeighMAC(t, c, vip) == b.MAC.String()
	})
	lines := annTshark(t, wait())
	// eth.src, eth.dst, opcode, sender MAC, sender IP, ... : the two
	// announcements name b as sender, and come from a.
	var handed int
	for _, line := range lines {
		f := strings.Split(line, ",")
		if len(f) > 4 && f[0] == a.MAC.String() && f[3] == b.MAC.String() && f[4] == vip.String() {
			handed++
		}
	}
	if handed != 2 {
		t.Errorf("%d frames from a with b as the VIP's sender, want 2:\n%s", handed, strings.Join(lines, "\n"))
	}
	if err := c.Ping(vip, 5*time.Second); err != nil {
		t.Fatalf("VIP on b after the hand-over: %v", err)
	}
}

// TestHandOverWithoutAnAnswer: a new master that does not answer ARP
// (routed, or forged) gets no hand-over, and the error says so once the
// context ends.
func TestHandOverWithoutAnAnswer(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := annNew(t, a, vipPrefixes("10.77.0.100/32")).HandOver(ctx, netip.MustParseAddr("10.77.0.99"), a.Addr.Addr())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("HandOver to nobody = %v, want a deadline error", err)
	}
}

// TestWatchReportsAnotherMAC: a's watch ignores a's own announcements and
// hand-overs and reports the first frame in which b claims a VIP.
func TestWatchReportsAnotherMAC(t *testing.T) {
	t.Parallel()
	l, a := vipLab(t)
	b := l.AddNode("b", l.Host(12))
	v1, v2 := vipPrefixes("10.77.0.100/32"), vipPrefixes("10.77.0.101/32")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := make(chan addressConflict, 4)
	done := make(chan error, 1)
	watcher := annNew(t, a, append(v1, v2...))
	go func() { done <- watcher.Watch(ctx, out) }()
	// Frames a sends itself about v1: its announcement and a hand-over
	// to b. Watch has its socket open once one of its own frames would
	// have been seen; give it until the first real conflict instead.
	mine := annNew(t, a, v1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := mine.Announce(1); err != nil {
			t.Fatal(err)
		}
		hctx, hcancel := context.WithTimeout(ctx, resolveTimeout)
		_, err := mine.HandOver(hctx, b.Addr.Addr(), a.Addr.Addr())
		hcancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := annNew(t, b, v2).Announce(1); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-out:
			if c.VIP != v2[0].Addr() || c.MAC.String() != b.MAC.String() {
				t.Fatalf("first conflict %v from %v, want %v from b's %v", c.VIP, c.MAC, v2[0].Addr(), b.MAC)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Watch after ctx ended = %v, want nil", err)
			}
			return
		case err := <-done:
			t.Fatalf("Watch ended early: %v", err)
		case <-time.After(100 * time.Millisecond): // the watch may not be listening yet
		}
		if time.Now().After(deadline) {
			t.Fatal("no conflict reported within 5s")
		}
	}
}
