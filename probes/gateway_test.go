package probes

import (
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

func TestSenderAddr(t *testing.T) {
	gw := netip.MustParseAddr("10.0.0.1")
	p := netip.MustParsePrefix
	tests := []struct {
		name  string
		addrs []netip.Prefix
		want  string
	}{
		{"only address", []netip.Prefix{p("10.0.0.5/24")}, "10.0.0.5"},
		{"primary before VIP in the subnet", []netip.Prefix{p("10.0.0.5/24"), p("10.0.0.100/24")}, "10.0.0.5"},
		{"VIP /32 first", []netip.Prefix{p("10.0.0.100/32"), p("10.0.0.5/24")}, "10.0.0.5"},
		{"other subnet first", []netip.Prefix{p("192.168.1.5/24"), p("10.0.0.5/24")}, "10.0.0.5"},
		{"no address in the subnet", []netip.Prefix{p("fd00::5/64"), p("192.168.1.5/24")}, "192.168.1.5"},
		{"the gateway's own address skipped", []netip.Prefix{p("10.0.0.1/24"), p("10.0.0.5/24")}, "10.0.0.5"},
		{"no IPv4 address", []netip.Prefix{p("fd00::5/64")}, "0.0.0.0"},
		{"none at all", nil, "0.0.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := senderAddr(tc.addrs, gw).String(); got != tc.want {
				t.Errorf("senderAddr = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestRequestFrame(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	f, err := requestFrame(mac, netip.MustParseAddr("10.77.0.11"), netip.MustParseAddr("10.77.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "ffffffffffff" + "02000000000a" + "0806" + // Ethernet: broadcast from mac, ARP
		"0001" + "0800" + "06" + "04" + "0001" + // Ethernet/IPv4, request
		"02000000000a" + "0a4d000b" + // sender
		"000000000000" + "0a4d0001" + // target: zero MAC, the gateway
		"000000000000000000000000000000000000" // padding to 60 bytes
	if got := hex.EncodeToString(f); got != want {
		t.Errorf("frame (-want +got):\n-%s\n+%s", want, got)
	}
}

func TestIsReplyFrom(t *testing.T) {
	gw := netip.MustParseAddr("10.77.0.1")
	frame := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const (
		eth   = "02000000000a" + "02000000000b" + "0806"
		head  = "0001" + "0800" + "06" + "04"
		other = "02000000000a" + "0a4d000b"
	)
	tests := []struct {
		name  string
		frame string
		want  bool
	}{
		{"reply from the gateway", eth + head + "0002" + "02000000000b" + "0a4d0001" + other, true},
		{"reply from another address", eth + head + "0002" + "02000000000b" + "0a4d0002" + other, false},
		{"request from the gateway", eth + head + "0001" + "02000000000b" + "0a4d0001" + other, false},
		{"not ARP", "02000000000a" + "02000000000b" + "0800" + head + "0002" + "02000000000b" + "0a4d0001" + other, false},
		{"truncated", eth + head + "0002" + "0200", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isReplyFrom(frame(tc.frame), gw); got != tc.want {
				t.Errorf("isReplyFrom = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewGatewayErrors(t *testing.T) {
	for _, gw := range []string{"::1", "0.0.0.0", "224.0.0.18", "127.0.0.1"} {
		if _, err := NewGateway("lo", netip.MustParseAddr(gw)); err == nil {
			t.Errorf("NewGateway(lo, %s): no error", gw)
		}
	}
	if _, err := NewGateway("lo", netip.Addr{}); err == nil {
		t.Error("NewGateway with the zero address: no error")
	}
	_, err := NewGateway("vvnosuch0", netip.MustParseAddr("10.77.0.1"))
	if err == nil || !strings.Contains(err.Error(), "vvnosuch0") {
		t.Errorf("NewGateway on a missing interface = %v, want an error naming it", err)
	}
}

// gatewayIn creates a gateway probe inside node n's namespace; it checks
// from there whichever goroutine calls it.
func gatewayIn(t *testing.T, n *lab.Node, gw netip.Addr) Probe {
	t.Helper()
	var p Probe
	err := n.Do(func() error {
		var err error
		p, err = NewGateway(n.Iface, gw)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.(interface{ Close() error }).Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func TestGatewayLab(t *testing.T) {
	lab.RequireRoot(t)
	l := lab.New(t, netip.Prefix{})
	a := l.AddNode("a", l.Host(11))
	b := l.AddNode("b", l.Host(12))
	gw := b.Addr.Addr()
	const timeout = 500 * time.Millisecond

	t.Run("reply", func(t *testing.T) {
		p := gatewayIn(t, a, gw)
		if got, want := p.Name(), "gateway "+gw.String(); got != want {
			t.Errorf("Name() = %q, want %q", got, want)
		}
		r := checkWithin(t, p, timeout)
		wantOK(t, r)
		if r.Took >= timeout {
			t.Errorf("Took = %v: the reply should end the check", r.Took)
		}
	})
	t.Run("unused address", func(t *testing.T) {
		unused := l.Host(99).Addr()
		r := checkWithin(t, gatewayIn(t, a, unused), timeout)
		wantFail(t, r, "no ARP reply from "+unused.String())
		if r.Took < timeout {
			t.Errorf("Took = %v, before the deadline %v", r.Took, timeout)
		}
	})
	testLinkFaults(t, a, b, gw, timeout, 5*time.Second, "no ARP reply from "+gw.String(), "send ARP request on eth0: network is down")
}

// testLinkFaults: with the gateway's link down the probe of gw on a fails
// with noAnswer, and the same probe passes again within back once the
// link is up (an IPv6 address must first pass detection again); with a's
// own interface down it fails with ownDown.
func testLinkFaults(t *testing.T, a, b *lab.Node, gw netip.Addr, timeout, back time.Duration, noAnswer, ownDown string) {
	t.Run("gateway link down", func(t *testing.T) {
		p := gatewayIn(t, a, gw)
		b.LinkDown()
		r := checkWithin(t, p, timeout)
		b.LinkUp()
		wantFail(t, r, noAnswer)
		lab.WaitFor(t, back, "the gateway to answer again", func() bool {
			return checkWithin(t, p, timeout).OK
		})
	})
	t.Run("own interface down", func(t *testing.T) {
		p := gatewayIn(t, a, gw)
		a.IfaceDown()
		r := checkWithin(t, p, timeout)
		a.IfaceUp()
		wantFail(t, r, ownDown)
	})
}

// TestGatewaySender: with several addresses on the interface, the request
// goes out from the primary address in the gateway's subnet, not from the
// first address nor from a secondary such as a VIP. The gateway node's
// neighbour table shows which sender it heard. Without any address, the
// probe sends an ARP probe (sender 0.0.0.0), which the gateway answers.
func TestGatewaySender(t *testing.T) {
	lab.RequireRoot(t)
	l := lab.New(t, netip.Prefix{})
	a := l.AddNode("a", l.Host(11))
	b := l.AddNode("b", l.Host(12))
	gw := b.Addr.Addr()
	a.Run("ip", "addr", "flush", "dev", a.Iface)
	a.Run("ip", "addr", "add", "10.88.0.5/24", "dev", a.Iface)      // first, another subnet
	a.Run("ip", "addr", "add", a.Addr.String(), "dev", a.Iface)     // primary in the gateway's
	a.Run("ip", "addr", "add", l.Host(50).String(), "dev", a.Iface) // secondary, as a VIP
	b.Run("ip", "neigh", "flush", "dev", b.Iface)
	p := gatewayIn(t, a, gw)
	wantOK(t, checkWithin(t, p, time.Second))
	neigh := b.Run("ip", "neigh", "show", "dev", b.Iface)
	if !strings.Contains(neigh, a.Addr.Addr().String()+" ") {
		t.Errorf("the gateway did not hear from %s; its neighbours:\n%s", a.Addr.Addr(), neigh)
	}
	for _, wrong := range []string{"10.88.0.5", l.Host(50).Addr().String()} {
		if strings.Contains(neigh, wrong+" ") {
			t.Errorf("the gateway heard from %s; its neighbours:\n%s", wrong, neigh)
		}
	}

	a.Run("ip", "addr", "flush", "dev", a.Iface)
	wantOK(t, checkWithin(t, p, time.Second))
}
