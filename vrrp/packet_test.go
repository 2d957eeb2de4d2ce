package vrrp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// pktVector is one advertisement captured from keepalived 2.2.7 with
// tcpdump on the peer's side of a veth pair; the configurations and the
// script that made them are in testdata/keepalived/. payload is the VRRP
// message (the IPv4 payload); src and dst are the IPv4 header's addresses.
type pktVector struct {
	name     string
	pcap     string // the capture it was taken from, in testdata/
	payload  string // hex
	src, dst string
	want     Advert
}

var (
	pktKeepalived = netip.MustParseAddr("192.0.2.1") // keepalived's address
	pktPeer       = netip.MustParseAddr("192.0.2.2") // the capturing side
	pktGroup      = netip.MustParseAddr("224.0.0.18")
	pktVIP100     = netip.MustParseAddr("192.0.2.100")
	pktVIP101     = netip.MustParseAddr("192.0.2.101")
	pktVIP102     = netip.MustParseAddr("192.0.2.102")
	pktVIP110     = netip.MustParseAddr("192.0.2.110")
	pktVIP111     = netip.MustParseAddr("192.0.2.111")
	pktVIP120     = netip.MustParseAddr("192.0.2.120")
	pktSecret     = [8]byte{'s', 'e', 'c', 'r', 'e', 't', '1', '2'}
)

var pktVectors = []pktVector{
	{
		// v2-pass.conf: VRID 51, priority 150, advert_int 1,
		// auth_type PASS, auth_pass secret12, three VIPs.
		name:    "v2 multicast password",
		pcap:    "keepalived-v2-pass.pcap",
		payload: "21339603 01019318 c0000264 c0000265 c0000266 73656372 65743132",
		src:     "192.0.2.1", dst: "224.0.0.18",
		want: Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second,
			AuthType: 1, AuthData: pktSecret, Addrs: []netip.Addr{pktVIP100, pktVIP101, pktVIP102},
			Src: pktKeepalived, Dst: pktGroup},
	},
	{
		// The same keepalived stopping: priority 0 (RFC 3768 §6.4.3).
		name:    "v2 multicast password priority 0",
		pcap:    "keepalived-v2-pass.pcap",
		payload: "21330003 01012919 c0000264 c0000265 c0000266 73656372 65743132",
		src:     "192.0.2.1", dst: "224.0.0.18",
		want: Advert{Version: 2, VRID: 51, Priority: 0, Interval: time.Second,
			AuthType: 1, AuthData: pktSecret, Addrs: []netip.Addr{pktVIP100, pktVIP101, pktVIP102},
			Src: pktKeepalived, Dst: pktGroup},
	},
	{
		// v3-multicast.conf: version 3, VRID 52, priority 120,
		// advert_int 0.1, two VIPs.
		name:    "v3 multicast",
		pcap:    "keepalived-v3-multicast.pcap",
		payload: "31347802 000a2f4c c000026e c000026f",
		src:     "192.0.2.1", dst: "224.0.0.18",
		want: Advert{Version: 3, VRID: 52, Priority: 120, Interval: 100 * time.Millisecond,
			Addrs: []netip.Addr{pktVIP110, pktVIP111}, Src: pktKeepalived, Dst: pktGroup},
	},
	{
		name:    "v3 multicast priority 0",
		pcap:    "keepalived-v3-multicast.pcap",
		payload: "31340002 000aa74c c000026e c000026f",
		src:     "192.0.2.1", dst: "224.0.0.18",
		want: Advert{Version: 3, VRID: 52, Priority: 0, Interval: 100 * time.Millisecond,
			Addrs: []netip.Addr{pktVIP110, pktVIP111}, Src: pktKeepalived, Dst: pktGroup},
	},
	{
		// v3-unicast.conf: version 3, VRID 53, priority 100, advert_int 1,
		// unicast_src_ip 192.0.2.1, unicast_peer 192.0.2.2. The
		// pseudo-header holds the peer, not the group.
		name:    "v3 unicast",
		pcap:    "keepalived-v3-unicast.pcap",
		payload: "31356401 0064236c c0000278",
		src:     "192.0.2.1", dst: "192.0.2.2",
		want: Advert{Version: 3, VRID: 53, Priority: 100, Interval: time.Second,
			Addrs: []netip.Addr{pktVIP120}, Src: pktKeepalived, Dst: pktPeer},
	},
	{
		name:    "v3 unicast priority 0",
		pcap:    "keepalived-v3-unicast.pcap",
		payload: "31350001 0064876c c0000278",
		src:     "192.0.2.1", dst: "192.0.2.2",
		want: Advert{Version: 3, VRID: 53, Priority: 0, Interval: time.Second,
			Addrs: []netip.Addr{pktVIP120}, Src: pktKeepalived, Dst: pktPeer},
	},
	{
		// v3-unicast-old-checksum.conf: as v3-unicast.conf with VRID 54
		// and old_unicast_checksum. Sent to 192.0.2.2, but the checksum
		// covers the group: only a receiver that retries with Dst set to
		// the group accepts it (see TestOldUnicastChecksum).
		name:    "v3 unicast old checksum, retried with the group",
		pcap:    "keepalived-v3-unicast-old-checksum.pcap",
		payload: "31366401 0064055b c0000278",
		src:     "192.0.2.1", dst: "224.0.0.18",
		want: Advert{Version: 3, VRID: 54, Priority: 100, Interval: time.Second,
			Addrs: []netip.Addr{pktVIP120}, Src: pktKeepalived, Dst: pktGroup},
	},
}

func pktHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// pktDiff returns "" when want and got are deeply equal, else the fields
// that differ as (-want +got) lines.
func pktDiff(want, got any) string {
	if reflect.DeepEqual(want, got) {
		return ""
	}
	w, g := reflect.ValueOf(want), reflect.ValueOf(got)
	if w.Kind() != reflect.Struct || w.Type() != g.Type() {
		return fmt.Sprintf("-%#v\n+%#v\n", want, got)
	}
	var sb strings.Builder
	for i := range w.NumField() {
		wf, gf := w.Field(i).Interface(), g.Field(i).Interface()
		if !reflect.DeepEqual(wf, gf) {
			name := w.Type().Field(i).Name
			fmt.Fprintf(&sb, "-%s: %v\n+%s: %v\n", name, wf, name, gf)
		}
	}
	return sb.String()
}

func TestUnmarshalKeepalived(t *testing.T) {
	for _, v := range pktVectors {
		t.Run(v.name, func(t *testing.T) {
			b := pktHex(t, v.payload)
			got := Advert{Src: netip.MustParseAddr(v.src), Dst: netip.MustParseAddr(v.dst)}
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if d := pktDiff(v.want, got); d != "" {
				t.Errorf("UnmarshalBinary (-want +got):\n%s", d)
			}
		})
	}
}

func TestMarshalKeepalived(t *testing.T) {
	for _, v := range pktVectors {
		t.Run(v.name, func(t *testing.T) {
			want := pktHex(t, v.payload)
			got, err := v.want.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if !bytes.Equal(want, got) {
				t.Errorf("MarshalBinary (-want +got):\n-%x\n+%x", want, got)
			}
			// The checksum, computed from scratch, is keepalived's.
			wantSum, gotSum := binary.BigEndian.Uint16(want[6:]), binary.BigEndian.Uint16(got[6:])
			if wantSum != gotSum {
				t.Errorf("checksum = %#04x, keepalived sent %#04x", gotSum, wantSum)
			}
		})
	}
}

func TestAppendBinary(t *testing.T) {
	a := pktVectors[0].want
	prefix := []byte("ip header")
	got, err := a.AppendBinary(bytes.Clone(prefix))
	if err != nil {
		t.Fatalf("AppendBinary: %v", err)
	}
	want := append(bytes.Clone(prefix), pktHex(t, pktVectors[0].payload)...)
	if !bytes.Equal(want, got) {
		t.Errorf("AppendBinary (-want +got):\n-%x\n+%x", want, got)
	}
	bad := Advert{Version: 4}
	got, err = bad.AppendBinary(prefix)
	if err == nil || !bytes.Equal(got, prefix) {
		t.Errorf("AppendBinary(invalid) = %q, %v; want the input unchanged and an error", got, err)
	}
}

// TestOldUnicastChecksum: keepalived up to 1.3.6, or configured with
// old_unicast_checksum, sums the group instead of the unicast destination.
// With the real destination the advert fails; with the group it passes.
func TestOldUnicastChecksum(t *testing.T) {
	b := pktHex(t, "31366401 0064055b c0000278")
	a := Advert{Src: pktKeepalived, Dst: pktPeer}
	err := a.UnmarshalBinary(b)
	if !errors.Is(err, errMalformed) || dropReasonOf(err) != BadChecksum {
		t.Fatalf("UnmarshalBinary with the real destination = %v, want a bad_checksum error", err)
	}
	a.Dst = pktGroup
	if err := a.UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary with the group as Dst: %v", err)
	}
}

// TestChecksumNoPseudo covers the v3 form without pseudo-header that Cisco,
// Juniper and keepalived's v3_checksum_as_v2 send.
func TestChecksumNoPseudo(t *testing.T) {
	in := Advert{Version: 3, VRID: 7, Priority: 200, Interval: 40950 * time.Millisecond,
		Addrs: []netip.Addr{pktVIP100}, ChecksumNoPseudo: true}
	b, err := in.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary without Src and Dst: %v", err)
	}
	if fold(sum16(0, b)) != 0xffff {
		t.Errorf("checksum of %x does not verify without pseudo-header", b)
	}
	got := Advert{Src: pktKeepalived, Dst: pktGroup}
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	want := in
	want.Src, want.Dst = pktKeepalived, pktGroup
	if d := pktDiff(want, got); d != "" {
		t.Errorf("UnmarshalBinary (-want +got):\n%s", d)
	}

	// The RFC form decodes with ChecksumNoPseudo false.
	in.ChecksumNoPseudo = false
	in.Src, in.Dst = pktKeepalived, pktGroup
	b, err = in.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	got = Advert{Src: pktKeepalived, Dst: pktGroup, ChecksumNoPseudo: true}
	if err := got.UnmarshalBinary(b); err != nil || got.ChecksumNoPseudo {
		t.Errorf("UnmarshalBinary of the RFC form: err %v, ChecksumNoPseudo %v; want nil, false", err, got.ChecksumNoPseudo)
	}
}

func TestIPv4MappedSrcDst(t *testing.T) {
	v := pktVectors[4] // v3 unicast
	a := Advert{Src: netip.AddrFrom16(pktKeepalived.As16()), Dst: netip.AddrFrom16(pktPeer.As16())}
	if err := a.UnmarshalBinary(pktHex(t, v.payload)); err != nil {
		t.Fatalf("UnmarshalBinary with IPv4-mapped Src and Dst: %v", err)
	}
	a.Addrs = []netip.Addr{netip.AddrFrom16(pktVIP120.As16())}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary with IPv4-mapped addresses: %v", err)
	}
	if want := pktHex(t, v.payload); !bytes.Equal(want, b) {
		t.Errorf("MarshalBinary (-want +got):\n-%x\n+%x", want, b)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		dst     netip.Addr // default group
		eof     bool       // io.ErrUnexpectedEOF expected too
		reason  DropReason
	}{
		{name: "empty", payload: "", eof: true, reason: BadLength},
		{name: "short header", payload: "313478 02000a", eof: true, reason: BadLength},
		{name: "v3 missing address", payload: "31347802 000a2f4c c000026e", eof: true, reason: BadLength},
		{name: "v2 missing auth data", payload: "21339603 01019318 c0000264 c0000265 c0000266", eof: true, reason: BadLength},
		{name: "v2 one byte short", payload: "21339603 01019318 c0000264 c0000265 c0000266 73656372 657431", eof: true, reason: BadLength},
		{name: "count above length", payload: "31347803 000a2f4c c000026e c000026f", eof: true, reason: BadLength},
		{name: "count below length", payload: "31347801 000a2f4c c000026e c000026f", reason: BadLength},
		{name: "trailing byte", payload: "31356401 0064236c c0000278 00", dst: pktPeer, reason: BadLength},
		{name: "v2 trailing bytes", payload: "21339603 01019318 c0000264 c0000265 c0000266 73656372 65743132 0000", reason: BadLength},
		{name: "version 1", payload: "11347802 000a2f4c c000026e c000026f", reason: BadVersion},
		{name: "version 4", payload: "41347802 000a2f4c c000026e c000026f", reason: BadVersion},
		{name: "version 0", payload: "00000000 00000000", reason: BadVersion},
		{name: "type 0", payload: "30347802 000a2f4c c000026e c000026f", reason: BadType},
		{name: "type 2", payload: "32347802 000a2f4c c000026e c000026f", reason: BadType},
		{name: "v2 bad checksum", payload: "21339603 01019319 c0000264 c0000265 c0000266 73656372 65743132", reason: BadChecksum},
		{name: "v2 altered password", payload: "21339603 01019318 c0000264 c0000265 c0000266 73656372 65743133", reason: BadChecksum},
		{name: "v3 bad checksum", payload: "31347802 000a2f4d c000026e c000026f", reason: BadChecksum},
		{name: "v3 wrong destination", payload: "31356401 0064236c c0000278", dst: pktGroup, reason: BadChecksum},
		{name: "v3 zero checksum", payload: "31347802 000a0000 c000026e c000026f", reason: BadChecksum},
		// The checksums below are valid: the field checks come after.
		{name: "v2 zero interval", payload: "21339603 01009319 c0000264 c0000265 c0000266 73656372 65743132", reason: BadInterval},
		{name: "v3 zero interval", payload: "31347802 00002f56 c000026e c000026f", reason: BadInterval},
		{name: "v3 zero interval, reserved bits set", payload: "31347802 f0003f55 c000026e c000026f", reason: BadInterval},
		{name: "v2 zero VRID", payload: "21009603 0101934b c0000264 c0000265 c0000266 73656372 65743132", reason: BadVRID},
		{name: "v3 zero VRID", payload: "31007802 000a2f80 c000026e c000026f", reason: BadVRID},
		{name: "v2 auth type 2", payload: "21339603 02019218 c0000264 c0000265 c0000266 73656372 65743132", reason: BadAuth},
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

func TestPassword(t *testing.T) {
	tests := []struct {
		in   string
		want [8]byte
	}{
		{"", [8]byte{}},
		{"abc", [8]byte{'a', 'b', 'c'}},
		{"secret12", pktSecret},
		{"secret1234", pktSecret}, // keepalived truncates to 8
		{"pässwort", [8]byte{'p', 0xc3, 0xa4, 's', 's', 'w', 'o', 'r'}},
	}
	for _, tc := range tests {
		if got := Password(tc.in); got != tc.want {
			t.Errorf("Password(%q) (-want +got):\n-%q\n+%q", tc.in, tc.want, got)
		}
	}
}

// pktCaptured is an IPv4 packet read from a capture.
type pktCaptured struct {
	src, dst netip.Addr
	ttl      uint8
	payload  []byte
}

// pktReadPcap reads the IPv4 packets of a little-endian pcap file with
// Ethernet framing, as tcpdump writes it on a veth.
func pktReadPcap(t *testing.T, path string) []pktCaptured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if len(data) < 24 || le.Uint32(data) != 0xa1b2c3d4 || le.Uint32(data[20:]) != 1 {
		t.Fatalf("%s: not a little-endian Ethernet pcap", path)
	}
	var pkts []pktCaptured
	for p := data[24:]; len(p) > 0; {
		if len(p) < 16 || len(p) < 16+int(le.Uint32(p[8:])) {
			t.Fatalf("%s: truncated record", path)
		}
		frame := p[16 : 16+le.Uint32(p[8:])]
		p = p[16+len(frame):]
		if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
			t.Fatalf("%s: not an IPv4 frame: %x", path, frame)
		}
		ip := frame[14:]
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if ip[9] != ipProtoVRRP || total > len(ip) || total < ihl {
			t.Fatalf("%s: not a whole VRRP packet: %x", path, ip)
		}
		pkts = append(pkts, pktCaptured{
			src:     netip.AddrFrom4([4]byte(ip[12:16])),
			dst:     netip.AddrFrom4([4]byte(ip[16:20])),
			ttl:     ip[8],
			payload: ip[ihl:total],
		})
	}
	return pkts
}

// TestVectorsMatchCaptures ties the literal table to the captures: every
// vector is in its capture with the same addresses, and every packet of the
// captures decodes and re-encodes to its own bytes.
func TestVectorsMatchCaptures(t *testing.T) {
	captures := map[string][]pktCaptured{}
	for _, v := range pktVectors {
		if captures[v.pcap] == nil {
			captures[v.pcap] = pktReadPcap(t, filepath.Join("testdata", v.pcap))
		}
		want := pktHex(t, v.payload)
		found := false
		for _, p := range captures[v.pcap] {
			found = found || bytes.Equal(p.payload, want) && p.src.String() == v.src
		}
		if !found {
			t.Errorf("%s: payload %x from %s not in testdata/%s", v.name, want, v.src, v.pcap)
		}
	}
	for name, pkts := range captures {
		for i, p := range pkts {
			if p.ttl != 255 {
				t.Errorf("%s packet %d: TTL %d, want 255", name, i+1, p.ttl)
			}
			a := Advert{Src: p.src, Dst: p.dst}
			if strings.Contains(name, "old-checksum") {
				a.Dst = pktGroup
			}
			if err := a.UnmarshalBinary(p.payload); err != nil {
				t.Errorf("%s packet %d: %v", name, i+1, err)
				continue
			}
			if b := pktMarshal(t, a); !bytes.Equal(b, p.payload) {
				t.Errorf("%s packet %d re-encoded (-want +got):\n-%x\n+%x", name, i+1, p.payload, b)
			}
		}
	}
}

// TestTsharkAcceptsMarshalled writes adverts this package encodes into a
// pcap and has Wireshark's dissector check them: an implementation other
// than ours and keepalived's. It needs tshark: CI installs it, and with
// CI=true its absence is a failure; elsewhere the test skips without it.
func TestTsharkAcceptsMarshalled(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		lab.Skip(t, "tshark not installed")
	}
	nopseudo := Advert{Version: 3, VRID: 9, Priority: 1, Interval: 30 * time.Millisecond,
		Addrs: []netip.Addr{pktVIP100}, Src: pktKeepalived, Dst: pktGroup, ChecksumNoPseudo: true}
	tests := []struct {
		a      Advert
		option string // a Wireshark preference
	}{
		{a: pktVectors[0].want},
		{a: Advert{Version: 2, VRID: 200, Priority: 255, Interval: 255 * time.Second, Addrs: []netip.Addr{pktVIP111}, Src: pktPeer, Dst: pktGroup}},
		{a: pktVectors[2].want},
		{a: pktVectors[4].want},
		{a: Advert{Version: 3, VRID: 1, Priority: 254, Interval: 40950 * time.Millisecond, Addrs: []netip.Addr{pktVIP100, pktVIP101, pktVIP102, pktVIP110}, Src: pktPeer, Dst: pktKeepalived}},
		{a: nopseudo, option: "vrrp.v3_checksum_as_in_v2:TRUE"},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "advert.pcap")
			pktWritePcap(t, path, tc.a, pktMarshal(t, tc.a))
			args := []string{"-r", path, "-T", "fields", "-E", "separator=,",
				"-e", "vrrp.version", "-e", "vrrp.virt_rtr_id", "-e", "vrrp.prio",
				"-e", "vrrp.addr_count", "-e", "vrrp.checksum.status"}
			if tc.option != "" {
				args = append(args, "-o", tc.option)
			}
			out, err := exec.Command(tshark, args...).Output()
			if err != nil {
				t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
			}
			// vrrp.checksum.status 1 is "Good".
			want := fmt.Sprintf("%d,%d,%d,%d,1", tc.a.Version, tc.a.VRID, tc.a.Priority, len(tc.a.Addrs))
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("tshark fields (-want +got):\n-%s\n+%s", want, got)
			}
		})
	}
}

// pktWritePcap writes one IPv4 packet carrying payload from a.Src to a.Dst,
// as a pcap file of link type 228 (raw IPv4).
func pktWritePcap(t *testing.T, path string, a Advert, payload []byte) {
	t.Helper()
	ip := make([]byte, 20, 20+len(payload))
	ip[0], ip[1] = 0x45, 0xc0
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(payload)))
	ip[8], ip[9] = 255, ipProtoVRRP
	src, dst := a.Src.As4(), a.Dst.As4()
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum16(0, ip)))
	ip = append(ip, payload...)

	le := binary.LittleEndian
	var f []byte
	f = le.AppendUint32(f, 0xa1b2c3d4)
	f = le.AppendUint16(f, 2)
	f = le.AppendUint16(f, 4)
	f = le.AppendUint32(f, 0) // time zone
	f = le.AppendUint32(f, 0) // accuracy
	f = le.AppendUint32(f, 65535)
	f = le.AppendUint32(f, 228)
	f = le.AppendUint32(f, 0) // seconds
	f = le.AppendUint32(f, 0) // microseconds
	f = le.AppendUint32(f, uint32(len(ip)))
	f = le.AppendUint32(f, uint32(len(ip)))
	f = append(f, ip...)
	if err := os.WriteFile(path, f, 0o644); err != nil {
		t.Fatal(err)
	}
}
