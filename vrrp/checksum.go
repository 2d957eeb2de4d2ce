package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// The checksums of RFC 1071 as RFC 3768 §5.3.8 and RFC 5798 §5.2.8 use
// them, with the IPv4 and IPv6 pseudo-headers of v3.

// verifyChecksum checks the checksum of the message b as version a.Version
// and, for v3, sets a.ChecksumNoPseudo to the form that verifies. RFC 1071
// verification sums the message with its checksum field: the folded sum of
// a valid message is all ones.
func (a *Advert) verifyChecksum(b []byte) error {
	got := binary.BigEndian.Uint16(b[6:8])
	if a.Version == 2 {
		if fold(sum16(0, b)) == 0xffff {
			return nil
		}
		return malformed(badChecksum, "v2 checksum 0x%04x, want 0x%04x (RFC 3768 §5.3.8)",
			got, wantChecksum(0, b))
	}
	if isIPv6(a.Src) {
		if !isIPv6(a.Dst) {
			return fmt.Errorf("vrrp: unmarshal v3 advert: Dst %v must be IPv6 with the IPv6 Src %v: "+
				"the checksum pseudo-header covers both (RFC 5798 §5.2.8)", a.Dst, a.Src)
		}
		pseudo := pseudoHeaderSum6(a.Src, a.Dst, len(b))
		if fold(sum16(pseudo, b)) == 0xffff {
			return nil
		}
		return malformed(badChecksum, "v3 checksum 0x%04x, want 0x%04x with the IPv6 pseudo-header %v > %v (RFC 5798 §5.2.8)",
			got, wantChecksum(pseudo, b), a.Src, a.Dst)
	}
	src, okSrc := ipv4Bytes(a.Src)
	dst, okDst := ipv4Bytes(a.Dst)
	if !okSrc || !okDst {
		// A caller's mistake, not a bad packet: no errMalformed.
		return fmt.Errorf("vrrp: unmarshal v3 advert: Src %v and Dst %v must be IPv4 addresses: "+
			"the checksum pseudo-header covers them (RFC 5798 §5.2.8)", a.Src, a.Dst)
	}
	pseudo := pseudoHeaderSum(src, dst, len(b))
	if fold(sum16(pseudo, b)) == 0xffff {
		return nil
	}
	if fold(sum16(0, b)) == 0xffff {
		a.ChecksumNoPseudo = true
		return nil
	}
	return malformed(badChecksum, "v3 checksum 0x%04x, want 0x%04x with the pseudo-header %v > %v "+
		"(RFC 5798 §5.2.8) or 0x%04x without",
		got, wantChecksum(pseudo, b), a.Src, a.Dst, wantChecksum(0, b))
}

// ipv4Bytes returns the four bytes of an IPv4 address, accepting the
// IPv4-mapped IPv6 form that net.IP conversions produce.
func ipv4Bytes(a netip.Addr) ([4]byte, bool) {
	if !a.Is4() && !a.Is4In6() {
		return [4]byte{}, false
	}
	return a.Unmap().As4(), true
}

// pseudoHeaderSum is the RFC 1071 sum of the IPv4 pseudo-header for a VRRP
// message of n bytes (RFC 5798 §5.2.8).
func pseudoHeaderSum(src, dst [4]byte, n int) uint32 {
	sum := sum16(0, src[:])
	sum = sum16(sum, dst[:])
	return sum + ipProtoVRRP + uint32(n)
}

// pseudoHeaderSum6 is the RFC 1071 sum of the IPv6 pseudo-header (RFC 8200
// §8.1) for a VRRP message of n bytes.
func pseudoHeaderSum6(src, dst netip.Addr, n int) uint32 {
	s, d := src.As16(), dst.As16()
	sum := sum16(0, s[:])
	sum = sum16(sum, d[:])
	return sum + uint32(n>>16) + uint32(n&0xffff) + ipProtoVRRP
}

// sum16 adds b to sum as big-endian 16-bit words, an odd last byte padded
// with zero (RFC 1071). A VRRP message is at most 4088 bytes: no overflow.
func sum16(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// fold folds the carries of sum back into 16 bits (ones' complement sum).
func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// wantChecksum is the checksum the message b should carry, given the sum of
// its pseudo-header (0 for none); for error messages.
func wantChecksum(pseudo uint32, b []byte) uint16 {
	sum := sum16(pseudo, b[:6])
	return ^fold(sum16(sum, b[8:]))
}
