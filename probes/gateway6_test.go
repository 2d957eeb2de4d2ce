package probes

import (
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/envconf"
	"github.com/vipvisor/vipvisor/internal/lab"
)

// Frames captured with tcpdump between two Linux 6.x namespaces: node A
// (02:00:00:00:00:0a, fe80::a) resolving node B (02:00:00:00:00:0b,
// fe80::1), and B answering a solicitation from :: as it answers a
// duplicate address detection probe.
const (
	// kernelNS is A's kernel's solicitation for fe80::1.
	kernelNS = "3333ff000001" + "02000000000a" + "86dd" +
		"60000000" + "0020" + "3a" + "ff" + // 32 bytes of ICMPv6, hop limit 255
		"fe80000000000000000000000000000a" + // from fe80::a
		"ff0200000000000000000001ff000001" + // to ff02::1:ff00:1
		"87" + "00" + "7a87" + "00000000" + // solicitation, code 0, checksum, reserved
		"fe800000000000000000000000000001" + // target fe80::1
		"0101" + "02000000000a" // source link-layer address
	// kernelNA is B's kernel's answer to it: solicited, override.
	kernelNA = "02000000000a" + "02000000000b" + "86dd" +
		"60000000" + "0020" + "3a" + "ff" +
		"fe800000000000000000000000000001" + // from fe80::1
		"fe80000000000000000000000000000a" + // to fe80::a
		"88" + "00" + "180a" + "60000000" + // advertisement, code 0, checksum, S and O
		"fe800000000000000000000000000001" + // target fe80::1
		"0201" + "02000000000b" // target link-layer address
	// allNodesNA is B's kernel's answer to a solicitation from ::, to
	// the all-nodes group: override only.
	allNodesNA = "333300000001" + "02000000000b" + "86dd" +
		"60000000" + "0020" + "3aff" +
		"fe800000000000000000000000000001" +
		"ff020000000000000000000000000001" +
		"88" + "00" + "5791" + "20000000" +
		"fe800000000000000000000000000001" +
		"0201" + "02000000000b"
	// unspecifiedNS is a solicitation from ::, without the option, as
	// tcpdump checked it ("icmp6 sum ok").
	unspecifiedNS = "3333ff000001" + "02000000000a" + "86dd" +
		"60000000" + "0018" + "3aff" +
		"00000000000000000000000000000000" +
		"ff0200000000000000000001ff000001" +
		"87" + "00" + "7c25" + "00000000" +
		"fe800000000000000000000000000001"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSolicitSource(t *testing.T) {
	gw := netip.MustParseAddr("fe80::1")
	a := func(s string, flags int) ifAddr6 { return ifAddr6{netip.MustParseAddr(s), flags} }
	tests := []struct {
		name  string
		addrs []ifAddr6
		want  string // the source, or the reason
	}{
		{"only link-local", []ifAddr6{a("fe80::a", unix.IFA_F_PERMANENT)}, "fe80::a"},
		{"global first", []ifAddr6{a("2001:db8::a", 0), a("fd00::100", unix.IFA_F_NODAD), a("fe80::a", 0)}, "fe80::a"},
		{"first of two", []ifAddr6{a("fe80::b", 0), a("fe80::a", 0)}, "fe80::b"},
		{"tentative skipped", []ifAddr6{a("fe80::b", unix.IFA_F_TENTATIVE), a("fe80::a", 0)}, "fe80::a"},
		{"optimistic skipped", []ifAddr6{a("fe80::b", unix.IFA_F_OPTIMISTIC), a("fe80::a", 0)}, "fe80::a"},
		{"duplicate skipped", []ifAddr6{a("fe80::b", unix.IFA_F_DADFAILED|unix.IFA_F_TENTATIVE), a("fe80::a", 0)}, "fe80::a"},
		{"the gateway's own skipped", []ifAddr6{a("fe80::1", 0), a("fe80::a", 0)}, "fe80::a"},
		{"only tentative", []ifAddr6{a("fe80::b", unix.IFA_F_TENTATIVE)}, "link-local address fe80::b tentative"},
		{"only global", []ifAddr6{a("2001:db8::a", 0)}, "no IPv6 link-local address"},
		{"none at all", nil, "no IPv6 link-local address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := solicitSource(tc.addrs, gw)
			got := src.String()
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("solicitSource = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestSolicitFrame: the solicitation is the kernel's, byte for byte.
func TestSolicitFrame(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	gw := netip.MustParseAddr("fe80::1")
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"from the link-local address", "fe80::a", kernelNS},
		{"from the unspecified address", "::", unspecifiedNS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := solicitFrame(mac, netip.MustParseAddr(tc.src), gw)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(f); got != tc.want {
				t.Errorf("frame (-want +got):\n-%s\n+%s", tc.want, got)
			}
		})
	}
	f, err := solicitFrame(mac, netip.MustParseAddr("fe80::a"), netip.MustParseAddr("2001:db8::12:3456"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(f[:6]), "3333ff123456"; got != want {
		t.Errorf("destination MAC for 2001:db8::12:3456 = %s, want %s", got, want)
	}
}

func TestIsAdvertFrom(t *testing.T) {
	gw := netip.MustParseAddr("fe80::1")
	// The forged rows change kernelNA; where the change is meant to be
	// the only fault, the checksum is adjusted to match by hand (one's
	// complement: a word d larger makes the checksum d smaller).
	tests := []struct {
		name  string
		frame string
		gw    netip.Addr
		want  bool
	}{
		{"solicited advertisement", kernelNA, gw, true},
		{"to all nodes", allNodesNA, gw, true},
		{"with Ethernet padding", kernelNA + "0000", gw, true},
		{"another target", strings.Replace(kernelNA, "180a60000000fe800000000000000000000000000001", "180960000000fe800000000000000000000000000002", 1), gw, false},
		{"that target's own", strings.Replace(kernelNA, "180a60000000fe800000000000000000000000000001", "180960000000fe800000000000000000000000000002", 1), netip.MustParseAddr("fe80::2"), true},
		{"another gateway", kernelNA, netip.MustParseAddr("fe80::2"), false},
		{"hop limit 64: crossed a router", strings.Replace(kernelNA, "00203aff", "00203a40", 1), gw, false},
		{"bad checksum", strings.Replace(kernelNA, "180a", "180b", 1), gw, false},
		{"code 1", strings.Replace(kernelNA, "8800180a", "88011809", 1), gw, false},
		{"solicited to all nodes", strings.Replace(allNodesNA, "880057912000", "880017916000", 1), gw, false},
		{"zero-length option", strings.Replace(kernelNA, "180a", "180b", 1)[:len(kernelNA)-16] + "0200" + "02000000000b", gw, false},
		{"a solicitation for the gateway", kernelNS, gw, false},
		{"not ICMPv6", strings.Replace(kernelNA, "00203aff", "002011ff", 1), gw, false},
		{"not IPv6", strings.Replace(kernelNA, "86dd", "0800", 1), gw, false},
		{"shorter than its payload length", kernelNA[:len(kernelNA)-16], gw, false},
		{"truncated header", kernelNA[:2*(14+20)], gw, false},
		{"empty", "", gw, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isAdvertFrom(unhex(t, tc.frame), tc.gw); got != tc.want {
				t.Errorf("isAdvertFrom = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAdvertFilter runs the socket filter in x/net/bpf's VM: it passes
// advertisements and drops what a busy server's interface carries.
func TestAdvertFilter(t *testing.T) {
	vm, err := bpf.NewVM(advertFilter)
	if err != nil {
		t.Fatal(err)
	}
	tcp := "02000000000a" + "02000000000b" + "86dd" + "60000000" + "0014" + "06" + "40" +
		"20010db8000000000000000000000001" + "20010db8000000000000000000000002" +
		"0050" + "c000" + "00000001" + "00000000" + "5002" + "ffff" + "0000" + "0000"
	arp := "ffffffffffff02000000000a0806000108000604000102000000000a0a4d000b0000000000000a4d0001"
	tests := []struct {
		name  string
		frame string
		pass  bool
	}{
		{"solicited advertisement", kernelNA, true},
		{"to all nodes", allNodesNA, true},
		{"solicitation", kernelNS, false},
		{"advertisement with hop limit 64", strings.Replace(kernelNA, "00203aff", "00203a40", 1), false},
		{"TCP", tcp, false},
		{"ARP", arp, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := vm.Run(unhex(t, tc.frame))
			if err != nil {
				t.Fatal(err)
			}
			if got := n > 0; got != tc.pass {
				t.Errorf("filter passes %d bytes, want pass = %v", n, tc.pass)
			}
		})
	}
}

func TestGatewayAddrProblem(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		{"10.0.0.1", ""},
		{"fe80::1", ""},
		{"fd00::1", ""},
		{"2001:db8::1", ""},
		{"fe80::1%eth0", "has a zone"},
		{"::ffff:10.0.0.1", "an IPv4-mapped IPv6 address"},
		{"::", "the unspecified address"},
		{"::1", "a loopback address"},
		{"ff02::1", "a multicast address"},
		{"ff02::1:ff00:1", "a multicast address"},
		{"0.0.0.0", "the unspecified address"},
		{"127.0.0.1", "a loopback address"},
		{"224.0.0.18", "a multicast address"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			gw := netip.MustParseAddr(tc.addr)
			if got := gatewayAddrProblem(gw); got != tc.want {
				t.Errorf("gatewayAddrProblem = %q, want %q", got, tc.want)
			}
			c := Config{CheckInterval: time.Second, CheckTimeout: time.Second, CheckFall: 1, CheckRise: 1, TrackGateway: gw}
			errs := c.Validate()
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Errorf("Validate: %v, want no error", errs)
			case tc.want != "" && len(errs) != 1:
				t.Errorf("Validate: %v, want one error", errs)
			case tc.want != "":
				var ve *envconf.VarError
				if !errors.As(errs[0], &ve) || ve.Key != envconf.Prefix+"_TRACK_GATEWAY" || ve.Reason != tc.want {
					t.Errorf("Validate: %#v, want TRACK_GATEWAY: %s", errs[0], tc.want)
				}
			}
		})
	}
	if _, err := NewGateway("lo", netip.MustParseAddr("fe80::1%lo")); err == nil {
		t.Error("NewGateway(lo, fe80::1%lo): no error")
	}
}

// ipv6Lab is a lab of two nodes with IPv6 on, their link-local addresses
// past duplicate address detection: a, which probes, and b, its gateway,
// which also has fd77::12 (added without detection).
func ipv6Lab(t *testing.T) (a, b *lab.Node) {
	lab.RequireRoot(t)
	l := lab.New(t, netip.Prefix{})
	a = l.AddNode("a", l.Host(11))
	b = l.AddNode("b", l.Host(12))
	a.EnableIPv6(netip.Prefix{})
	b.EnableIPv6(netip.MustParsePrefix("fd77::12/64"))
	return a, b
}

func TestGateway6Lab(t *testing.T) {
	a, b := ipv6Lab(t)
	gw := b.LinkLocal()
	const timeout = 500 * time.Millisecond

	t.Run("link-local gateway", func(t *testing.T) {
		p := gatewayIn(t, a, gw)
		if got, want := p.Name(), "gateway "+gw.String(); got != want {
			t.Errorf("Name() = %q, want %q", got, want)
		}
		r := checkWithin(t, p, timeout)
		wantOK(t, r)
		if r.Took >= timeout {
			t.Errorf("Took = %v: the advertisement should end the check", r.Took)
		}
	})
	t.Run("unique local gateway", func(t *testing.T) {
		wantOK(t, checkWithin(t, gatewayIn(t, a, netip.MustParseAddr("fd77::12")), timeout))
	})
	t.Run("unused address", func(t *testing.T) {
		r := checkWithin(t, gatewayIn(t, a, netip.MustParseAddr("fe80::99")), timeout)
		wantFail(t, r, "no neighbour advertisement from fe80::99")
		if r.Took < timeout {
			t.Errorf("Took = %v, before the deadline %v", r.Took, timeout)
		}
	})
	t.Run("address removed", func(t *testing.T) {
		b.Run("ip", "addr", "add", "fe80::1/64", "dev", b.Iface, "nodad")
		p := gatewayIn(t, a, netip.MustParseAddr("fe80::1"))
		wantOK(t, checkWithin(t, p, timeout))
		b.Run("ip", "addr", "del", "fe80::1/64", "dev", b.Iface)
		wantFail(t, checkWithin(t, p, timeout), "no neighbour advertisement from fe80::1")
	})
	testLinkFaults(t, a, b, gw, timeout, 10*time.Second, "no neighbour advertisement from "+gw.String(), "interface eth0: network is down")
}

// TestGateway6Source: the solicitation goes out from the probing node's
// link-local address, which the gateway learns from it. A node whose
// link-local address is still tentative sends nothing, so that a gateway
// in duplicate address detection is not told its address is taken, and
// a node without one sends nothing either.
func TestGateway6Source(t *testing.T) {
	a, b := ipv6Lab(t)
	gw := b.LinkLocal()
	const timeout = 500 * time.Millisecond
	p := gatewayIn(t, a, gw)

	b.Run("ip", "-6", "neigh", "flush", "dev", b.Iface)
	wantOK(t, checkWithin(t, p, timeout))
	if neigh := b.Run("ip", "-6", "neigh", "show", "dev", b.Iface); !strings.Contains(neigh, a.LinkLocal().String()+" ") {
		t.Errorf("the gateway did not hear from %s; its neighbours:\n%s", a.LinkLocal(), neigh)
	}

	// Ten probes a second apart keep fe80::11 tentative for the rest of
	// the test.
	a.Sysctl("ipv6.conf.eth0.dad_transmits", "10")
	a.Run("ip", "-6", "addr", "flush", "dev", a.Iface, "scope", "link")
	a.Run("ip", "addr", "add", "fe80::11/64", "dev", a.Iface)
	if !a.Tentative(netip.MustParseAddr("fe80::11")) {
		t.Fatal("fe80::11 is not tentative")
	}
	wantFail(t, checkWithin(t, p, timeout), "interface eth0: link-local address fe80::11 tentative")

	a.Run("ip", "-6", "addr", "flush", "dev", a.Iface, "scope", "link")
	wantFail(t, checkWithin(t, p, timeout), "interface eth0: no IPv6 link-local address")
}

// TestGateway6GatewayInDAD: probing a gateway whose address is tentative
// fails, from a link-local address or without one, and leaves the
// address to pass detection: a solicitation from :: would make the
// gateway give it up as a duplicate.
func TestGateway6GatewayInDAD(t *testing.T) {
	a, b := ipv6Lab(t)
	const timeout = 200 * time.Millisecond
	gw := netip.MustParseAddr("fe80::1")
	b.Sysctl("ipv6.conf.eth0.dad_transmits", "2")
	b.Run("ip", "addr", "add", "fe80::1/64", "dev", b.Iface)
	p := gatewayIn(t, a, gw)
	if !b.Tentative(gw) {
		t.Fatal("fe80::1 is not tentative")
	}
	wantFail(t, checkWithin(t, p, timeout), "no neighbour advertisement from fe80::1")
	a.Run("ip", "-6", "addr", "flush", "dev", a.Iface, "scope", "link")
	wantFail(t, checkWithin(t, p, timeout), "interface eth0: no IPv6 link-local address")
	var out string
	lab.WaitFor(t, 10*time.Second, "fe80::1 to pass or fail detection", func() bool {
		checkWithin(t, p, timeout)
		out = b.Run("ip", "-6", "addr", "show", "dev", b.Iface)
		return strings.Contains(out, "dadfailed") || !b.Tentative(gw)
	})
	if strings.Contains(out, "dadfailed") {
		t.Fatalf("the probe made the gateway's detection fail:\n%s", out)
	}
	a.Run("ip", "addr", "add", "fe80::a/64", "dev", a.Iface, "nodad")
	wantOK(t, checkWithin(t, p, timeout))
}
