package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// socket is the raw socket of one address family under a Conn: it sends the
// adverts Conn encodes and turns what it reads into an rxPacket, so that the
// receive checks (receive.go) and Conn do not depend on the family. socket4
// is the IPv4 one; an IPv6 one on ipv6.PacketConn fits beside it, building
// its rxPacket from the control message (hop limit, destination,
// interface), since an IPv6 raw socket never delivers the header.
type socket interface {
	// recv reads one packet into b. A packet to drop comes back as drop,
	// an error with a dropReason; err is the socket's own failure.
	recv(b []byte) (p rxPacket, drop, err error)
	// send sends the VRRP message b from src to dst.
	send(b []byte, src, dst netip.Addr) error
	Close() error
}

// socket4 is the IPv4 VRRP socket: a raw socket of protocol 112 bound to
// one interface, its options set through ipv4.PacketConn, and its twin,
// through which sendmsg sends.
//
// It reads with the IPConn's ReadMsgIP, not PacketConn.ReadFrom, and asks
// the kernel only for IP_PKTINFO. ReadMsgIP keeps the IPv4 header as it
// arrived, so TTL, source and destination come from the packet itself and
// parseIPv4 keeps checking its lengths, with MSG_TRUNC still seen; the
// control message adds what the header lacks, the arrival interface.
// ReadFrom drops the header and the flags, and in x/net v0.59.0 returns a
// payload too long by 20 bytes when the header carries options (it
// subtracts only the options' length), which would turn such an advert
// into a bad_length drop.
type socket4 struct {
	ipc     *net.IPConn
	pc      *ipv4.PacketConn // ipc's options
	rc      syscall.RawConn  // ipc's, for sendmsg
	tx      *txSocket
	ifindex int
	oob     []byte // recv's own
	sendOOB []byte // send's own: one IP_PKTINFO
}

var _ socket = (*socket4)(nil)

// listen4 opens the socket on ifi with TTL 255 and TOS 0xc0 (network
// control, as keepalived) on send and the arrival interface reported on
// receive. With a valid group (multicast mode) it also sends multicast out
// of ifi with TTL 255 (RFC 5798 §5.1.1.3; Go's default is 1), does not
// loop it back, and joins the group on ifi.
func listen4(ifi *net.Interface, group netip.Addr) (*socket4, error) {
	ipc, err := listenRaw(4, ifi.Name, false)
	if err != nil {
		return nil, err
	}
	rc, err := ipc.SyscallConn()
	if err != nil {
		ipc.Close()
		return nil, fmt.Errorf("vrrp: raw socket on %s: %w", ifi.Name, err)
	}
	s := &socket4{ipc: ipc, pc: ipv4.NewPacketConn(ipc), rc: rc, ifindex: ifi.Index,
		oob:     ipv4.NewControlMessage(ipv4.FlagInterface),
		sendOOB: make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))}
	if err := s.setOptions(ifi, group); err != nil {
		ipc.Close()
		return nil, err
	}
	if s.tx, err = openTwin(4, ifi, func(c *net.IPConn) error {
		return setSendOptions4(ipv4.NewPacketConn(c), ifi, group)
	}); err != nil {
		ipc.Close()
		return nil, err
	}
	return s, nil
}

// listenRaw opens a raw VRRP socket of IP version 4 or 6, bound to ifname
// before it sees a packet, and subscribed to no multicast group it has not
// joined itself (IP_MULTICAST_ALL off: another program's group stays out);
// with sendOnly, a twin's, with the filter that drops what it would
// receive. x/net has none of these options, and they must be set before
// the first packet, hence the Control function.
func listenRaw(version int, ifname string, sendOnly bool) (*net.IPConn, error) {
	network, addr, level, mcastAll, optName := "ip4", "0.0.0.0", unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, "IP_MULTICAST_ALL"
	if version == 6 {
		network, addr, level, mcastAll, optName = "ip6", "::", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, "IPV6_MULTICAST_ALL"
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		cerr := rc.Control(func(fd uintptr) {
			if sendOnly {
				if err = attachDropAll(int(fd)); err != nil {
					return
				}
			}
			if err = unix.BindToDevice(int(fd), ifname); err != nil {
				err = fmt.Errorf("bind to device: %w", err)
				return
			}
			if err = unix.SetsockoptInt(int(fd), level, mcastAll, 0); err != nil {
				err = fmt.Errorf("%s: %w", optName, err)
			}
		})
		return errors.Join(cerr, err)
	}}
	pc, err := lc.ListenPacket(context.Background(), fmt.Sprintf("%s:%d", network, ipProtoVRRP), addr)
	if err != nil {
		return nil, fmt.Errorf("vrrp: open raw IPv%d socket on %s: %w", version, ifname, err)
	}
	return pc.(*net.IPConn), nil
}

// setOptions sets the options listen4 promises, each error naming the
// option the kernel refused.
func (s *socket4) setOptions(ifi *net.Interface, group netip.Addr) error {
	if err := setOpts(ifi, sockopt{"IP_PKTINFO", func() error { return s.pc.SetControlMessage(ipv4.FlagInterface, true) }}); err != nil {
		return err
	}
	if err := setSendOptions4(s.pc, ifi, group); err != nil {
		return err
	}
	if group.IsValid() {
		if err := s.pc.JoinGroup(ifi, &net.IPAddr{IP: group.AsSlice()}); err != nil {
			return fmt.Errorf("vrrp: join %s on %s: %w", group, ifi.Name, err)
		}
	}
	return nil
}

// setSendOptions4 sets the options of what pc sends, on the socket and
// on its twin.
func setSendOptions4(pc *ipv4.PacketConn, ifi *net.Interface, group netip.Addr) error {
	opts := []sockopt{
		{"IP_TOS", func() error { return pc.SetTOS(0xc0) }},
		{"IP_TTL", func() error { return pc.SetTTL(255) }},
	}
	if group.IsValid() {
		opts = append(opts, []sockopt{
			{"IP_MULTICAST_IF", func() error { return pc.SetMulticastInterface(ifi) }},
			{"IP_MULTICAST_TTL", func() error { return pc.SetMulticastTTL(255) }},
			{"IP_MULTICAST_LOOP", func() error { return pc.SetMulticastLoopback(false) }},
		}...)
	}
	return setOpts(ifi, opts...)
}

// sockopt is one socket option setOptions sets, named for its error.
type sockopt struct {
	name string
	set  func() error
}

// setOpts sets opts in order, the error of the first the kernel refuses
// naming it and ifi.
func setOpts(ifi *net.Interface, opts ...sockopt) error {
	for _, o := range opts {
		if err := o.set(); err != nil {
			return fmt.Errorf("vrrp: set %s on %s: %w", o.name, ifi.Name, err)
		}
	}
	return nil
}

// recv reads one packet: the IPv4 header and payload into b, the arrival
// interface from IP_PKTINFO. A control message that does not parse leaves
// the index 0, which the receive checks drop as another interface's.
func (s *socket4) recv(b []byte) (rxPacket, error, error) {
	n, oobn, flags, _, err := s.ipc.ReadMsgIP(b, s.oob)
	if err != nil {
		return rxPacket{}, nil, err
	}
	if flags&unix.MSG_TRUNC != 0 {
		return rxPacket{}, rejected(badLength, "datagram longer than %d bytes", len(b)), nil
	}
	p, drop := parseIPv4(b[:n], arrivalIndex(s.oob[:oobn]))
	return p, drop, nil
}

// arrivalIndex is the arrival interface IP_PKTINFO names in oob, or 0 if
// it names none or does not parse.
func arrivalIndex(oob []byte) int {
	var cm ipv4.ControlMessage
	if cm.Parse(oob) != nil {
		return 0
	}
	return cm.IfIndex
}

// send sends b from src to dst. IP_PKTINFO names src and our interface on
// every write, so the kernel neither picks a VIP that happens to come
// first on the interface nor accepts an address that is no longer there.
func (s *socket4) send(b []byte, src, dst netip.Addr) error {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.Is4() || !dst.Is4() {
		return fmt.Errorf("vrrp: send from %s to %s: not IPv4 addresses", src, dst)
	}
	info := unix.Inet4Pktinfo{Ifindex: int32(s.ifindex), Spec_dst: src.As4()}
	putCmsg(s.sendOOB, unix.IPPROTO_IP, unix.IP_PKTINFO, unsafe.Pointer(&info), unix.SizeofInet4Pktinfo)
	to := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
	if err := sendmsg(s.tx, s.rc, b, s.sendOOB, unsafe.Pointer(&to), unix.SizeofSockaddrInet4); err != nil {
		return writeError(s.ipc.LocalAddr(), &net.IPAddr{IP: dst.AsSlice()}, err)
	}
	return nil
}

// Close closes the socket, which leaves the group, and its twin.
func (s *socket4) Close() error { return errors.Join(s.pc.Close(), s.tx.Close()) }
