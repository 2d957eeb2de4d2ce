package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A node that gains a VIP may still hold TCP sockets on it from the last
// time it was master: TIME_WAIT sockets of the connections its server
// closed (every connection of a client that does not keep it alive),
// connections the server still holds whose clients were reset by the
// other master in the meantime, orphans in FIN_WAIT. Meanwhile a client
// may have opened a connection to the other master from the same port,
// the kernel's ephemeral port range being far smaller than a busy
// client's connections in a TIME_WAIT's minute. When the VIP comes back,
// that connection's next segment finds the stale socket, out of its
// window, and gets a bare ACK of the old connection in answer (RFC 793's
// rule for an unacceptable segment) instead of the reset a node with no
// socket sends. The client drops the ACK, answers with its own, both
// rate-limited, and the request hangs until the client gives up, rather
// than failing at once and being retried on a new connection.
//
// So while a VIP is not on the node, every TCP socket whose local
// address is that VIP, other than a listener, is destroyed with
// SOCK_DESTROY, as ss -K does: at start-up, staleGrace after the node let
// the VIP go, or, if it takes the VIP back sooner, between its first
// advert and adding the VIP. None of them can be of use: the VIP is, or
// was, elsewhere.

// sockDiag is a NETLINK_SOCK_DIAG socket, in the namespace it was opened
// in.
type sockDiag struct{ *nlSocket }

// inet_diag's layouts (linux/inet_diag.h).
const (
	sizeofSockID    = 48
	sizeofDiagReqV2 = 8 + sizeofSockID
	sizeofDiagMsg   = 4 + sizeofSockID + 20
	tcpListen       = 10 // TCP_LISTEN
	destroyBatch    = 256
)

// openSockDiag opens a sock_diag socket in the calling thread's network
// namespace.
func openSockDiag() (*sockDiag, error) {
	s, err := openNetlink(unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, err
	}
	return &sockDiag{s}, nil
}

// diagSocket is one socket a dump returned: its family, state and id, the
// id as the kernel wrote it, cookie included, to name it to SOCK_DESTROY.
type diagSocket struct {
	family, state uint8
	local         netip.Addr
	id            [sizeofSockID]byte
}

// DropOn destroys every TCP socket, of either family, whose local address
// is in addrs, listeners excepted, and returns how many it destroyed. An
// IPv4 address also matches IPv4-mapped IPv6 sockets (those a [::]
// listener accepts). A socket that went away meanwhile is not an error.
func (d *sockDiag) DropOn(addrs []netip.Addr) (int, error) {
	if len(addrs) == 0 {
		return 0, nil
	}
	want := map[netip.Addr]bool{}
	for _, a := range addrs {
		want[a.Unmap()] = true
	}
	var stale []diagSocket
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := d.dump(family)
		if err != nil {
			return 0, err
		}
		for _, s := range socks {
			if want[s.local.Unmap()] {
				stale = append(stale, s)
			}
		}
	}
	// A batch that fails (an older kernel refuses TIME_WAIT sockets)
	// does not keep the others from being tried.
	dropped := 0
	var first error
	for len(stale) > 0 {
		n := min(len(stale), destroyBatch)
		k, err := d.destroy(stale[:n])
		dropped += k
		if first == nil {
			first = err
		}
		stale = stale[n:]
	}
	return dropped, first
}

// dump lists the TCP sockets of family in every state but LISTEN.
func (d *sockDiag) dump(family uint8) ([]diagSocket, error) {
	seq := d.next()
	req := diagRequest(nil, unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq,
		family, ^uint32(1<<tcpListen), nil)
	if err := unix.Sendto(d.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag dump: %w", os.NewSyscallError("sendto", err))
	}
	var out []diagSocket
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err != nil {
			return nil, fmt.Errorf("sock_diag dump: %w", os.NewSyscallError("recvfrom", err))
		}
		msgs, err := syscall.ParseNetlinkMessage(d.buf[:n])
		if err != nil {
			return nil, fmt.Errorf("sock_diag dump: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if err := nlError(m.Data); err != nil {
					return nil, fmt.Errorf("sock_diag dump: %w", err)
				}
			case unix.SOCK_DIAG_BY_FAMILY:
				if s, ok := parseDiagMsg(m.Data); ok {
					out = append(out, s)
				}
			}
		}
	}
}

// destroy sends SOCK_DESTROY for each of socks in one write, and returns
// how many the kernel destroyed.
func (d *sockDiag) destroy(socks []diagSocket) (int, error) {
	var req []byte
	for _, s := range socks {
		req = diagRequest(req, unix.SOCK_DESTROY, unix.NLM_F_REQUEST, d.next(), s.family, 1<<s.state, s.id[:])
	}
	failed, err := d.sendBatch(req)
	if err != nil {
		return 0, fmt.Errorf("sock_diag destroy: %w", err)
	}
	var first error
	for _, err := range failed {
		// ENOENT: gone by itself between the dump and now.
		if !errors.Is(err, unix.ENOENT) {
			first = fmt.Errorf("sock_diag destroy: %w", err)
			break
		}
	}
	return len(socks) - len(failed), first
}

// diagRequest appends one inet_diag_req_v2 for TCP with its netlink
// header.
func diagRequest(b []byte, typ uint16, flags uint16, seq uint32, family uint8, states uint32, id []byte) []byte {
	b = nlHeader(b, typ, flags, seq, sizeofDiagReqV2)
	b = append(b, family, unix.IPPROTO_TCP, 0, 0)
	b = binary.NativeEndian.AppendUint32(b, states)
	if id != nil {
		return append(b, id...)
	}
	var none [sizeofSockID]byte
	// No cookie: INET_DIAG_NOCOOKIE.
	binary.NativeEndian.PutUint32(none[40:], ^uint32(0))
	binary.NativeEndian.PutUint32(none[44:], ^uint32(0))
	return append(b, none[:]...)
}

// parseDiagMsg reads an inet_diag_msg: family, state, timer, retrans, id.
func parseDiagMsg(b []byte) (diagSocket, bool) {
	if len(b) < sizeofDiagMsg {
		return diagSocket{}, false
	}
	s := diagSocket{family: b[0], state: b[1]}
	copy(s.id[:], b[4:4+sizeofSockID])
	src := s.id[4:20] // after the two ports
	switch s.family {
	case unix.AF_INET:
		s.local = netip.AddrFrom4([4]byte(src[:4]))
	case unix.AF_INET6:
		s.local = netip.AddrFrom16([16]byte(src))
	default:
		return diagSocket{}, false
	}
	return s, true
}

// DropStaleSockets destroys the sockets left on those of the VIPs that
// are not on the interface now. VIPs there keep their connections. A
// failure is logged, not returned: the node goes on, as it would on a
// kernel that cannot destroy sockets (one without
// CONFIG_INET_DIAG_DESTROY, or, for TIME_WAIT sockets, an older one).
//
// It may run off the instance's loop: Add waits for it to end.
func (v *vipSet) DropStaleSockets() {
	if v.diag == nil {
		return
	}
	v.diagMu.Lock()
	defer v.diagMu.Unlock()
	present, err := v.Present()
	if err != nil {
		v.log.Warn("could not list the addresses; stale sockets on the VIPs left", "iface", v.ifname, "err", err)
		return
	}
	on := map[netip.Addr]bool{}
	for _, p := range present {
		on[p.Addr()] = true
	}
	var absent []netip.Addr
	for _, p := range v.vips {
		if !on[p.Addr()] {
			absent = append(absent, p.Addr())
		}
	}
	start := time.Now()
	n, err := v.diag.DropOn(absent)
	if err != nil {
		v.diagFailed++
		if v.diagFailed == 1 {
			v.log.Warn("could not destroy stale TCP sockets on the VIPs (CONFIG_INET_DIAG_DESTROY?); a client's connection that meets one hangs instead of being reset",
				"iface", v.ifname, "destroyed", n, "err", err)
		}
		return
	}
	if n > 0 {
		v.log.Info("destroyed stale TCP sockets on the VIPs", "iface", v.ifname, "count", n, "took", time.Since(start).String())
	}
}
