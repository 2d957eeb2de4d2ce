package probes

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"

	"github.com/vipvisor/vipvisor/internal/netutil"
)

// arpProto asks an IPv4 gateway with one ARP request.
//
// The request is built here and sent on a raw packet socket, not with
// arp.Dial, which refuses an interface without an IPv4 address and would
// take the first address it finds, which may be a VIP. The sender address
// is picked as the kernel picks it for its own ARP requests (senderAddr).
var arpProto = gatewayProto{
	request:   "ARP request",
	answer:    "ARP reply",
	protocol:  "ARP",
	etherType: ethernet.EtherTypeARP,
	build:     buildARPRequest,
	isAnswer:  isReplyFrom,
}

// buildARPRequest is arpProto's build: a broadcast request from ifi's
// hardware address and the sender address senderAddr picks.
func buildARPRequest(ifi *net.Interface, gw netip.Addr) ([]byte, net.HardwareAddr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, nil, fmt.Errorf("list addresses: %w", err)
	}
	frame, err := requestFrame(ifi.HardwareAddr, senderAddr(prefixes(addrs), gw), gw)
	return frame, ethernet.Broadcast, err
}

// prefixes converts the addresses net.Interface.Addrs returns, in the
// kernel's order.
func prefixes(addrs []net.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		bits, _ := n.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), bits))
	}
	return out
}

// senderAddr picks the sender protocol address for an ARP request for gw
// among an interface's addresses, given in the kernel's order, in which
// primary addresses come before secondary ones (and so before VIPs in the
// node's own subnet): the first IPv4 address whose subnet contains gw,
// else the first IPv4 address, else 0.0.0.0, an ARP probe (RFC 5227
// §2.1.1) that a gateway answers too.
func senderAddr(addrs []netip.Prefix, gw netip.Addr) netip.Addr {
	var first netip.Addr
	for _, p := range addrs {
		a := p.Addr()
		if !a.Is4() || a.IsLoopback() || a.IsUnspecified() || a == gw {
			continue
		}
		if p.Contains(gw) {
			return a
		}
		if !first.IsValid() {
			first = a
		}
	}
	if first.IsValid() {
		return first
	}
	return netip.IPv4Unspecified()
}

// requestFrame is a broadcast Ethernet frame with an ARP request for gw
// from mac and src. The target hardware address is zero, as Linux sends
// it and RFC 5227 §2.1.1 asks.
func requestFrame(mac net.HardwareAddr, src, gw netip.Addr) ([]byte, error) {
	req, err := arp.NewPacket(arp.OperationRequest, mac, src, make(net.HardwareAddr, len(mac)), gw)
	if err != nil {
		return nil, fmt.Errorf("ARP request for %s from %s: %w", gw, src, err)
	}
	return netutil.ARPFrame(mac, req)
}

// isReplyFrom reports whether frame is an ARP reply from gw. Anything
// else on the socket (our own request, other hosts' requests, replies
// from other addresses, malformed frames) is ignored.
func isReplyFrom(frame []byte, gw netip.Addr) bool {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return false
	}
	var a arp.Packet
	if err := a.UnmarshalBinary(f.Payload); err != nil {
		return false
	}
	return a.Operation == arp.OperationReply && a.SenderIP == gw
}
