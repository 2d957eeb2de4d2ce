package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// defaultGroup6 is the IPv6 multicast group of VRRP (RFC 5798 §5.1.2.2).
var defaultGroup6 = netip.MustParseAddr("ff02::12")

// socket6 is the IPv6 VRRP socket: a raw socket of next header 112 bound
// to one interface, driven through ipv6.PacketConn, and its twin, through
// which sendmsg sends. An IPv6 raw socket never delivers the IPv6 header, so what the
// receive checks need of it comes from the control message: the hop limit
// (RFC 5798 §7.1: 255), the destination and the arrival interface; the
// source is the sender's address ReadFrom returns.
//
// The kernel is not asked to compute or verify the checksum
// (IPV6_CHECKSUM): the codec does both, so that a bad one is counted as a
// bad_checksum drop like any other, not lost silently in the kernel.
type socket6 struct {
	ipc     *net.IPConn
	pc      *ipv6.PacketConn // ipc's options and reads
	rc      syscall.RawConn  // ipc's, for sendmsg
	tx      *txSocket
	ifindex int
	ifname  string
	sendOOB []byte // send's own: IPV6_PKTINFO and IPV6_HOPLIMIT
}

var _ socket = (*socket6)(nil)

// listen6 opens the socket on ifi, hop limit 255 on send, hop limit,
// destination and interface reported on receive. With a valid group
// (multicast mode) it also sends multicast out of ifi with hop limit 255,
// does not loop it back, and joins the group on ifi.
func listen6(ifi *net.Interface, group netip.Addr) (*socket6, error) {
	ipc, err := listenRaw(6, ifi.Name, false)
	if err != nil {
		return nil, err
	}
	rc, err := ipc.SyscallConn()
	if err != nil {
		ipc.Close()
		return nil, fmt.Errorf("vrrp: raw IPv6 socket on %s: %w", ifi.Name, err)
	}
	s := &socket6{ipc: ipc, pc: ipv6.NewPacketConn(ipc), rc: rc, ifindex: ifi.Index, ifname: ifi.Name,
		sendOOB: make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo)+unix.CmsgSpace(4))}
	if err := s.setOptions(ifi, group); err != nil {
		ipc.Close()
		return nil, err
	}
	if s.tx, err = openTwin(6, ifi, func(c *net.IPConn) error {
		return setSendOptions6(ipv6.NewPacketConn(c), ifi, group)
	}); err != nil {
		ipc.Close()
		return nil, err
	}
	return s, nil
}

func (s *socket6) setOptions(ifi *net.Interface, group netip.Addr) error {
	if err := setOpts(ifi, sockopt{"IPV6_RECVPKTINFO/IPV6_RECVHOPLIMIT", func() error {
		return s.pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true)
	}}); err != nil {
		return err
	}
	if err := setSendOptions6(s.pc, ifi, group); err != nil {
		return err
	}
	if group.IsValid() {
		if err := s.pc.JoinGroup(ifi, &net.IPAddr{IP: group.AsSlice()}); err != nil {
			return fmt.Errorf("vrrp: join %s on %s: %w", group, ifi.Name, err)
		}
	}
	return nil
}

// recv reads one packet. b must be longer than the longest advert (8 +
// 16×255 bytes): a packet that fills it may have been cut and is dropped
// as bad_length. Without a control message the hop limit reads 0 and the
// interface 0, which the checks drop.
func (s *socket6) recv(b []byte) (rxPacket, error, error) {
	n, cm, src, err := s.pc.ReadFrom(b)
	if err != nil {
		return rxPacket{}, nil, err
	}
	if n == len(b) {
		return rxPacket{}, rejected(badLength, "datagram of %d bytes or more", len(b)), nil
	}
	p := rxPacket{payload: b[:n]}
	if ip, ok := src.(*net.IPAddr); ok {
		p.src, _ = netip.AddrFromSlice(ip.IP)
	}
	if cm != nil {
		p.ifIndex, p.ttl = cm.IfIndex, cm.HopLimit
		p.dst, _ = netip.AddrFromSlice(cm.Dst)
	}
	return p, nil, nil
}

// send sends b from src, the interface's link-local address (RFC 5798
// §5.1.2.1), to dst, with hop limit 255 named on every write.
func (s *socket6) send(b []byte, src, dst netip.Addr) error {
	if !src.Is6() || !dst.Is6() {
		return fmt.Errorf("vrrp: send from %s to %s: not IPv6 addresses", src, dst)
	}
	info := unix.Inet6Pktinfo{Addr: src.As16(), Ifindex: uint32(s.ifindex)}
	rest := putCmsg(s.sendOOB, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unsafe.Pointer(&info), unix.SizeofInet6Pktinfo)
	hops := int32(255)
	putCmsg(rest, unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, unsafe.Pointer(&hops), 4)
	to := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
	addr := &net.IPAddr{IP: dst.AsSlice()}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		to.Scope_id, addr.Zone = uint32(s.ifindex), s.ifname
	}
	if err := sendmsg(s.tx, s.rc, b, s.sendOOB, unsafe.Pointer(&to), unix.SizeofSockaddrInet6); err != nil {
		return writeError(s.ipc.LocalAddr(), addr, err)
	}
	return nil
}

// setSendOptions6 sets the options of what pc sends, on the socket and
// on its twin.
func setSendOptions6(pc *ipv6.PacketConn, ifi *net.Interface, group netip.Addr) error {
	opts := []sockopt{
		// Traffic class 0xc0 (network control), as the IPv4 TOS.
		{"IPV6_TCLASS", func() error { return pc.SetTrafficClass(0xc0) }},
		{"IPV6_UNICAST_HOPS", func() error { return pc.SetHopLimit(255) }},
	}
	if group.IsValid() {
		opts = append(opts, []sockopt{
			{"IPV6_MULTICAST_IF", func() error { return pc.SetMulticastInterface(ifi) }},
			{"IPV6_MULTICAST_HOPS", func() error { return pc.SetMulticastHopLimit(255) }},
			{"IPV6_MULTICAST_LOOP", func() error { return pc.SetMulticastLoopback(false) }},
		}...)
	}
	return setOpts(ifi, opts...)
}

// Close closes the socket, which leaves the group, and its twin.
func (s *socket6) Close() error { return errors.Join(s.pc.Close(), s.tx.Close()) }
