package vrrp

import (
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// What the codec refuses, with its drop reason, and the odd inputs it
// accepts.

func TestUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		dst     netip.Addr // default group
		eof     bool       // io.ErrUnexpectedEOF expected too
		reason  dropReason
	}{
		{name: "empty", payload: "", eof: true, reason: badLength},
		{name: "short header", payload: "313478 02000a", eof: true, reason: badLength},
		{name: "v3 missing address", payload: "31347802 000a2f4c c000026e", eof: true, reason: badLength},
		{name: "v2 missing auth data", payload: "21339603 01019318 c0000264 c0000265 c0000266", eof: true, reason: badLength},
		{name: "v2 one byte short", payload: "21339603 01019318 c0000264 c0000265 c0000266 73656372 657431", eof: true, reason: badLength},
		{name: "count above length", payload: "31347803 000a2f4c c000026e c000026f", eof: true, reason: badLength},
		{name: "count below length", payload: "31347801 000a2f4c c000026e c000026f", reason: badLength},
		{name: "trailing byte", payload: "31356401 0064236c c0000278 00", dst: pktPeer, reason: badLength},
		{name: "v2 trailing bytes", payload: "21339603 01019318 c0000264 c0000265 c0000266 73656372 65743132 0000", reason: badLength},
		{name: "version 1", payload: "11347802 000a2f4c c000026e c000026f", reason: badVersion},
		{name: "version 4", payload: "41347802 000a2f4c c000026e c000026f", reason: badVersion},
		{name: "version 0", payload: "00000000 00000000", reason: badVersion},
		{name: "type 0", payload: "30347802 000a2f4c c000026e c000026f", reason: badType},
		{name: "type 2", payload: "32347802 000a2f4c c000026e c000026f", reason: badType},
		{name: "v2 bad checksum", payload: "21339603 01019319 c0000264 c0000265 c0000266 73656372 65743132", reason: badChecksum},
		{name: "v2 altered password", payload: "21339603 01019318 c0000264 c0000265 c0000266 73656372 65743133", reason: badChecksum},
		{name: "v3 bad checksum", payload: "31347802 000a2f4d c000026e c000026f", reason: badChecksum},
		{name: "v3 wrong destination", payload: "31356401 0064236c c0000278", dst: pktGroup, reason: badChecksum},
		{name: "v3 zero checksum", payload: "31347802 000a0000 c000026e c000026f", reason: badChecksum},
		// The checksums below are valid: the field checks come after.
		{name: "v2 zero interval", payload: "21339603 01009319 c0000264 c0000265 c0000266 73656372 65743132", reason: badInterval},
		{name: "v3 zero interval", payload: "31347802 00002f56 c000026e c000026f", reason: badInterval},
		{name: "v3 zero interval, reserved bits set", payload: "31347802 f0003f55 c000026e c000026f", reason: badInterval},
		{name: "v2 zero VRID", payload: "21009603 0101934b c0000264 c0000265 c0000266 73656372 65743132", reason: badVRID},
		{name: "v3 zero VRID", payload: "31007802 000a2f80 c000026e c000026f", reason: badVRID},
		{name: "v2 auth type 2", payload: "21339603 02019218 c0000264 c0000265 c0000266 73656372 65743132", reason: badAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := tc.dst
			if !dst.IsValid() {
				dst = pktGroup
			}
			before := Advert{Src: pktKeepalived, Dst: dst, VRID: 9}
			a := before
			err := a.UnmarshalBinary(pktHex(t, tc.payload))
			if err == nil {
				t.Fatalf("UnmarshalBinary succeeded: %+v", a)
			}
			if !errors.Is(err, errMalformed) {
				t.Errorf("error %q does not match errMalformed", err)
			}
			if got := errors.Is(err, io.ErrUnexpectedEOF); got != tc.eof {
				t.Errorf("errors.Is(%q, io.ErrUnexpectedEOF) = %v, want %v", err, got, tc.eof)
			}
			if got := dropReasonOf(err); got != tc.reason {
				t.Errorf("dropReasonOf(%q) = %v, want %v", err, got, tc.reason)
			}
			if d := pktDiff(before, a); d != "" {
				t.Errorf("UnmarshalBinary changed the Advert on error (-before +after):\n%s", d)
			}
		})
	}
}

// TestUnmarshalAccepts covers valid inputs the captures do not: reserved
// bits, no address, the largest count and a checksum of 0xffff.
func TestUnmarshalAccepts(t *testing.T) {
	many := make([]netip.Addr, 255)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
	}
	tests := []struct {
		name    string
		payload []byte
		want    Advert
	}{
		{
			// RFC 5798 §5.2.6: reserved bits ignored on receipt.
			name:    "v3 reserved bits set",
			payload: pktHex(t, "31347802 f00a3f4b c000026e c000026f"),
			want: Advert{Version: 3, VRID: 52, Priority: 120, Interval: 100 * time.Millisecond,
				Addrs: []netip.Addr{pktVIP110, pktVIP111}, Src: pktKeepalived, Dst: pktGroup},
		},
		{
			name:    "v2 no address, no authentication",
			payload: pktHex(t, "21016400 00057af9 00000000 00000000"),
			want:    Advert{Version: 2, VRID: 1, Priority: 100, Interval: 5 * time.Second, Src: pktKeepalived, Dst: pktGroup},
		},
		{
			name:    "v3 255 addresses",
			payload: pktMarshal(t, Advert{Version: 3, VRID: 255, Priority: 255, Interval: 40950 * time.Millisecond, Addrs: many, Src: pktKeepalived, Dst: pktGroup}),
			want:    Advert{Version: 3, VRID: 255, Priority: 255, Interval: 40950 * time.Millisecond, Addrs: many, Src: pktKeepalived, Dst: pktGroup},
		},
		{
			// Ones' complement has two zeros: RFC 1071 verification
			// accepts 0xffff where the computed checksum is 0x0000.
			// The authentication data is chosen to make the sum so.
			name:    "v2 checksum 0xffff for 0x0000",
			payload: pktHex(t, "21016400 0001ffff 7afd0000 00000000"),
			want: Advert{Version: 2, VRID: 1, Priority: 100, Interval: time.Second,
				AuthData: [8]byte{0x7a, 0xfd}, Src: pktKeepalived, Dst: pktGroup},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Advert{Src: pktKeepalived, Dst: pktGroup}
			if err := got.UnmarshalBinary(tc.payload); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if d := pktDiff(tc.want, got); d != "" {
				t.Errorf("UnmarshalBinary (-want +got):\n%s", d)
			}
		})
	}
}

func pktMarshal(t testing.TB, a Advert) []byte {
	t.Helper()
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary(%+v): %v", a, err)
	}
	return b
}

func TestUnmarshalV3NeedsSrcDst(t *testing.T) {
	var a Advert
	err := a.UnmarshalBinary(pktHex(t, pktVectors[2].payload))
	if err == nil || errors.Is(err, errMalformed) || !strings.Contains(err.Error(), "Src") {
		t.Errorf("UnmarshalBinary of v3 without Src and Dst = %v, want a non-malformed error naming Src", err)
	}
}

func TestMarshalErrors(t *testing.T) {
	valid2 := Advert{Version: 2, VRID: 1, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{pktVIP100}}
	valid3 := Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{pktVIP100}, Src: pktKeepalived, Dst: pktGroup}
	tooMany := make([]netip.Addr, 256)
	for i := range tooMany {
		tooMany[i] = pktVIP100
	}
	tests := []struct {
		name  string
		edit  func(a *Advert)
		base  Advert
		field string // named in the error
	}{
		{"version 0", func(a *Advert) { a.Version = 0 }, valid3, "Version"},
		{"version 4", func(a *Advert) { a.Version = 4 }, valid3, "Version"},
		{"VRID 0", func(a *Advert) { a.VRID = 0 }, valid3, "VRID"},
		{"v2 interval 0", func(a *Advert) { a.Interval = 0 }, valid2, "Interval"},
		{"v2 interval 1.5s", func(a *Advert) { a.Interval = 1500 * time.Millisecond }, valid2, "Interval"},
		{"v2 interval 256s", func(a *Advert) { a.Interval = 256 * time.Second }, valid2, "Interval"},
		{"v2 interval negative", func(a *Advert) { a.Interval = -time.Second }, valid2, "Interval"},
		{"v2 auth type 2", func(a *Advert) { a.AuthType = 2 }, valid2, "AuthType"},
		{"v3 interval 0", func(a *Advert) { a.Interval = 0 }, valid3, "Interval"},
		{"v3 interval 15ms", func(a *Advert) { a.Interval = 15 * time.Millisecond }, valid3, "Interval"},
		{"v3 interval 5ms", func(a *Advert) { a.Interval = 5 * time.Millisecond }, valid3, "Interval"},
		{"v3 interval 40.96s", func(a *Advert) { a.Interval = 40960 * time.Millisecond }, valid3, "Interval"},
		{"v3 auth type", func(a *Advert) { a.AuthType = 1 }, valid3, "AuthType"},
		{"v3 auth data", func(a *Advert) { a.AuthData = pktSecret }, valid3, "AuthData"},
		{"v3 no Src", func(a *Advert) { a.Src = netip.Addr{} }, valid3, "Src"},
		{"v3 IPv6 Src with an IPv4 Dst", func(a *Advert) { a.Src = netip.MustParseAddr("2001:db8::1") }, valid3, "Dst"},
		{"v3 no Dst", func(a *Advert) { a.Dst = netip.Addr{} }, valid3, "Dst"},
		{"256 addresses", func(a *Advert) { a.Addrs = tooMany }, valid2, "Addrs"},
		{"IPv6 address", func(a *Advert) { a.Addrs = []netip.Addr{pktVIP100, netip.MustParseAddr("2001:db8::1")} }, valid3, "Addrs[1]"},
		{"zero address", func(a *Advert) { a.Addrs = []netip.Addr{{}} }, valid2, "Addrs[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.base
			tc.edit(&a)
			b, err := a.MarshalBinary()
			if err == nil {
				t.Fatalf("MarshalBinary succeeded: %x", b)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("MarshalBinary error %q does not name %s", err, tc.field)
			}
		})
	}
	// The valid bases, and the bounds, do encode.
	for _, a := range []Advert{
		valid2, valid3,
		{Version: 2, VRID: 255, Interval: 255 * time.Second},
		{Version: 3, VRID: 1, Interval: 10 * time.Millisecond, ChecksumNoPseudo: true},
		{Version: 3, VRID: 1, Interval: 40950 * time.Millisecond, Src: pktKeepalived, Dst: pktPeer},
	} {
		if _, err := a.MarshalBinary(); err != nil {
			t.Errorf("MarshalBinary(%+v): %v", a, err)
		}
	}
}
