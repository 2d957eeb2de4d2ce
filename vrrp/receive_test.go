package vrrp

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	rxUs     = netip.MustParseAddr("10.0.0.1") // our primary address
	rxPeer   = netip.MustParseAddr("10.0.0.2") // a configured peer
	rxStray  = netip.MustParseAddr("10.0.0.3") // a host that is no peer
	rxGroup  = netip.MustParseAddr("224.0.0.18")
	rxGroup2 = netip.MustParseAddr("239.1.2.3")
	rxVIP1   = netip.MustParseAddr("10.0.0.100")
	rxVIP2   = netip.MustParseAddr("10.0.0.101")
)

const rxIfIndex = 2

// rxRulesFor returns the rules of a router with VRID 51, interval 1s and
// VIPs rxVIP1, rxVIP2; unicast to rxPeer if peers is true; with password
// "secret12" if pass is true (v2 only).
func rxRulesFor(version int, peers, pass bool) *rxRules {
	r := &rxRules{ifIndex: rxIfIndex, vrid: 51, version: version, group: rxGroup,
		interval: time.Second, vips: []netip.Addr{rxVIP1, rxVIP2}}
	if peers {
		r.peers = []netip.Addr{rxPeer}
	}
	if pass {
		r.authType, r.authData = 1, authPassword("secret12")
	}
	return r
}

// rxAdvert is the advert such a router's peer sends, from rxPeer to dst.
func rxAdvert(version int, dst netip.Addr, pass bool) Advert {
	a := Advert{Version: version, VRID: 51, Priority: 100, Interval: time.Second,
		Addrs: []netip.Addr{rxVIP1, rxVIP2}, Src: rxPeer, Dst: dst}
	if pass {
		a.AuthType, a.AuthData = 1, authPassword("secret12")
	}
	return a
}

// rxPkt encodes a as it arrives: on our interface with TTL 255, from a.Src
// to a.Dst, after edit (if any) has changed the advert's fields.
func rxPkt(t *testing.T, a Advert, edit func(*Advert)) rxPacket {
	t.Helper()
	if edit != nil {
		edit(&a)
	}
	return rxPacket{ifIndex: rxIfIndex, ttl: 255, src: a.Src, dst: a.Dst, payload: pktMarshal(t, a)}
}

// rxBytes changes byte i of p's payload to v and, if fix, recomputes the
// checksum for p's addresses, to build what MarshalBinary refuses to.
func rxBytes(p rxPacket, i int, v byte, fix bool) rxPacket {
	p.payload = slices.Clone(p.payload)
	p.payload[i] = v
	if fix {
		p.payload = pktWithChecksum(p.payload, p.src, p.dst)
	}
	return p
}

func TestReceiveChecks(t *testing.T) {
	v3m := rxAdvert(3, rxGroup, false)
	v3u := rxAdvert(3, rxUs, false)
	v2p := rxAdvert(2, rxGroup, true)
	v2n := rxAdvert(2, rxGroup, false)
	set := func(f func(*Advert)) func(*Advert) { return f }
	tests := []struct {
		name      string
		rules     *rxRules
		pkt       rxPacket
		wantDrop  dropReason // UnknownReason: accepted
		wantDst   netip.Addr // accepted: the Dst the checksum covered
		wantNotes []rxNote
	}{
		// Accepted.
		{name: "v3 multicast", rules: rxRulesFor(3, false, false), pkt: rxPkt(t, v3m, nil), wantDst: rxGroup},
		{name: "v3 priority 0", rules: rxRulesFor(3, false, false),
			pkt: rxPkt(t, v3m, set(func(a *Advert) { a.Priority = 0 })), wantDst: rxGroup},
		{name: "v3 addresses in another order", rules: rxRulesFor(3, false, false),
			pkt: rxPkt(t, v3m, set(func(a *Advert) { a.Addrs = []netip.Addr{rxVIP2, rxVIP1} })), wantDst: rxGroup},
		{name: "v3 other interval: logged, accepted", rules: rxRulesFor(3, false, false),
			pkt:     rxPkt(t, v3m, set(func(a *Advert) { a.Interval = 100 * time.Millisecond })),
			wantDst: rxGroup, wantNotes: []rxNote{noteInterval}},
		{name: "v3 other addresses: logged, accepted", rules: rxRulesFor(3, false, false),
			pkt:     rxPkt(t, v3m, set(func(a *Advert) { a.Addrs = []netip.Addr{rxVIP1} })),
			wantDst: rxGroup, wantNotes: []rxNote{noteAddrs}},
		{name: "v3 no addresses, as keepalived sends without VIPs", rules: rxRulesFor(3, false, false),
			pkt: rxPkt(t, v3m, set(func(a *Advert) { a.Addrs = nil })), wantDst: rxGroup, wantNotes: []rxNote{noteAddrs}},
		{name: "v3 checksum without pseudo-header", rules: rxRulesFor(3, false, false),
			pkt:     rxPkt(t, v3m, set(func(a *Advert) { a.ChecksumNoPseudo = true })),
			wantDst: rxGroup, wantNotes: []rxNote{noteNoPseudo}},
		{name: "v3 group of our own choosing", rules: func() *rxRules { r := rxRulesFor(3, false, false); r.group = rxGroup2; return r }(),
			pkt: rxPkt(t, rxAdvert(3, rxGroup2, false), nil), wantDst: rxGroup2},
		{name: "v3 unicast, real destination in the checksum", rules: rxRulesFor(3, true, false),
			pkt: rxPkt(t, v3u, nil), wantDst: rxUs},
		{name: "v3 unicast, old checksum over the group", rules: rxRulesFor(3, true, false),
			pkt: func() rxPacket {
				p := rxPkt(t, v3u, set(func(a *Advert) { a.Dst = rxGroup }))
				p.dst = rxUs
				return p
			}(),
			wantDst: rxGroup, wantNotes: []rxNote{noteOldChecksum}},
		{name: "unicast: TTL not checked, as keepalived", rules: rxRulesFor(3, true, false),
			pkt: func() rxPacket { p := rxPkt(t, v3u, nil); p.ttl = 1; return p }(), wantDst: rxUs},
		{name: "v2 password", rules: rxRulesFor(2, false, true), pkt: rxPkt(t, v2p, nil), wantDst: rxGroup},
		{name: "v2 password longer than 8, cut as keepalived does", rules: rxRulesFor(2, false, true),
			pkt: rxPkt(t, v2p, set(func(a *Advert) { a.AuthData = authPassword("secret12345") })), wantDst: rxGroup},
		{name: "v2 no auth: auth data ignored", rules: rxRulesFor(2, false, false),
			pkt: rxPkt(t, v2n, set(func(a *Advert) { a.AuthData = authPassword("junk") })), wantDst: rxGroup},
		{name: "v2 other addresses: logged, accepted", rules: rxRulesFor(2, false, true),
			pkt:     rxPkt(t, v2p, set(func(a *Advert) { a.Addrs = []netip.Addr{rxVIP1, rxStray} })),
			wantDst: rxGroup, wantNotes: []rxNote{noteAddrs}},
		{name: "v2 unicast", rules: rxRulesFor(2, true, true), pkt: rxPkt(t, rxAdvert(2, rxUs, true), nil), wantDst: rxUs},

		// Dropped, in the order the checks run.
		{name: "wrong interface", rules: rxRulesFor(3, false, false),
			pkt: func() rxPacket { p := rxPkt(t, v3m, nil); p.ifIndex = 3; return p }(), wantDrop: wrongInterface},
		{name: "no IP_PKTINFO", rules: rxRulesFor(3, false, false),
			pkt: func() rxPacket { p := rxPkt(t, v3m, nil); p.ifIndex = 0; return p }(), wantDrop: wrongInterface},
		{name: "own packet", rules: rxRulesFor(3, false, false),
			pkt: rxPkt(t, v3m, set(func(a *Advert) { a.Src = rxUs })), wantDrop: ownPacket},
		{name: "own packet, unicast", rules: rxRulesFor(3, true, false),
			pkt: rxPkt(t, v3u, set(func(a *Advert) { a.Src = rxUs })), wantDrop: ownPacket},
		{name: "other VRID", rules: rxRulesFor(3, false, false),
			pkt: rxPkt(t, v3m, set(func(a *Advert) { a.VRID = 52 })), wantDrop: otherVRID},
		{name: "other VRID wins over TTL and version", rules: rxRulesFor(3, false, false),
			pkt: func() rxPacket {
				p := rxPkt(t, v2n, set(func(a *Advert) { a.VRID = 52 }))
				p.ttl = 1
				return p
			}(), wantDrop: otherVRID},
		{name: "other VRID from a stray host, unicast", rules: rxRulesFor(3, true, false),
			pkt: rxPkt(t, v3u, set(func(a *Advert) { a.VRID = 9; a.Src = rxStray })), wantDrop: otherVRID},
		{name: "multicast mode: other group", rules: rxRulesFor(3, false, false),
			pkt: rxPkt(t, rxAdvert(3, rxGroup2, false), nil), wantDrop: wrongDestination},
		{name: "multicast mode: unicast packet", rules: rxRulesFor(3, false, false),
			pkt: rxPkt(t, v3u, nil), wantDrop: wrongDestination},
		{name: "unicast mode: multicast packet", rules: rxRulesFor(3, true, false),
			pkt: rxPkt(t, v3m, nil), wantDrop: wrongDestination},
		{name: "TTL 254", rules: rxRulesFor(3, false, false),
			pkt: func() rxPacket { p := rxPkt(t, v3m, nil); p.ttl = 254; return p }(), wantDrop: badTTL},
		{name: "TTL 1, v2", rules: rxRulesFor(2, false, true),
			pkt: func() rxPacket { p := rxPkt(t, v2p, nil); p.ttl = 1; return p }(), wantDrop: badTTL},
		{name: "unicast from a host that is no peer", rules: rxRulesFor(3, true, false),
			pkt: rxPkt(t, v3u, set(func(a *Advert) { a.Src = rxStray })), wantDrop: notPeer},
		{name: "truncated", rules: rxRulesFor(3, false, false),
			pkt: func() rxPacket { p := rxPkt(t, v3m, nil); p.payload = p.payload[:12]; return p }(), wantDrop: badLength},
		{name: "header only", rules: rxRulesFor(3, false, false),
			pkt: func() rxPacket { p := rxPkt(t, v3m, nil); p.payload = p.payload[:4]; return p }(), wantDrop: badLength},
		{name: "trailing bytes", rules: rxRulesFor(3, false, false),
			pkt: func() rxPacket {
				p := rxPkt(t, v3m, nil)
				p.payload = pktWithChecksum(append(p.payload, 0, 0, 0, 0), p.src, p.dst)
				return p
			}(), wantDrop: badLength},
		{name: "version 1 (codec)", rules: rxRulesFor(3, false, false),
			pkt: rxBytes(rxPkt(t, v3m, nil), 0, 0x11, true), wantDrop: badVersion},
		{name: "v2 advert, v3 router", rules: rxRulesFor(3, false, false),
			pkt: rxPkt(t, v2n, nil), wantDrop: badVersion},
		{name: "v3 advert, v2 router", rules: rxRulesFor(2, false, false),
			pkt: rxPkt(t, v3m, nil), wantDrop: badVersion},
		{name: "type 2", rules: rxRulesFor(3, false, false),
			pkt: rxBytes(rxPkt(t, v3m, nil), 0, 0x32, true), wantDrop: badType},
		{name: "bad checksum", rules: rxRulesFor(3, false, false),
			pkt: rxBytes(rxPkt(t, v3m, nil), 2, 101, false), wantDrop: badChecksum},
		{name: "bad checksum, v2", rules: rxRulesFor(2, false, true),
			pkt: rxBytes(rxPkt(t, v2p, nil), 2, 101, false), wantDrop: badChecksum},
		{name: "unicast: neither checksum form", rules: rxRulesFor(3, true, false),
			pkt: rxBytes(rxPkt(t, v3u, nil), 2, 101, false), wantDrop: badChecksum},
		{name: "multicast: old unicast form is no excuse", rules: rxRulesFor(3, false, false),
			pkt: func() rxPacket {
				p := rxPkt(t, v3m, set(func(a *Advert) { a.Dst = rxUs }))
				p.dst = rxGroup
				return p
			}(), wantDrop: badChecksum},
		{name: "VRID 0", rules: rxRulesFor(3, false, false),
			pkt: rxBytes(rxPkt(t, v3m, nil), 1, 0, true), wantDrop: badVRID},
		{name: "v2 auth type 2 (AH)", rules: rxRulesFor(2, false, true),
			pkt: rxBytes(rxPkt(t, v2p, nil), 4, 2, true), wantDrop: badAuth},
		{name: "v2 interval 0", rules: rxRulesFor(2, false, true),
			pkt: rxBytes(rxPkt(t, v2p, nil), 5, 0, true), wantDrop: badInterval},
		{name: "v3 interval 0", rules: rxRulesFor(3, false, false),
			pkt: rxBytes(rxBytes(rxPkt(t, v3m, nil), 4, 0, false), 5, 0, true), wantDrop: badInterval},
		{name: "v2 no auth, ours has a password", rules: rxRulesFor(2, false, true),
			pkt: rxPkt(t, v2n, nil), wantDrop: badAuth},
		{name: "v2 password, ours has none", rules: rxRulesFor(2, false, false),
			pkt: rxPkt(t, v2p, nil), wantDrop: badAuth},
		{name: "v2 wrong password", rules: rxRulesFor(2, false, true),
			pkt: rxPkt(t, v2p, set(func(a *Advert) { a.AuthData = authPassword("secret13") })), wantDrop: badAuth},
		{name: "v2 interval 2s, ours 1s", rules: rxRulesFor(2, false, true),
			pkt: rxPkt(t, v2p, set(func(a *Advert) { a.Interval = 2 * time.Second })), wantDrop: intervalMismatch},
	}
	covered := map[dropReason]bool{}
	for _, tc := range tests {
		covered[tc.wantDrop] = true
		t.Run(tc.name, func(t *testing.T) {
			a, err := tc.rules.check(tc.pkt, rxUs)
			if got := dropReasonOf(err); got != tc.wantDrop || (err == nil) != (a != nil) {
				t.Fatalf("check = %v, %v (reason %v); want reason %v", a, err, got, tc.wantDrop)
			}
			if err != nil {
				t.Logf("dropped: %v", err)
				return
			}
			if a.Src != tc.pkt.src || a.Dst != tc.wantDst || a.VRID != 51 {
				t.Errorf("accepted advert from %v to %v, VRID %d; want from %v to %v, VRID 51",
					a.Src, a.Dst, a.VRID, tc.pkt.src, tc.wantDst)
			}
			if got := tc.rules.notes(a, tc.pkt); !slices.Equal(got, tc.wantNotes) {
				t.Errorf("notes (-want +got):\n-%v\n+%v", tc.wantNotes, got)
			}
		})
	}
	// Every reason the receiver can give has a row; UnknownReason marks
	// the accepted rows. (A different address list is accepted and
	// logged, noteAddrs: RFC 5798 §7.1 makes that check a MAY.)
	for r := range numDropReasons {
		if !covered[r] {
			t.Errorf("no row drops a packet for %v", r)
		}
	}
}

// TestReceiveKeepalivedCaptures runs adverts captured from keepalived 2.2.7
// (the codec's test vectors) through the checks of a matching peer.
func TestReceiveKeepalivedCaptures(t *testing.T) {
	for _, v := range pktVectors {
		t.Run(v.name, func(t *testing.T) {
			w := v.want
			src, dst := netip.MustParseAddr(v.src), netip.MustParseAddr(v.dst)
			group, self := pktGroup, pktPeer // we are the capturing side
			if src.Is6() {
				group, self = pkt6Group, pkt6Peer
			}
			r := &rxRules{ifIndex: rxIfIndex, vrid: w.VRID, version: w.Version, group: group,
				interval: w.Interval, vips: w.Addrs, authType: w.AuthType, authData: w.AuthData}
			if !dst.IsMulticast() || w.VRID == 54 { // the unicast captures
				r.peers = []netip.Addr{src}
				dst = self
			}
			p := rxPacket{ifIndex: rxIfIndex, ttl: int(pktWantTTL(v.pcap)), src: src, dst: dst, payload: pktHex(t, v.payload)}
			a, err := r.check(p, self)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if d := pktDiff(w, *a); d != "" {
				t.Errorf("advert (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseIPv4(t *testing.T) {
	payload := []byte{0x31, 0x33, 0x64, 0x00, 0x00, 0x64, 0, 0}
	hdr := func(ihl int, total int) []byte {
		b := make([]byte, ihl*4, ihl*4+len(payload))
		b[0], b[1] = 0x40|byte(ihl), 0xc0
		binary.BigEndian.PutUint16(b[2:], uint16(total))
		b[8], b[9] = 255, ipProtoVRRP
		copy(b[12:], []byte{10, 0, 0, 2, 224, 0, 0, 18})
		return append(b, payload...)
	}
	good := rxPacket{ifIndex: 7, ttl: 255, src: rxPeer, dst: rxGroup, payload: payload}
	tests := []struct {
		name string
		b    []byte
		want rxPacket // zero: dropped for BadLength
	}{
		{"plain header", hdr(5, 28), good},
		{"header with options", hdr(6, 32), good},
		{"total length short", hdr(5, 27), rxPacket{}},
		{"total length long", hdr(5, 29), rxPacket{}},
		{"header length 4", hdr(4, 24), rxPacket{}},
		{"header longer than the packet", hdr(15, 28)[:28], rxPacket{}},
		{"IPv6", append([]byte{0x60}, hdr(5, 28)[1:]...), rxPacket{}},
		{"short", hdr(5, 28)[:19], rxPacket{}},
		{"empty", nil, rxPacket{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseIPv4(tc.b, 7)
			if tc.want.payload == nil {
				if dropReasonOf(err) != badLength {
					t.Errorf("parseIPv4 = %+v, %v; want a bad_length drop", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseIPv4: %v", err)
			}
			if d := pktDiff(tc.want, got); d != "" {
				t.Errorf("parseIPv4 (-want +got):\n%s", d)
			}
		})
	}
}
