package lab

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/vipvisor/vipvisor/vrrp"
)

// vrrpRx is a raw socket of protocol 112 in a node, joined to the VRRP
// group, that reports what arrives.
type vrrpRx struct {
	t *testing.T
	p *ipv4.PacketConn
}

type rxd struct {
	src, dst netip.Addr
	ttl      int
	payload  []byte
}

func listenVRRP(t *testing.T, n *Node) *vrrpRx {
	t.Helper()
	var p *ipv4.PacketConn
	err := n.Do(func() error {
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		p = ipv4.NewPacketConn(c)
		ifi, err := net.InterfaceByName(Iface)
		if err != nil {
			return err
		}
		if err := p.JoinGroup(ifi, &net.IPAddr{IP: VRRPGroup.AsSlice()}); err != nil {
			return err
		}
		return p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &vrrpRx{t: t, p: p}
}

// next returns the next packet; the bound only guards a hang.
func (r *vrrpRx) next() rxd {
	r.t.Helper()
	buf := make([]byte, 1500)
	r.p.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, cm, src, err := r.p.ReadFrom(buf)
	if err != nil {
		r.t.Fatalf("no VRRP packet arrived: %v", err)
	}
	s, _ := netip.AddrFromSlice(src.(*net.IPAddr).IP)
	d, _ := netip.AddrFromSlice(cm.Dst)
	return rxd{src: s.Unmap(), dst: d.Unmap(), ttl: cm.TTL, payload: buf[:n]}
}

func TestForgerAndVRRPBlock(t *testing.T) {
	l := New(t, netip.Prefix{})
	x, b := l.AddNode("x", l.Host(13)), l.AddNode("b", l.Host(12))
	rx := listenVRRP(t, b)
	f := x.Forger()
	send := func(p Forged) {
		t.Helper()
		if err := f.Send(p); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(what string, want rxd) {
		t.Helper()
		got := rx.next()
		if got.src != want.src || got.dst != want.dst || got.ttl != want.ttl || !bytes.Equal(got.payload, want.payload) {
			t.Errorf("%s: got %+v, want %+v", what, got, want)
		}
	}
	xAddr, bAddr := x.Addr.Addr(), b.Addr.Addr()
	spoofed := l.Host(99).Addr()
	mcast := []byte{0x31, 51, 1, 0}
	unicast := []byte{0x31, 51, 2, 0}
	fromSpoofed := []byte{0x31, 51, 3, 0}

	// The forger writes the header: defaults, a TTL of its own, a source
	// that is not its own.
	send(Forged{Payload: mcast})
	expect("multicast with defaults", rxd{xAddr, VRRPGroup, 255, mcast})
	send(Forged{TTL: 7, Payload: mcast})
	expect("TTL 7", rxd{xAddr, VRRPGroup, 7, mcast})
	send(Forged{Src: spoofed, Dst: bAddr, Payload: fromSpoofed})
	expect("spoofed unicast", rxd{spoofed, bAddr, 255, fromSpoofed})

	// Blocked packets are told apart from slow ones by order: each is
	// followed by one that passes on the same path, and that one must be
	// the next to arrive.
	b.BlockVRRP(VRRPBlock{To: VRRPGroup})
	send(Forged{Payload: mcast})
	send(Forged{Dst: bAddr, Payload: unicast})
	expect("unicast while multicast is blocked", rxd{xAddr, bAddr, 255, unicast})

	b.BlockVRRP(VRRPBlock{From: xAddr})
	send(Forged{Dst: bAddr, Payload: unicast})
	send(Forged{Src: spoofed, Dst: bAddr, Payload: fromSpoofed})
	expect("another source while x is blocked", rxd{spoofed, bAddr, 255, fromSpoofed})

	b.UnblockVRRP()
	b.UnblockVRRP() // a second time is no error
	send(Forged{Payload: mcast})
	expect("multicast after unblocking", rxd{xAddr, VRRPGroup, 255, mcast})

	// A flood sends what it says, in turn.
	kinds := []Forged{{Payload: mcast}, {Dst: bAddr, Payload: unicast}}
	got := make(chan map[byte]int, 1)
	const want = 200
	go func() {
		seen := map[byte]int{}
		buf := make([]byte, 1500)
		rx.p.SetReadDeadline(time.Now().Add(5 * time.Second))
		for total := 0; total < want; total++ {
			n, _, _, err := rx.p.ReadFrom(buf)
			if err != nil || n < 3 {
				break
			}
			seen[buf[2]]++
		}
		got <- seen
	}()
	sent, err := f.Flood(kinds, 2000, want*time.Second/2000)
	if err != nil || sent != want {
		t.Fatalf("Flood sent %d (%v), want %d", sent, err, want)
	}
	if seen := <-got; seen[1] != want/2 || seen[2] != want/2 {
		t.Errorf("a flood of %d arrived as %v, want %d of each kind", want, seen, want/2)
	}
}

func TestSetVRRPv3Checksum(t *testing.T) {
	// The project's codec is the reference: the checksum written must be
	// the one vrrp.Advert.MarshalBinary computes.
	for _, a := range []vrrp.Advert{
		{Version: 3, VRID: 51, Priority: 150, Interval: time.Second,
			Addrs: []netip.Addr{netip.MustParseAddr("10.99.0.100")},
			Src:   netip.MustParseAddr("10.99.0.11"), Dst: VRRPGroup},
		{Version: 3, VRID: 1, Priority: 0, Interval: 40950 * time.Millisecond,
			Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.100"), netip.MustParseAddr("10.77.0.101")},
			Src:   netip.MustParseAddr("10.77.0.13"), Dst: netip.MustParseAddr("10.77.0.11")},
		{Version: 3, VRID: 255, Priority: 255, Interval: 10 * time.Millisecond,
			Src: netip.MustParseAddr("10.0.0.1"), Dst: VRRPGroup},
	} {
		want, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got := bytes.Clone(want)
		got[6], got[7] = 0x55, 0xaa
		SetVRRPv3Checksum(got, a.Src, a.Dst)
		if !bytes.Equal(got, want) {
			t.Errorf("VRID %d: got % x, want % x", a.VRID, got, want)
		}
	}
}
