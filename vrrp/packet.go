package vrrp

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"
)

// The advertisement as it travels in an IPv4 or IPv6 packet of protocol
// 112 (IPv6: next header 112). Both
// versions share the first four bytes and the address list; bytes 4–5 and
// the trailer differ.
//
// Version 2, RFC 3768 §5.1:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Auth Type   |   Adver Int   |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         IP Address (1)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            ...                                |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         IP Address (n)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Authentication Data (1)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Authentication Data (2)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
//	Version 2, Type 1 (advertisement). Adver Int in whole seconds.
//	Length 8 + 4n + 8. Checksum: RFC 1071 over the whole message,
//	authentication data included, no pseudo-header (RFC 3768 §5.3.8).
//
// Version 3, RFC 5798 §5.1, for IPv4:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|(rsvd) |     Max Adver Int     |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IPv4 Address (1)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            ...                                |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IPv4 Address (n)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
//	Version 3, Type 1. rsvd zero on send, ignored on receipt (§5.2.6).
//	Max Adver Int in centiseconds, 12 bits (§5.2.7). Length 8 + 4n.
//	Checksum: RFC 1071 over this pseudo-header followed by the message
//	(§5.2.8; the IPv4 form is the one TCP and UDP use):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  IPv4 Source Address (Src)                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               IPv4 Destination Address (Dst)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     zero      | Protocol 112  |   VRRP message length 8 + 4n  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Version 3 for IPv6 (RFC 5798 §5.1.2, §5.2.9): the same message with
// 16-byte addresses, length 8 + 16n, and the IPv6 pseudo-header of RFC
// 8200 §8.1 in the checksum: source (16 bytes), destination (16), the
// message length (32 bits), three zero bytes and next header 112. VRRPv2
// has no IPv6 form. Which family a message is in follows from Src: an
// IPv6 address (not an IPv4-mapped one) makes it IPv6.

const (
	advertHeaderLen = 8   // fixed part, both versions
	advertAuthLen   = 8   // v2 authentication data trailer
	advertMaxAddrs  = 255 // the count is one byte
	advertType      = 1   // RFC 5798 §5.2.2: the only type
	ipProtoVRRP     = 112 // RFC 5798 §5.1.1.4

	v2MaxInterval  = 255 * time.Second
	v3IntervalUnit = 10 * time.Millisecond
	v3MaxInterval  = 0x0fff * v3IntervalUnit // 40.95 s
)

// Advert is one VRRP advertisement for IPv4, version 2 (RFC 3768) or 3
// (RFC 5798), or for IPv6, version 3. The zero value is not valid: MarshalBinary needs at least
// Version, VRID and Interval.
type Advert struct {
	// Version is 2 (RFC 3768) or 3 (RFC 5798).
	Version int
	// VRID is the virtual router ID, 1–255 (RFC 5798 §5.2.3).
	VRID uint8
	// Priority is 255 for the address owner, 0 for a master that leaves,
	// and 100 by default for others (RFC 5798 §5.2.4).
	Priority uint8
	// Interval is the advertisement interval. On the wire, v2 carries
	// whole seconds, 1–255 (RFC 3768 §5.3.7); v3 carries centiseconds in
	// 12 bits, 10ms–40.95s (RFC 5798 §5.2.7).
	Interval time.Duration
	// AuthType is v2 only: 0 for none, 1 for a simple text password
	// (RFC 2338 §5.3.6; RFC 3768 keeps the field only for compatibility).
	// keepalived's type 2, IPsec AH, travels as IP protocol 51 and is not
	// supported.
	AuthType uint8
	// AuthData is v2 only: the 8 bytes after the addresses, the password
	// when AuthType is 1 (see Password), zero otherwise. It is decoded and
	// encoded as is; comparing it with the configured password is the
	// receiver's job.
	AuthData [8]byte
	// Addrs are the virtual addresses, at most 255, of Src's family. RFC 5798 §5.2.5
	// asks for at least one, but keepalived sends none when it has no
	// virtual address, so none is accepted, and decodes as nil.
	Addrs []netip.Addr

	// Src and Dst are the source and destination the advert travels
	// with; Src's family is the message's. They are not in the VRRP message, but the v3 checksum covers
	// them (RFC 5798 §5.2.8 pseudo-header). keepalived in unicast mode uses
	// the real unicast destination, in multicast mode the group. The caller
	// sets them before UnmarshalBinary of a v3 message (the socket's source
	// and the destination from its control message), and before
	// MarshalBinary of a v3 message unless ChecksumNoPseudo is set.
	// UnmarshalBinary leaves them as they were; v2 ignores them.
	//
	// keepalived up to 1.3.6, and later ones configured with
	// old_unicast_checksum, put the multicast group in the unicast
	// pseudo-header. To accept those, retry UnmarshalBinary with Dst set to
	// the group, as keepalived itself does in unicast mode.
	Src, Dst netip.Addr

	// ChecksumNoPseudo reports, for v3, that the checksum covers the
	// message alone, without the pseudo-header, as some Cisco and Juniper
	// routers and keepalived's v3_checksum_as_v2 compute it for IPv4.
	// UnmarshalBinary tries the RFC form first and sets this when only the
	// other form verifies; MarshalBinary writes the form it selects.
	// Ignored for v2, whose checksum never has a pseudo-header.
	ChecksumNoPseudo bool
}

// authPassword returns the authentication data keepalived sends for the simple
// text password s: its first 8 bytes, zero padded.
func authPassword(s string) [8]byte {
	var p [8]byte
	copy(p[:], s)
	return p
}

// MarshalBinary encodes a as a VRRP message, the payload of the IPv4 packet.
// It reports, naming the field, any field it cannot encode faithfully.
func (a *Advert) MarshalBinary() ([]byte, error) {
	return a.AppendBinary(nil)
}

// AppendBinary appends the encoding of a to b, as MarshalBinary does, so
// that a sender can reuse one buffer. On error it returns b unchanged.
func (a *Advert) AppendBinary(b []byte) ([]byte, error) {
	if err := a.check(); err != nil {
		return b, err
	}
	start := len(b)
	n := a.wireLen()
	b = slices.Grow(b, n)[:start+n]
	m := b[start:]
	clear(m)

	m[0] = byte(a.Version)<<4 | advertType
	m[1] = a.VRID
	m[2] = a.Priority
	m[3] = byte(len(a.Addrs))
	if a.Version == 2 {
		m[4] = a.AuthType
		m[5] = byte(a.Interval / time.Second)
		copy(m[n-advertAuthLen:], a.AuthData[:])
	} else {
		binary.BigEndian.PutUint16(m[4:6], uint16(a.Interval/v3IntervalUnit))
	}
	size := a.addrLen()
	for i, addr := range a.Addrs {
		if size == 16 {
			ip := addr.As16()
			copy(m[advertHeaderLen+16*i:], ip[:])
			continue
		}
		ip, _ := ipv4Bytes(addr)
		copy(m[advertHeaderLen+4*i:], ip[:])
	}

	var sum uint32
	switch {
	case size == 16:
		sum = pseudoHeaderSum6(a.Src, a.Dst, n)
	case a.Version == 3 && !a.ChecksumNoPseudo:
		src, _ := ipv4Bytes(a.Src)
		dst, _ := ipv4Bytes(a.Dst)
		sum = pseudoHeaderSum(src, dst, n)
	}
	binary.BigEndian.PutUint16(m[6:8], ^fold(sum16(sum, m)))
	return b, nil
}

// isIPv6 reports whether an advert is in its IPv6 form: Src is IPv6.
func isIPv6(src netip.Addr) bool { return src.Is6() && !src.Is4In6() }

// addrLen is the length of one address of the list.
func (a *Advert) addrLen() int {
	if isIPv6(a.Src) {
		return 16
	}
	return 4
}

// check reports the first field MarshalBinary cannot encode.
func (a *Advert) check() error {
	if isIPv6(a.Src) {
		return a.check6()
	}
	switch a.Version {
	case 2:
		if a.Interval < time.Second || a.Interval > v2MaxInterval || a.Interval%time.Second != 0 {
			return fieldError("Interval", a.Interval, "VRRP v2 carries whole seconds from 1s to 255s (RFC 3768 §5.3.7)")
		}
		if a.AuthType > 1 {
			return fieldError("AuthType", a.AuthType, "only 0 (none) and 1 (simple password) are supported")
		}
	case 3:
		if a.Interval < v3IntervalUnit || a.Interval > v3MaxInterval || a.Interval%v3IntervalUnit != 0 {
			return fieldError("Interval", a.Interval, "VRRP v3 carries centiseconds from 10ms to 40.95s (RFC 5798 §5.2.7)")
		}
		if a.AuthType != 0 {
			return fieldError("AuthType", a.AuthType, "VRRP v3 has no authentication (RFC 5798 §9)")
		}
		if a.AuthData != [8]byte{} {
			return fieldError("AuthData", fmt.Sprintf("%x", a.AuthData), "VRRP v3 has no authentication (RFC 5798 §9)")
		}
		if _, ok := ipv4Bytes(a.Src); !ok && !a.ChecksumNoPseudo {
			return fieldError("Src", a.Src, "the v3 checksum pseudo-header needs the IPv4 source (RFC 5798 §5.2.8)")
		}
		if _, ok := ipv4Bytes(a.Dst); !ok && !a.ChecksumNoPseudo {
			return fieldError("Dst", a.Dst, "the v3 checksum pseudo-header needs the IPv4 destination (RFC 5798 §5.2.8)")
		}
	default:
		return fieldError("Version", a.Version, "want 2 or 3")
	}
	if a.VRID == 0 {
		return fieldError("VRID", a.VRID, "want 1 to 255 (RFC 5798 §5.2.3)")
	}
	if len(a.Addrs) > advertMaxAddrs {
		return fieldError("Addrs", fmt.Sprintf("(%d addresses)", len(a.Addrs)), "the count field holds at most 255")
	}
	for i, addr := range a.Addrs {
		if _, ok := ipv4Bytes(addr); !ok {
			return fieldError(fmt.Sprintf("Addrs[%d]", i), addr, "not an IPv4 address")
		}
	}
	return nil
}

// check6 is check for the IPv6 form.
func (a *Advert) check6() error {
	switch {
	case a.Version != 3:
		return fieldError("Version", a.Version, "VRRP over IPv6 is version 3 (RFC 5798 §5.1.2); v2 has no IPv6 form")
	case a.Interval < v3IntervalUnit || a.Interval > v3MaxInterval || a.Interval%v3IntervalUnit != 0:
		return fieldError("Interval", a.Interval, "VRRP v3 carries centiseconds from 10ms to 40.95s (RFC 5798 §5.2.7)")
	case a.AuthType != 0 || a.AuthData != [8]byte{}:
		return fieldError("AuthType", a.AuthType, "VRRP v3 has no authentication (RFC 5798 §9)")
	case a.ChecksumNoPseudo:
		return fieldError("ChecksumNoPseudo", true, "an IPv6 checksum always covers the pseudo-header (RFC 5798 §5.2.8)")
	case !isIPv6(a.Dst):
		return fieldError("Dst", a.Dst, "the IPv6 checksum pseudo-header needs the IPv6 destination (RFC 5798 §5.2.8)")
	case a.VRID == 0:
		return fieldError("VRID", a.VRID, "want 1 to 255 (RFC 5798 §5.2.3)")
	case len(a.Addrs) > advertMaxAddrs:
		return fieldError("Addrs", fmt.Sprintf("(%d addresses)", len(a.Addrs)), "the count field holds at most 255")
	}
	for i, addr := range a.Addrs {
		if !isIPv6(addr) {
			return fieldError(fmt.Sprintf("Addrs[%d]", i), addr, "not an IPv6 address, in an IPv6 advert")
		}
	}
	return nil
}

// fieldError is MarshalBinary's error for a field it cannot encode.
func fieldError(field string, value any, why string) error {
	return fmt.Errorf("vrrp: marshal advert: %s %v: %s", field, value, why)
}

// wireLen is the length of a's encoding.
func (a *Advert) wireLen() int {
	n := advertHeaderLen + a.addrLen()*len(a.Addrs)
	if a.Version == 2 {
		n += advertAuthLen
	}
	return n
}

// UnmarshalBinary decodes the VRRP message b, the payload of the IPv4 or
// IPv6 packet without its header, into a. For v3 the caller sets a.Src
// and a.Dst first: the checksum covers them, and an IPv6 Src makes the
// message IPv6 (16-byte addresses; v2 is then malformed).
//
// It checks what needs nothing but the bytes (RFC 5798 §7.1, RFC 3768
// §7.1): version 2 or 3, type 1, a length that matches the address count
// exactly (keepalived drops trailing bytes too), the checksum, a nonzero
// VRID and interval, and for v2 an authentication type of 0 or 1. It does
// not compare anything with a configuration.
//
// Input shorter than the header or than its address count announces
// returns an error matching io.ErrUnexpectedEOF; any other invalid input
// returns an error matching errMalformed (so does a truncated message: for
// a datagram socket, both mean "skip this packet"). Both carry a dropReason
// for dropReasonOf. On error a is left unchanged.
func (a *Advert) UnmarshalBinary(b []byte) error {
	if len(b) < advertHeaderLen {
		return truncated(len(b), advertHeaderLen)
	}
	version := int(b[0] >> 4)
	if version != 2 && version != 3 {
		return malformed(badVersion, "version %d, want 2 or 3 (RFC 5798 §5.2.1)", version)
	}
	if t := b[0] & 0x0f; t != advertType {
		return malformed(badType, "type %d, want 1, advertisement (RFC 5798 §5.2.2)", t)
	}
	v6 := isIPv6(a.Src)
	if v6 && version != 3 {
		return malformed(badVersion, "version %d over IPv6, want 3 (RFC 5798 §5.1.2)", version)
	}
	count := int(b[3])
	size := 4
	if v6 {
		size = 16
	}
	want := advertHeaderLen + size*count
	if version == 2 {
		want += advertAuthLen
	}
	if len(b) < want {
		return truncated(len(b), want)
	}
	if len(b) > want {
		return malformed(badLength, "%d bytes, but address count %d makes a v%d advert of %d", len(b), count, version, want)
	}

	v := Advert{Version: version, VRID: b[1], Priority: b[2], Src: a.Src, Dst: a.Dst}
	if err := v.verifyChecksum(b); err != nil {
		return err
	}
	if v.VRID == 0 {
		return malformed(badVRID, "VRID 0, want 1 to 255 (RFC 5798 §5.2.3)")
	}
	if version == 2 {
		v.AuthType = b[4]
		if v.AuthType > 1 {
			return malformed(badAuth, "v2 auth type %d, want 0 or 1", v.AuthType)
		}
		v.Interval = time.Duration(b[5]) * time.Second
		copy(v.AuthData[:], b[want-advertAuthLen:])
	} else {
		// The top 4 bits are reserved: ignored on receipt (RFC 5798 §5.2.6).
		v.Interval = time.Duration(binary.BigEndian.Uint16(b[4:6])&0x0fff) * v3IntervalUnit
	}
	if v.Interval == 0 {
		return malformed(badInterval, "v%d advertisement interval 0, want at least 1", version)
	}
	if count > 0 {
		v.Addrs = make([]netip.Addr, count)
		for i := range v.Addrs {
			if v6 {
				v.Addrs[i] = netip.AddrFrom16([16]byte(b[advertHeaderLen+16*i:]))
				continue
			}
			v.Addrs[i] = netip.AddrFrom4([4]byte(b[advertHeaderLen+4*i:]))
		}
	}
	*a = v
	return nil
}

// truncated is the error for a message shorter than it must be.
func truncated(got, want int) error {
	return &dropError{
		reason: badLength,
		msg:    fmt.Sprintf("truncated advert: %d bytes, need %d: %v", got, want, io.ErrUnexpectedEOF),
		wraps:  []error{io.ErrUnexpectedEOF, errMalformed},
	}
}

// malformed is the error for an invalid message, dropped for reason r.
func malformed(r dropReason, format string, args ...any) error {
	return &dropError{
		reason: r,
		msg:    "malformed advert: " + fmt.Sprintf(format, args...),
		wraps:  []error{errMalformed},
	}
}
