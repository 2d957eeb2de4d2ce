package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netns"

	"github.com/vipvisor/vipvisor/internal/netutil"
)

// allNodes is the all-nodes link-local multicast group (RFC 4291 §2.7.1),
// where unsolicited neighbour advertisements go (RFC 4861 §7.2.6).
var allNodes = netip.MustParseAddr("ff02::1")

// errNoHandOver6: the split-brain hand-over of a VIP is done for IPv4
// only; an IPv6 peer learns the new master from its own advertisements.
var errNoHandOver6 = errors.New("no hand-over for IPv6 VIPs")

// ndAnnouncer announces IPv6 VIPs with unsolicited neighbour
// advertisements (RFC 4861 §7.2.6, RFC 5798 §6.4.2): to all nodes, from
// the interface's link-local address, hop limit 255, the Override flag
// set so that caches holding the old master's MAC address take ours, and
// our MAC address as the target link-layer address. It is the IPv6
// Announcer; GARP_REPEAT and GARP_REFRESH count its rounds.
type ndAnnouncer struct {
	ifname string
	vips   []netip.Addr
	log    *slog.Logger
	ns     netns.NsHandle
	nsErr  error
}

// newNDAnnouncer returns an ndAnnouncer for vips on ifname, in the
// calling thread's network namespace; it opens nothing until Announce.
func newNDAnnouncer(ifname string, vips []netip.Addr, log *slog.Logger) *ndAnnouncer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &ndAnnouncer{ifname: ifname, vips: slices.Clone(vips), log: log}
	runtime.LockOSThread()
	a.ns, a.nsErr = netutil.ThisNetns()
	runtime.UnlockOSThread()
	return a
}

// Announce sends rounds rounds of one advertisement per VIP, going on
// after a failure, and returns an error counting the failures.
func (a *ndAnnouncer) Announce(rounds int) error {
	if rounds <= 0 || len(a.vips) == 0 {
		return nil
	}
	if a.nsErr != nil {
		return fmt.Errorf("vrrp: announce on %s: network namespace: %w", a.ifname, a.nsErr)
	}
	var conn *ndp.Conn
	var mac net.HardwareAddr
	err := netutil.RunInNetns(a.ns, func() error {
		ifi, err := net.InterfaceByName(a.ifname)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		conn, _, err = ndp.Listen(ifi, ndp.LinkLocal)
		return err
	})
	if err != nil {
		return fmt.Errorf("vrrp: announce on %s: open ICMPv6 socket: %w", a.ifname, err)
	}
	defer conn.Close()
	failed, total := 0, 0
	var first error
	for range rounds {
		for _, vip := range a.vips {
			total++
			na := &ndp.NeighborAdvertisement{Override: true, TargetAddress: vip,
				Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}}}
			if err := conn.WriteTo(na, nil, allNodes); err != nil {
				failed++
				if first == nil {
					first = err
				}
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("vrrp: announce on %s: %d of %d neighbour advertisements not sent: %w", a.ifname, failed, total, first)
	}
	a.log.Debug("announced VIPs", "iface", a.ifname, "vips", len(a.vips), "rounds", rounds)
	return nil
}

// HandOver is not done for IPv6 (errNoHandOver6).
func (a *ndAnnouncer) HandOver(context.Context, netip.Addr, netip.Addr) (net.HardwareAddr, error) {
	return nil, errNoHandOver6
}

// Watch reports nothing for IPv6: a VIP answered by another node is
// found by the adverts alone. It returns when ctx ends.
func (a *ndAnnouncer) Watch(ctx context.Context, _ chan<- addressConflict) error {
	<-ctx.Done()
	return nil
}

// Close releases the namespace handle.
func (a *ndAnnouncer) Close() error {
	if a.nsErr != nil {
		return nil
	}
	return a.ns.Close()
}
