package vrrp

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var (
	pkt6Src    = netip.MustParseAddr("fe80::1")
	pkt6Peer   = netip.MustParseAddr("fe80::2")
	pkt6Group  = netip.MustParseAddr("ff02::12")
	pkt6VIP    = netip.MustParseAddr("fd00:77::100")
	pkt6VIP2   = netip.MustParseAddr("fd00:77::101")
	pkt6VIP110 = netip.MustParseAddr("fd00:77::110")
)

// checksum6 computes the RFC 5798 §5.2.8 checksum of msg by the text of
// RFC 8200 §8.1, independently of the codec: the pseudo-header laid out
// as bytes (source, destination, 32-bit length, 3 zero bytes, next header
// 112), then the message with its checksum field zero.
func checksum6(src, dst netip.Addr, msg []byte) uint16 {
	var ph []byte
	s, d := src.As16(), dst.As16()
	ph = append(ph, s[:]...)
	ph = append(ph, d[:]...)
	ph = binary.BigEndian.AppendUint32(ph, uint32(len(msg)))
	ph = append(ph, 0, 0, 0, 112)
	m := append([]byte(nil), msg...)
	m[6], m[7] = 0, 0
	all := append(ph, m...)
	var sum uint32
	for i := 0; i+1 < len(all); i += 2 {
		sum += uint32(all[i])<<8 | uint32(all[i+1])
	}
	if len(all)%2 == 1 {
		sum += uint32(all[len(all)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

func TestIPv6Marshal(t *testing.T) {
	a := Advert{Version: 3, VRID: 61, Priority: 150, Interval: 100 * time.Millisecond,
		Addrs: []netip.Addr{pkt6VIP, pkt6VIP2}, Src: pkt6Src, Dst: pkt6Group}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := pktHex(t, "313d9602 000a0000"+
		"fd000077 00000000 00000000 00000100"+
		"fd000077 00000000 00000000 00000101")
	binary.BigEndian.PutUint16(want[6:], checksum6(pkt6Src, pkt6Group, want))
	if string(b) != string(want) {
		t.Fatalf("IPv6 advert (-want +got):\n-%x\n+%x", want, b)
	}
	// It decodes to itself, with the same Src and Dst set.
	got := Advert{Src: pkt6Src, Dst: pkt6Group}
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if d := pktDiff(a, got); d != "" {
		t.Errorf("round trip: %s", d)
	}
}

func TestIPv6UnmarshalRules(t *testing.T) {
	good := Advert{Version: 3, VRID: 61, Priority: 100, Interval: time.Second,
		Addrs: []netip.Addr{pkt6VIP}, Src: pkt6Src, Dst: pkt6Group}
	msg := pktMarshal(t, good)
	tests := []struct {
		name     string
		src, dst netip.Addr
		edit     func(b []byte) []byte
		reason   dropReason // UnknownReason: accepted
	}{
		{"the RFC form", pkt6Src, pkt6Group, nil, unknownReason},
		{"checksum over another destination", pkt6Src, netip.MustParseAddr("ff02::13"), nil, badChecksum},
		{"checksum over another source", pkt6Peer, pkt6Group, nil, badChecksum},
		{"checksum without the pseudo-header is not accepted for IPv6", pkt6Src, pkt6Group, func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[6:], 0)
			binary.BigEndian.PutUint16(b[6:], ^fold(sum16(0, b)))
			return b
		}, badChecksum},
		{"v2 over IPv6", pkt6Src, pkt6Group, func(b []byte) []byte { b[0] = 0x21; return b }, badVersion},
		{"count says two, one address", pkt6Src, pkt6Group, func(b []byte) []byte { b[3] = 2; return b }, badLength},
		{"an IPv4-sized address list", pkt6Src, pkt6Group, func(b []byte) []byte { return b[:12] }, badLength},
		{"a trailing byte", pkt6Src, pkt6Group, func(b []byte) []byte { return append(b, 0) }, badLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := append([]byte(nil), msg...)
			if tt.edit != nil {
				b = tt.edit(b)
			}
			a := Advert{Src: tt.src, Dst: tt.dst}
			err := a.UnmarshalBinary(b)
			if tt.reason == unknownReason {
				if err != nil {
					t.Fatalf("dropped: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", a)
			}
			if dropReasonOf(err) != tt.reason {
				t.Errorf("error %v, want drop reason %s", err, tt.reason)
			}
		})
	}
}

func TestIPv6MarshalErrors(t *testing.T) {
	valid := Advert{Version: 3, VRID: 61, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{pkt6VIP}, Src: pkt6Src, Dst: pkt6Group}
	tests := []struct {
		name  string
		edit  func(a *Advert)
		field string
	}{
		{"v2", func(a *Advert) { a.Version = 2 }, "Version"},
		{"IPv4 address in the list", func(a *Advert) { a.Addrs = []netip.Addr{pkt6VIP, pktVIP100} }, "Addrs[1]"},
		{"IPv4-mapped address in the list", func(a *Advert) { a.Addrs = []netip.Addr{netip.AddrFrom16(pktVIP100.As16())} }, "Addrs[0]"},
		{"IPv4 destination", func(a *Advert) { a.Dst = pktGroup }, "Dst"},
		{"no pseudo-header", func(a *Advert) { a.ChecksumNoPseudo = true }, "ChecksumNoPseudo"},
		{"interval 5ms", func(a *Advert) { a.Interval = 5 * time.Millisecond }, "Interval"},
		{"VRID 0", func(a *Advert) { a.VRID = 0 }, "VRID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := valid
			tt.edit(&a)
			if _, err := a.MarshalBinary(); err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %v, want one naming %s", err, tt.field)
			}
		})
	}
	// 255 IPv6 addresses: 8 + 16×255 = 4088 bytes.
	many := valid
	many.Addrs = make([]netip.Addr, 255)
	for i := range many.Addrs {
		many.Addrs[i] = pkt6VIP
	}
	if b, err := many.MarshalBinary(); err != nil || len(b) != 4088 {
		t.Errorf("255 addresses: %d bytes, %v", len(b), err)
	}
}
