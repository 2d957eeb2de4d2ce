package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
	"golang.org/x/sys/unix"
)

// TestSocket4IPOptions: an advert whose IPv4 header carries options (here
// Router Alert, RFC 2113) is accepted whole. It guards the choice in
// socket4 to read the header as it arrived: x/net's PacketConn.ReadFrom
// miscounts the payload of such a packet.
func TestSocket4IPOptions(t *testing.T) {
	lab.RequireRoot(t)
	l := lab.New(t, netip.MustParsePrefix("10.77.14.0/24"))
	b, c := l.AddNode("b", l.Host(12)), l.AddNode("c", l.Host(13))
	vip := l.Host(100).Addr()
	cfg := connConfig{VRID: 91, Version: 3, Interval: time.Second, VIPs: []netip.Addr{vip}}
	cb := connOpen(t, b, cfg)
	rxb := connReceive(t, cb)
	a := Advert{Version: 3, VRID: 91, Priority: 100, Interval: time.Second,
		Addrs: []netip.Addr{vip}, Src: c.Addr.Addr(), Dst: defaultGroup}
	routerAlert := []byte{0x94, 0x04, 0x00, 0x00}
	connSendRaw(t, c, 255, routerAlert, a)
	if got := rxb.from(t, c.Addr.Addr()); got.Priority != 100 {
		t.Errorf("received priority %d, want 100", got.Priority)
	}
}

func TestArrivalIndex(t *testing.T) {
	oob := unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: 42, Spec_dst: [4]byte{10, 0, 0, 1}})
	if got := arrivalIndex(oob); got != 42 {
		t.Errorf("arrivalIndex(IP_PKTINFO for 42) = %d", got)
	}
	for _, oob := range [][]byte{nil, oob[:8], unix.UnixRights(0)} {
		if got := arrivalIndex(oob); got != 0 {
			t.Errorf("arrivalIndex(%x) = %d, want 0", oob, got)
		}
	}
}
