package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// nlSocket is a netlink socket that writes requests in batches: many
// messages in one sendto, none asking for an acknowledgement. The kernel
// handles every request of a write before the write returns (rtnetlink
// and sock_diag both run in the sender's context), and answers only the
// ones that failed, so what is queued on the socket then is every failure
// there is. A batch of a hundred addresses thus costs two system calls
// and no allocation, where one request at a time costs a round trip and,
// through vishvananda/netlink, a 64 KiB receive buffer each.
type nlSocket struct {
	fd  int
	seq uint32
	buf []byte // what recvfrom reads into
}

const (
	nlRecvBytes    = 1 << 16
	sizeofNlmsghdr = 16 // linux/netlink.h
)

// openNetlink opens a netlink socket of proto in the calling thread's
// network namespace, with vipNetlinkTimeout on sends and receives.
func openNetlink(proto int) (*nlSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	tv := unix.NsecToTimeval(vipNetlinkTimeout.Nanoseconds())
	for _, opt := range []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &tv); err != nil {
			unix.Close(fd)
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	return &nlSocket{fd: fd, buf: make([]byte, nlRecvBytes)}, nil
}

func (s *nlSocket) Close() error { return unix.Close(s.fd) }

// next returns the sequence number of a new request.
func (s *nlSocket) next() uint32 {
	s.seq++
	return s.seq
}

// sendBatch writes req, requests built with nlHeader and numbered by
// next, in one write and returns the failures the kernel answered, by
// the failed request's sequence number. err is set if the write failed
// (nothing was done) or the answers could not all be read.
func (s *nlSocket) sendBatch(req []byte) (failed map[uint32]error, err error) {
	if err := unix.Sendto(s.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, os.NewSyscallError("sendto", err)
	}
	for {
		n, _, err := unix.Recvfrom(s.fd, s.buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			return failed, nil
		}
		if err != nil {
			// ENOBUFS: answers were lost, so which failed is unknown.
			return failed, os.NewSyscallError("recvfrom", err)
		}
		msgs, _ := syscall.ParseNetlinkMessage(s.buf[:n]) // a truncated tail: what parsed
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			seq, err := nlErrorOf(m.Data)
			if err == nil {
				continue
			}
			if failed == nil {
				failed = map[uint32]error{}
			}
			failed[seq] = err
		}
	}
}

// nlHeader appends a netlink header for a request of bodyLen bytes.
func nlHeader(b []byte, typ, flags uint16, seq uint32, bodyLen int) []byte {
	b = binary.NativeEndian.AppendUint32(b, uint32(sizeofNlmsghdr+bodyLen))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	return binary.NativeEndian.AppendUint32(b, 0) // port: the kernel
}

// nlError reads the error code of an NLMSG_ERROR message; nil is an
// acknowledgement.
func nlError(body []byte) error {
	if len(body) < 4 {
		return errors.New("short netlink error message")
	}
	if code := int32(binary.NativeEndian.Uint32(body[:4])); code != 0 {
		return unix.Errno(-code)
	}
	return nil
}

// nlErrorOf reads an NLMSG_ERROR message: the sequence number of the
// request it answers (from the copy of its header) and its error.
func nlErrorOf(body []byte) (uint32, error) {
	err := nlError(body)
	if err == nil {
		return 0, nil
	}
	if len(body) < 4+sizeofNlmsghdr {
		return 0, err
	}
	return binary.NativeEndian.Uint32(body[4+8 : 4+12]), err
}

// Address requests (linux/if_addr.h).
const (
	sizeofIfAddrmsg    = 8
	sizeofIfaCacheinfo = 16
	addrBatch          = 32 // VIPs per write, each announced after its write
)

// addrRequest appends an RTM_NEWADDR that adds or replaces p on the
// interface index, or with del an RTM_DELADDR that removes it, with the
// attributes ip addr and vishvananda/netlink give: IFA_LOCAL and
// IFA_ADDRESS, an IPv4 prefix shorter than /31 its broadcast address, an
// IPv6 one IFA_F_NODAD (duplicate address detection would hold a new
// master's VIP tentative), and a lifetime of life seconds if life > 0.
func addrRequest(b []byte, del bool, seq uint32, index int, p netip.Prefix, life int) []byte {
	addr := p.Addr().AsSlice()
	family, flags := uint8(unix.AF_INET), uint8(0)
	if !p.Addr().Is4() {
		family, flags = unix.AF_INET6, unix.IFA_F_NODAD
	}
	var brd []byte
	if p.Addr().Is4() && p.Bits() < 31 {
		brd = binary.BigEndian.AppendUint32(nil, binary.BigEndian.Uint32(addr)|^uint32(0)>>p.Bits())
	}
	attr := 4 + len(addr) // an address attribute; lengths are multiples of 4
	body := sizeofIfAddrmsg + 2*attr
	if brd != nil {
		body += attr
	}
	if life > 0 {
		body += 4 + sizeofIfaCacheinfo
	}
	typ, nlflags := uint16(unix.RTM_DELADDR), uint16(unix.NLM_F_REQUEST)
	if !del {
		typ, nlflags = unix.RTM_NEWADDR, unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_REPLACE
	}
	b = nlHeader(b, typ, nlflags, seq, body)
	b = append(b, family, uint8(p.Bits()), flags, unix.RT_SCOPE_UNIVERSE)
	b = binary.NativeEndian.AppendUint32(b, uint32(index))
	b = rtAttr(b, unix.IFA_LOCAL, addr)
	b = rtAttr(b, unix.IFA_ADDRESS, addr)
	if brd != nil {
		b = rtAttr(b, unix.IFA_BROADCAST, brd)
	}
	if life > 0 {
		var ci [sizeofIfaCacheinfo]byte
		binary.NativeEndian.PutUint32(ci[0:4], uint32(life)) // ifa_prefered
		binary.NativeEndian.PutUint32(ci[4:8], uint32(life)) // ifa_valid
		b = rtAttr(b, unix.IFA_CACHEINFO, ci[:])
	}
	return b
}

// rtAttr appends an attribute whose data is a multiple of 4 bytes long.
func rtAttr(b []byte, typ uint16, data []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	return append(b, data...)
}

// change adds (replacing) or, with del, removes ps on the interface,
// addrBatch to a write, each with a lifetime of life seconds if life > 0,
// and calls done, if set, after each write with the ones that write
// changed. It returns the failures, each naming its VIP; a removal of an
// address that is not there is not one.
func (v *vipSet) change(del bool, ps []netip.Prefix, life int, done func([]netip.Prefix)) error {
	var errs []error
	verb := "add"
	if del {
		verb = "remove"
	}
	req := make([]byte, 0, addrBatch*128)
	ok := make([]netip.Prefix, 0, addrBatch)
	for len(ps) > 0 {
		chunk := ps[:min(len(ps), addrBatch)]
		ps = ps[len(chunk):]
		req, ok = req[:0], ok[:0]
		first := v.nl.seq + 1
		for _, p := range chunk {
			req = addrRequest(req, del, v.nl.next(), v.index, p, life)
		}
		failed, err := v.nl.sendBatch(req)
		if err != nil {
			// Not done, or not known to be done: none is counted.
			errs = append(errs, fmt.Errorf("vrrp: %s %d VIPs from %s on %s: %w", verb, len(chunk), chunk[0], v.ifname, err))
			continue
		}
		for k, p := range chunk {
			if e, bad := failed[first+uint32(k)]; bad && !(del && errors.Is(e, unix.EADDRNOTAVAIL)) {
				errs = append(errs, fmt.Errorf("vrrp: %s %s on %s: %w", verb, p, v.ifname, e))
				continue
			}
			ok = append(ok, p)
		}
		if done != nil && len(ok) > 0 {
			done(ok)
		}
	}
	return errors.Join(errs...)
}
