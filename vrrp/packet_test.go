package vrrp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
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
	{
		// v6-multicast.conf: VRRPv3 over IPv6, VRID 61, priority 120,
		// advert_int 0.1, two VIPs: from the link-local address to
		// ff02::12, the VIPs alone in the list (no link-local first), the
		// IPv6 pseudo-header in the checksum.
		name:    "v3 IPv6 multicast",
		pcap:    "keepalived-v6-multicast.pcap",
		payload: "313d7802 000a5b96 fd000077 00000000 00000000 00000100 fd000077 00000000 00000000 00000101",
		src:     "fe80::1", dst: "ff02::12",
		want: Advert{Version: 3, VRID: 61, Priority: 120, Interval: 100 * time.Millisecond,
			Addrs: []netip.Addr{pkt6VIP, pkt6VIP2}, Src: pkt6Src, Dst: pkt6Group},
	},
	{
		name:    "v3 IPv6 multicast priority 0",
		pcap:    "keepalived-v6-multicast.pcap",
		payload: "313d0002 000ad396 fd000077 00000000 00000000 00000100 fd000077 00000000 00000000 00000101",
		src:     "fe80::1", dst: "ff02::12",
		want: Advert{Version: 3, VRID: 61, Priority: 0, Interval: 100 * time.Millisecond,
			Addrs: []netip.Addr{pkt6VIP, pkt6VIP2}, Src: pkt6Src, Dst: pkt6Group},
	},
	{
		// v6-unicast.conf: VRID 62, priority 100, advert_int 1, from
		// fe80::1 to the peer fe80::2, whose address the pseudo-header holds.
		name:    "v3 IPv6 unicast",
		pcap:    "keepalived-v6-unicast.pcap",
		payload: "313e6401 00646e47 fd000077 00000000 00000000 00000110",
		src:     "fe80::1", dst: "fe80::2",
		want: Advert{Version: 3, VRID: 62, Priority: 100, Interval: time.Second,
			Addrs: []netip.Addr{pkt6VIP110}, Src: pkt6Src, Dst: pkt6Peer},
	},
	{
		name:    "v3 IPv6 unicast priority 0",
		pcap:    "keepalived-v6-unicast.pcap",
		payload: "313e0001 0064d247 fd000077 00000000 00000000 00000110",
		src:     "fe80::1", dst: "fe80::2",
		want: Advert{Version: 3, VRID: 62, Priority: 0, Interval: time.Second,
			Addrs: []netip.Addr{pkt6VIP110}, Src: pkt6Src, Dst: pkt6Peer},
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
	if !errors.Is(err, errMalformed) || dropReasonOf(err) != badChecksum {
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
		if got := authPassword(tc.in); got != tc.want {
			t.Errorf("Password(%q) (-want +got):\n-%q\n+%q", tc.in, tc.want, got)
		}
	}
}
