package probes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ndpProto asks an IPv6 gateway with one neighbour solicitation (RFC 4861
// §7.2.2) and waits for a neighbour advertisement whose target is the
// gateway.
//
// The solicitation is built here, IPv6 header and all, byte for byte as
// Linux sends one, and sent on a packet socket, the ARP probe's, not with
// ndp.Listen: that binds the first link-local address that
// net.Interface.Addrs lists, tentative or not, and bind(2) refuses a
// tentative address (EADDRNOTAVAIL) for a second or so after every link
// up. The source is picked here from netlink, which gives the flags
// (solicitSource). The answer is read from the same socket, behind a
// filter (advertFilter) so that the kernel does not queue a copy of all
// the IPv6 traffic of a busy server.
var ndpProto = gatewayProto{
	request:   "neighbour solicitation",
	answer:    "neighbour advertisement",
	protocol:  "NDP",
	etherType: ethernet.EtherTypeIPv6,
	filter:    mustAssemble(advertFilter),
	build:     buildSolicitation,
	isAnswer:  isAdvertFrom,
}

// Offsets in an Ethernet frame carrying IPv6 (RFC 8200 §3):
//
//	 0  destination MAC (6), source MAC (6), EtherType 0x86dd (2)
//	14  version 6, traffic class, flow label (4)
//	18  payload length (2), next header (1), hop limit (1)
//	22  source address (16)
//	38  destination address (16)
//	54  payload: here ICMPv6, type (1), code (1), checksum (2), body
const (
	ipv6HeaderLen = 40
	offNextHeader = 14 + 6
	offHopLimit   = 14 + 7
	offICMPType   = 14 + ipv6HeaderLen
)

// advertFilter passes a frame that may be a neighbour advertisement:
// IPv6, ICMPv6 right after the fixed header (an advertisement has no
// extension header), hop limit 255 and ICMPv6 type 136. isAdvertFrom
// checks the rest.
var advertFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 12, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(ethernet.EtherTypeIPv6), SkipTrue: 7},
	bpf.LoadAbsolute{Off: offNextHeader, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_ICMPV6, SkipTrue: 5},
	bpf.LoadAbsolute{Off: offHopLimit, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: ndp.HopLimit, SkipTrue: 3},
	bpf.LoadAbsolute{Off: offICMPType, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 136, SkipTrue: 1},
	bpf.RetConstant{Val: 0xffff}, // the whole frame
	bpf.RetConstant{Val: 0},      // drop
}

func mustAssemble(prog []bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic(fmt.Sprintf("probes: assemble BPF filter: %v", err))
	}
	return raw
}

// buildSolicitation is ndpProto's build: a solicitation for gw from ifi's
// hardware address and the source solicitSource picks, to gw's
// solicited-node multicast group. Its error is a reason.
func buildSolicitation(ifi *net.Interface, gw netip.Addr) ([]byte, net.HardwareAddr, error) {
	if ifi.Flags&net.FlagUp == 0 {
		// Down, it has lost its IPv6 addresses too; say the first cause.
		return nil, nil, unix.ENETDOWN
	}
	addrs, err := ifAddrs6(ifi.Index)
	if err != nil {
		return nil, nil, err
	}
	src, err := solicitSource(addrs, gw)
	if err != nil {
		return nil, nil, err
	}
	frame, err := solicitFrame(ifi.HardwareAddr, src, gw)
	if err != nil {
		return nil, nil, err
	}
	return frame, frame[:6], nil // the frame's own destination
}

// ifAddr6 is an IPv6 address of an interface with its IFA_F_* flags,
// which net.Interface.Addrs does not give.
type ifAddr6 struct {
	addr  netip.Addr
	flags int
}

// ifAddrs6 lists the IPv6 addresses of the interface with index in the
// kernel's order, repeating a dump that a concurrent change interrupted.
func ifAddrs6(index int) ([]ifAddr6, error) {
	link := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
	var list []netlink.Addr
	var err error
	for range 3 {
		if list, err = netlink.AddrList(link, netlink.FAMILY_V6); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []ifAddr6
	for _, a := range list {
		if a.IPNet == nil {
			continue
		}
		if ip, ok := netip.AddrFromSlice(a.IPNet.IP); ok && ip.Is6() && !ip.Is4In6() {
			out = append(out, ifAddr6{ip, a.Flags})
		}
	}
	return out, nil
}

// unusableSource marks an address that may not be a packet's source:
// tentative (RFC 4862 §5.4: still in duplicate address detection),
// optimistic, or found to be a duplicate (which stays tentative).
const unusableSource = unix.IFA_F_TENTATIVE | unix.IFA_F_OPTIMISTIC | unix.IFA_F_DADFAILED

// solicitSource picks the source address of a solicitation for gw among
// an interface's IPv6 addresses, given in the kernel's order, as Linux's
// ndisc_send_ns picks it (ipv6_get_lladdr): the first link-local address
// that is neither tentative, optimistic nor a duplicate. Without one it
// returns an error, a reason, and nothing is sent, as the kernel sends
// nothing then.
//
// The unspecified address is not a way out: a solicitation from :: is a
// duplicate address detection probe (RFC 4862 §5.4.3), and a gateway
// whose own address is tentative when it arrives, as it is for a second
// after every link up or reboot of the gateway, takes the address for a
// duplicate and gives it up: Linux marks it dadfailed, and under
// accept_dad=2 turns IPv6 off on the interface if it is the MAC-based
// link-local address, the one a router advertises itself by.
func solicitSource(addrs []ifAddr6, gw netip.Addr) (netip.Addr, error) {
	var unusable netip.Addr
	for _, a := range addrs {
		if !a.addr.IsLinkLocalUnicast() || a.addr == gw {
			continue
		}
		if a.flags&unusableSource == 0 {
			return a.addr, nil
		}
		if !unusable.IsValid() {
			unusable = a.addr
		}
	}
	if unusable.IsValid() {
		return netip.Addr{}, fmt.Errorf("link-local address %s tentative", unusable)
	}
	return netip.Addr{}, errors.New("no IPv6 link-local address")
}

// solicitFrame is an Ethernet frame with a neighbour solicitation for gw
// from mac and src, as Linux sends one (RFC 4861 §7.2.2): to gw's
// solicited-node multicast group and its MAC (RFC 2464 §7), hop limit
// 255, traffic class and flow label zero, and a source link-layer address
// option, which RFC 4861 §4.3 forbids only from the unspecified address
// (which solicitSource never picks).
func solicitFrame(mac net.HardwareAddr, src, gw netip.Addr) ([]byte, error) {
	group, err := ndp.SolicitedNodeMulticast(gw)
	if err != nil {
		return nil, err
	}
	ns := &ndp.NeighborSolicitation{TargetAddress: gw}
	if !src.IsUnspecified() {
		ns.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}
	}
	msg, err := ndp.MarshalMessageChecksum(ns, src, group)
	if err != nil {
		return nil, fmt.Errorf("neighbour solicitation for %s from %s: %w", gw, src, err)
	}
	g := group.As16()
	f := &ethernet.Frame{
		Destination: net.HardwareAddr{0x33, 0x33, g[12], g[13], g[14], g[15]},
		Source:      mac,
		EtherType:   ethernet.EtherTypeIPv6,
		Payload:     append(ipv6Header(src, group, len(msg)), msg...),
	}
	b, err := f.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal Ethernet frame: %w", err)
	}
	return b, nil
}

// ipv6Header is the fixed IPv6 header of an ICMPv6 packet with hop limit
// 255 and n bytes of payload.
func ipv6Header(src, dst netip.Addr, n int) []byte {
	h := make([]byte, ipv6HeaderLen)
	h[0] = 6 << 4
	binary.BigEndian.PutUint16(h[4:6], uint16(n))
	h[6] = unix.IPPROTO_ICMPV6
	h[7] = ndp.HopLimit
	s, d := src.As16(), dst.As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
	return h
}

// isAdvertFrom reports whether frame is a valid neighbour advertisement
// (RFC 4861 §7.1.2) whose target is gw. Anything else on the socket is
// ignored: other ICMPv6, advertisements for other targets, one with a
// hop limit below 255 (it crossed a router, so it is forged), a bad
// checksum, a code other than 0, the solicited flag on a multicast one,
// or a malformed packet.
func isAdvertFrom(frame []byte, gw netip.Addr) bool {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil || f.EtherType != ethernet.EtherTypeIPv6 {
		return false
	}
	p := f.Payload
	if len(p) < ipv6HeaderLen || p[0]>>4 != 6 || p[6] != unix.IPPROTO_ICMPV6 || p[7] != ndp.HopLimit {
		return false
	}
	n := int(binary.BigEndian.Uint16(p[4:6]))
	if len(p) < ipv6HeaderLen+n {
		return false
	}
	src := netip.AddrFrom16([16]byte(p[8:24]))
	dst := netip.AddrFrom16([16]byte(p[24:40]))
	msg := p[ipv6HeaderLen : ipv6HeaderLen+n]
	if len(msg) < 4 || msg[1] != 0 || icmpv6Checksum(src, dst, msg) != 0 {
		return false
	}
	m, err := ndp.ParseMessage(msg)
	if err != nil {
		return false
	}
	na, ok := m.(*ndp.NeighborAdvertisement)
	if !ok || dst.IsMulticast() && na.Solicited {
		return false
	}
	return na.TargetAddress == gw
}

// icmpv6Checksum is the Internet checksum of msg under the IPv6
// pseudo-header (RFC 8200 §8.1); it is 0 for a message whose checksum
// field is right.
func icmpv6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	s, d := src.As16(), dst.As16()
	var pseudo [40]byte
	copy(pseudo[0:16], s[:])
	copy(pseudo[16:32], d[:])
	binary.BigEndian.PutUint32(pseudo[32:36], uint32(len(msg)))
	pseudo[39] = unix.IPPROTO_ICMPV6
	var sum uint32
	for _, b := range [][]byte{pseudo[:], msg} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
