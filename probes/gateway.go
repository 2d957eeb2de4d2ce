package probes

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"

	"github.com/vipvisor/vipvisor/internal/netutil"
)

// gatewayProbe passes when gw answers an ARP request sent on ifname.
type gatewayProbe struct {
	ifname string
	gw     netip.Addr
	ns     netns.NsHandle

	// closing tracks sockets being closed in the background: closing a
	// packet socket waits for an RCU grace period (synchronize_net in the
	// kernel's packet_release), 5-15ms, which a check at its deadline
	// should not add to its time.
	closing sync.WaitGroup
}

// NewGateway returns a probe that sends one ARP request for gw on ifname
// and passes when a reply from gw arrives before the deadline; otherwise
// its reason is "no ARP reply from 10.0.0.1". It tells whether this node
// still reaches its gateway, to arbitrate a split brain.
//
// The request is built here and sent on a raw packet socket, not with
// arp.Dial, which refuses an interface without an IPv4 address and would
// take the first address it finds, which may be a VIP. The sender address
// is picked as the kernel picks it for its own ARP requests: the first
// (primary) address of the interface whose subnet contains gw, else the
// interface's first IPv4 address, else 0.0.0.0, an ARP probe (RFC 5227
// §2.1.1) that a gateway answers too. The interface and its addresses are
// looked up again in every check, so an interface that went down or was
// re-created in between does not matter.
//
// The probe belongs to the network namespace of the thread that called
// NewGateway and opens its socket there, whichever goroutine checks. It
// implements io.Closer: Close, once checking is over, releases the
// namespace handle.
func NewGateway(ifname string, gw netip.Addr) (Probe, error) {
	if !gw.Is4() || gw.IsUnspecified() || gw.IsMulticast() || gw.IsLoopback() {
		return nil, fmt.Errorf("probes: gateway %s: not an IPv4 unicast address", gw)
	}
	runtime.LockOSThread()
	ns, err := netutil.ThisNetns()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, fmt.Errorf("probes: gateway %s on %s: network namespace: %w", gw, ifname, err)
	}
	err = netutil.RunInNetns(ns, func() error {
		_, err := net.InterfaceByName(ifname)
		return err
	})
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("probes: gateway %s on %s: %w", gw, ifname, err)
	}
	return &gatewayProbe{ifname: ifname, gw: gw, ns: ns}, nil
}

func (p *gatewayProbe) Name() string { return "gateway " + p.gw.String() }

// Close waits for the sockets of past checks to be closed and releases
// the namespace handle. It must not be called concurrently with Check.
func (p *gatewayProbe) Close() error {
	p.closing.Wait()
	return p.ns.Close()
}

// Check opens a socket, sends the request and reads until a reply from
// the gateway arrives or ctx is done, which sets a read deadline in the
// past and so ends the read at once.
func (p *gatewayProbe) Check(ctx context.Context) Result {
	start := time.Now()
	conn, frame, err := p.open()
	if err != nil {
		return fail(start, err.Error())
	}
	defer p.closing.Go(func() { conn.Close() })
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.WriteTo(frame, &packet.Addr{HardwareAddr: ethernet.Broadcast}); err != nil {
		return fail(start, "send ARP request on "+p.ifname+": "+errReason(ctx, start, err))
	}
	buf := make([]byte, 256)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil && isTimeout(ctx, err) {
			if _, ok := allowed(ctx, start); !ok {
				return fail(start, timeoutReason(ctx, start))
			}
			return fail(start, "no ARP reply from "+p.gw.String())
		}
		if err != nil {
			return fail(start, "read ARP on "+p.ifname+": "+errReason(ctx, start, err))
		}
		if isReplyFrom(buf[:n], p.gw) {
			return pass(start)
		}
	}
}

// open looks up the interface in the probe's namespace, opens an ARP
// socket on it there, and builds the request frame. Its error is a
// reason.
func (p *gatewayProbe) open() (*packet.Conn, []byte, error) {
	var (
		conn  *packet.Conn
		frame []byte
	)
	err := netutil.RunInNetns(p.ns, func() error {
		ifi, err := net.InterfaceByName(p.ifname)
		if err != nil {
			return err
		}
		if len(ifi.HardwareAddr) != len(ethernet.Broadcast) {
			return fmt.Errorf("not an Ethernet interface (hardware address %q)", ifi.HardwareAddr)
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return fmt.Errorf("list addresses: %w", err)
		}
		src := senderAddr(prefixes(addrs), p.gw)
		if frame, err = requestFrame(ifi.HardwareAddr, src, p.gw); err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("interface %s: %s", p.ifname, errReason(context.Background(), time.Time{}, err))
	}
	return conn, frame, nil
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
// else the first IPv4 address, else 0.0.0.0.
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
