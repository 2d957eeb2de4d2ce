package vrrp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"

	"github.com/vipvisor/vipvisor/internal/netutil"
)

// HandOver announces the VIPs once on behalf of the router at to, which
// has just taken mastership from this node, and returns to's MAC address.
//
// After a split brain heals, the node that steps down is the only one
// that knows clients may still hold its MAC address for the VIPs: when one
// direction of the link heals before the other, the real master never
// hears the loser and never announces again. So the loser asks to for its
// MAC address by ARP (from our primary address from, or 0.0.0.0 if it has
// none, an ARP probe that Linux answers too) until ctx ends, then sends
// one round of the frames Announce sends, with to's MAC as ARP sender
// hardware address and our own as Ethernet source, so that switches do not
// learn to's MAC on our port. Linux hosts update an existing neighbour
// entry from such a gratuitous ARP (sender and target IP the VIP) whatever
// their locktime.
func (a *arpAnnouncer) HandOver(ctx context.Context, to, from netip.Addr) (net.HardwareAddr, error) {
	if len(a.vips) == 0 {
		return nil, nil
	}
	conn, mac, err := a.open(false)
	if err != nil {
		return nil, err
	}
	defer a.closing.Go(func() { conn.Close() })
	theirs, err := resolve(ctx, conn, mac, from, to)
	if err != nil {
		return nil, fmt.Errorf("vrrp: hand over to %s on %s: %w", to, a.ifname, err)
	}
	frames, err := announcements(theirs, mac, a.vips)
	if err != nil {
		return nil, fmt.Errorf("vrrp: hand over to %s on %s: %w", to, a.ifname, err)
	}
	if _, err := a.send(conn, frames, 1); err != nil {
		return theirs, err
	}
	return theirs, nil
}

// resolve sends an ARP request for to on conn and returns the sender
// hardware address of the first reply from to, or an error once ctx ends.
func resolve(ctx context.Context, conn *packet.Conn, mac net.HardwareAddr, from, to netip.Addr) (net.HardwareAddr, error) {
	if !to.Is4() {
		return nil, fmt.Errorf("%s is not an IPv4 address", to)
	}
	if !from.Is4() {
		from = netip.IPv4Unspecified()
	}
	req, err := arp.NewPacket(arp.OperationRequest, mac, from, make(net.HardwareAddr, len(mac)), to)
	if err != nil {
		return nil, err
	}
	frame, err := netutil.ARPFrame(mac, req)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.WriteTo(frame, &packet.Addr{HardwareAddr: ethernet.Broadcast}); err != nil {
		return nil, fmt.Errorf("send ARP request: %w", err)
	}
	buf := make([]byte, 256)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("no ARP reply: %w", ctx.Err())
			}
			return nil, fmt.Errorf("read ARP: %w", err)
		}
		p, ok := arpIn(buf[:n])
		if ok && p.Operation == arp.OperationReply && p.SenderIP == to {
			return p.SenderHardwareAddr, nil
		}
	}
}

// arpIn parses an Ethernet frame that carries an ARP packet; it returns
// false for anything else.
func arpIn(b []byte) (*arp.Packet, bool) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return nil, false
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		return nil, false
	}
	return &p, true
}
