package probes

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"

	"github.com/vipvisor/vipvisor/internal/netutil"
)

// gatewayProbe passes when gw answers a request sent on ifname: an ARP
// request for an IPv4 gateway (gateway4.go), a neighbour solicitation for
// an IPv6 one (gateway6.go).
type gatewayProbe struct {
	ifname string
	gw     netip.Addr
	ns     netns.NsHandle
	proto  *gatewayProto

	// closing tracks sockets being closed in the background: closing a
	// packet socket waits for an RCU grace period (synchronize_net in the
	// kernel's packet_release), 5-15ms, which a check at its deadline
	// should not add to its time.
	closing sync.WaitGroup
}

// gatewayProto is what the ARP and the NDP probe do differently: the
// frame they send, the frames they listen for, and their words.
type gatewayProto struct {
	// request, answer and protocol name them in reasons: "send ARP
	// request on eth0: …", "no ARP reply from 10.0.0.1", "read ARP on
	// eth0: …".
	request, answer, protocol string
	etherType                 ethernet.EtherType
	// filter, when set, is attached to the socket before it is bound,
	// so that the kernel drops what cannot be an answer instead of
	// queueing a copy of every frame of etherType.
	filter []bpf.RawInstruction
	// build returns the request for gw and its Ethernet destination, from
	// ifi and its addresses as they are now; it runs in the probe's
	// namespace. Its error is a reason.
	build func(ifi *net.Interface, gw netip.Addr) (frame []byte, dst net.HardwareAddr, err error)
	// isAnswer reports whether a frame read from the socket is gw's
	// answer; anything else is ignored.
	isAnswer func(frame []byte, gw netip.Addr) bool
}

// NewGateway returns a probe that asks on ifname whether gw is there and
// passes when gw answers before the deadline. It tells whether this node
// still reaches its gateway, to arbitrate a split brain.
//
// An IPv4 gateway is sent one ARP request and must send an ARP reply;
// otherwise the reason is "no ARP reply from 10.0.0.1". An IPv6 gateway,
// which may be link-local (the interface is known), is sent one neighbour
// solicitation and must send a neighbour advertisement; otherwise the
// reason is "no neighbour advertisement from fe80::1". Both requests are
// built here and sent on a packet socket, each as the kernel would send
// it, with a source address picked as the kernel picks it (see
// senderAddr and solicitSource); like the kernel, the IPv6 probe sends
// nothing while the interface has no link-local address past duplicate
// address detection, and fails with that reason. The interface and its
// addresses are looked up again in every check, so an interface that
// went down or was re-created in between does not matter.
//
// The probe belongs to the network namespace of the thread that called
// NewGateway and opens its socket there, whichever goroutine checks. It
// implements io.Closer: Close, once checking is over, releases the
// namespace handle.
func NewGateway(ifname string, gw netip.Addr) (Probe, error) {
	if reason := gatewayAddrProblem(gw); reason != "" {
		return nil, fmt.Errorf("probes: gateway %s: %s", gw, reason)
	}
	proto := &arpProto
	if gw.Is6() {
		proto = &ndpProto
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
	return &gatewayProbe{ifname: ifname, gw: gw, ns: ns, proto: proto}, nil
}

// gatewayAddrProblem says why gw cannot be probed, or returns "". It is
// also TRACK_GATEWAY's check (Config.Validate). An IPv6 address carries
// no zone: the interface is the probe's.
func gatewayAddrProblem(gw netip.Addr) string {
	switch {
	case !gw.IsValid():
		return "no address"
	case gw.Zone() != "":
		return "has a zone"
	case gw.Is4In6():
		return "an IPv4-mapped IPv6 address"
	case gw.IsUnspecified():
		return "the unspecified address"
	case gw.IsMulticast():
		return "a multicast address"
	case gw.IsLoopback():
		return "a loopback address"
	}
	return ""
}

func (p *gatewayProbe) Name() string { return "gateway " + p.gw.String() }

// Close waits for the sockets of past checks to be closed and releases
// the namespace handle. It must not be called concurrently with Check.
func (p *gatewayProbe) Close() error {
	p.closing.Wait()
	return p.ns.Close()
}

// Check opens a socket, sends the request and reads until the gateway's
// answer arrives or ctx is done, which sets a read deadline in the past
// and so ends the read at once.
func (p *gatewayProbe) Check(ctx context.Context) Result {
	start := time.Now()
	conn, frame, dst, err := p.open()
	if err != nil {
		return fail(start, err.Error())
	}
	defer p.closing.Go(func() { conn.Close() })
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.WriteTo(frame, &packet.Addr{HardwareAddr: dst}); err != nil {
		return fail(start, "send "+p.proto.request+" on "+p.ifname+": "+errReason(ctx, start, err))
	}
	buf := make([]byte, 2048)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil && isTimeout(ctx, err) {
			if _, ok := allowed(ctx, start); !ok {
				return fail(start, timeoutReason(ctx, start))
			}
			return fail(start, "no "+p.proto.answer+" from "+p.gw.String())
		}
		if err != nil {
			return fail(start, "read "+p.proto.protocol+" on "+p.ifname+": "+errReason(ctx, start, err))
		}
		if p.proto.isAnswer(buf[:n], p.gw) {
			return pass(start)
		}
	}
}

// open looks up the interface in the probe's namespace, builds the
// request and opens a packet socket on the interface there. Its error is
// a reason.
func (p *gatewayProbe) open() (*packet.Conn, []byte, net.HardwareAddr, error) {
	var (
		conn  *packet.Conn
		frame []byte
		dst   net.HardwareAddr
	)
	err := netutil.RunInNetns(p.ns, func() error {
		ifi, err := net.InterfaceByName(p.ifname)
		if err != nil {
			return err
		}
		if len(ifi.HardwareAddr) != len(ethernet.Broadcast) {
			return fmt.Errorf("not an Ethernet interface (hardware address %q)", ifi.HardwareAddr)
		}
		if frame, dst, err = p.proto.build(ifi, p.gw); err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Raw, int(p.proto.etherType), &packet.Config{Filter: p.proto.filter})
		return err
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("interface %s: %s", p.ifname, errReason(context.Background(), time.Time{}, err))
	}
	return conn, frame, dst, nil
}
