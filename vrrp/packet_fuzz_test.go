package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// FuzzAdvert feeds UnmarshalBinary arbitrary messages and pseudo-header
// addresses of either family; when fix is set it first writes the right checksum into the
// message, so that the fuzzer gets past the checksum to the checks behind
// it, which random bytes almost never reach. It must never panic; every
// rejection must be a drop with a reason; whatever it accepts must re-encode
// to bytes that decode to the same Advert and, but for the two things a
// decoder may not keep (v3 reserved bits, and a checksum of 0xffff standing
// for 0x0000), to the very same bytes.
//
// The seeds are the keepalived captures. Past crashers stay as seeds in
// testdata/fuzz/FuzzAdvert, each listed here with what it found: none yet.
func FuzzAdvert(f *testing.F) {
	for _, v := range pktVectors {
		src := netip.MustParseAddr(v.src).AsSlice()
		dst := netip.MustParseAddr(v.dst).AsSlice()
		for _, fix := range []bool{false, true} {
			f.Add(pktHex(f, v.payload), src, dst, fix)
		}
	}
	f.Fuzz(func(t *testing.T, b, src, dst []byte, fix bool) {
		v6 := len(src) >= 16 // both addresses of the family src's length says
		a := Advert{Src: pktAddrFromBytes(src, v6), Dst: pktAddrFromBytes(dst, v6)}
		if fix {
			b = pktWithChecksum(b, a.Src, a.Dst)
		}
		in := bytes.Clone(b)
		if err := a.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("UnmarshalBinary(%x) = %v, not an errMalformed", b, err)
			}
			if r := dropReasonOf(err); r == unknownReason {
				t.Fatalf("UnmarshalBinary(%x) = %v, without a drop reason", b, err)
			}
			return
		}
		if !bytes.Equal(in, b) {
			t.Fatalf("UnmarshalBinary modified its input: %x became %x", in, b)
		}
		out, err := a.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of decoded %+v: %v", a, err)
		}
		back := Advert{Src: a.Src, Dst: a.Dst}
		if err := back.UnmarshalBinary(out); err != nil {
			t.Fatalf("UnmarshalBinary of re-encoded %x: %v", out, err)
		}
		if d := pktDiff(a, back); d != "" {
			t.Fatalf("round trip of %x via %x (-first +second):\n%s", b, out, d)
		}
		reserved := a.Version == 3 && b[4]&0xf0 != 0
		negZero := binary.BigEndian.Uint16(b[6:]) == 0xffff
		if !reserved && !negZero && !bytes.Equal(b, out) {
			t.Fatalf("re-encoded (-want +got):\n-%x\n+%x", b, out)
		}
	})
}

// pktAddrFromBytes makes an IPv6 or an IPv4 address of the fuzzer's
// bytes, cut or zero-padded to its length.
func pktAddrFromBytes(b []byte, v6 bool) netip.Addr {
	var a [16]byte
	copy(a[:], b)
	if v6 {
		return netip.AddrFrom16(a)
	}
	return netip.AddrFrom4([4]byte(a[:4]))
}

// pktWithChecksum returns a copy of b with the checksum its version calls
// for (RFC 3768 §5.3.8, RFC 5798 §5.2.8), or b itself if it has no header.
func pktWithChecksum(b []byte, src, dst netip.Addr) []byte {
	if len(b) < advertHeaderLen {
		return b
	}
	b = bytes.Clone(b)
	b[6], b[7] = 0, 0
	var sum uint32
	switch {
	case b[0]>>4 != 3:
	case isIPv6(src):
		sum = pseudoHeaderSum6(src, dst, len(b))
	case dst.Is4():
		sum = pseudoHeaderSum(src.As4(), dst.As4(), len(b))
	}
	binary.BigEndian.PutUint16(b[6:], ^fold(sum16(sum, b)))
	return b
}
