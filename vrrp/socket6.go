package vrrp

import (
	"context"
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
// to one interface, driven through ipv6.PacketConn, its sends made by
// sendmsg. An IPv6 raw socket never delivers the IPv6 header, so what the
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
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		cerr := rc.Control(func(fd uintptr) {
			if err = unix.BindToDevice(int(fd), ifi.Name); err != nil {
				err = fmt.Errorf("bind to device: %w", err)
				return
			}
			// Only the groups this socket joins, not every group another
			// program joined on the host.
			if err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0); err != nil {
				err = fmt.Errorf("IPV6_MULTICAST_ALL: %w", err)
			}
		})
		return errors.Join(cerr, err)
	}}
	c, err := lc.ListenPacket(context.Background(), fmt.Sprintf("ip6:%d", ipProtoVRRP), "::")
	if err != nil {
		return nil, fmt.Errorf("vrrp: open raw IPv6 socket on %s: %w", ifi.Name, err)
	}
	ipc := c.(*net.IPConn)
	rc, err := ipc.SyscallConn()
	if err != nil {
		ipc.Close()
		return nil, fmt.Errorf("vrrp: raw IPv6 socket on %s: %w", ifi.Name, err)
	}
	s := &socket6{ipc: ipc, pc: ipv6.NewPacketConn(ipc), rc: rc, ifindex: ifi.Index, ifname: ifi.Name,
		sendOOB: make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo)+unix.CmsgSpace(4))}
	if err := s.setOptions(ifi, group); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

func (s *socket6) setOptions(ifi *net.Interface, group netip.Addr) error {
	opts := []sockopt{
		{"IPV6_RECVPKTINFO/IPV6_RECVHOPLIMIT", func() error {
			return s.pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true)
		}},
		// Traffic class 0xc0 (network control), as the IPv4 TOS.
		{"IPV6_TCLASS", func() error { return s.pc.SetTrafficClass(0xc0) }},
		{"IPV6_UNICAST_HOPS", func() error { return s.pc.SetHopLimit(255) }},
	}
	if group.IsValid() {
		opts = append(opts, []sockopt{
			{"IPV6_MULTICAST_IF", func() error { return s.pc.SetMulticastInterface(ifi) }},
			{"IPV6_MULTICAST_HOPS", func() error { return s.pc.SetMulticastHopLimit(255) }},
			{"IPV6_MULTICAST_LOOP", func() error { return s.pc.SetMulticastLoopback(false) }},
		}...)
	}
	for _, o := range opts {
		if err := o.set(); err != nil {
			return fmt.Errorf("vrrp: set %s on %s: %w", o.name, ifi.Name, err)
		}
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
	if err := sendmsg(s.rc, b, s.sendOOB, unsafe.Pointer(&to), unix.SizeofSockaddrInet6); err != nil {
		return writeError(s.ipc.LocalAddr(), addr, err)
	}
	return nil
}

// Close closes the socket, which leaves the group.
func (s *socket6) Close() error { return s.pc.Close() }
