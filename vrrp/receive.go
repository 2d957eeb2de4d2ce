package vrrp

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// The receive checks: what RFC 5798 §7.1 and RFC 3768 §7.1 ("Receiving
// VRRP Packets") ask of a received advert, as keepalived 2.2 applies them
// (vrrp_dispatcher_read and vrrp_check_packet). They are pure functions of
// the packet, the configuration and our primary address, so that one table
// test covers every reason without a socket.
//
// The order, and why:
//
//  1. WrongInterface: the packet did not arrive on our interface. The
//     socket is bound to the interface, so this is a second line of
//     defence.
//  2. OwnPacket: its source is our primary address. Multicast loopback is
//     off, so on a sane LAN this means a duplicate address or a reflecting
//     switch; counted, logged at debug level only.
//  3. OtherVRID: the VRID byte is not ours (and not 0, which the codec
//     reports as BadVRID). keepalived looks the VRID up before anything
//     else; a shared LAN carries other routers' adverts, which must not be
//     reported as errors, whatever their TTL, destination or checksum form.
//  4. WrongDestination: multicast mode wants our group as destination,
//     unicast mode a unicast one (keepalived: "Expected multicast packet
//     but received unicast packet" and the reverse).
//  5. BadTTL: multicast mode only, TTL must be 255 (RFC 5798 §7.1).
//     keepalived skips this check for unicast peers, which may be routed
//     hops away, and so do we.
//  6. NotPeer: unicast mode only, the source must be a configured peer.
//     (keepalived checks this only with check_unicast_src; we always do:
//     whoever may send to us is exactly the peer list.)
//  7. The codec (Advert.UnmarshalBinary): length, version 2 or 3, type,
//     checksum, VRID 0, v2 auth type above 1, interval 0, each with its
//     own dropReason. A v3 checksum is tried with the real destination in
//     the pseudo-header (RFC 5798 §5.2.8), then, in unicast mode only, with
//     the group, as keepalived up to 1.3.6 and old_unicast_checksum send
//     it. The codec itself also accepts a v3 checksum without
//     pseudo-header (Cisco, Juniper, v3_checksum_as_v2).
//  8. BadVersion: not our version (RFC 5798 §7.1, RFC 3768 §7.1).
//  9. BadAuth, v2 only: auth type or password not ours (RFC 3768 §7.1
//     via RFC 2338 §7.1; keepalived logs "received an invalid passwd").
//  10. IntervalMismatch, v2 only: an advert interval that is not ours
//     (RFC 3768 §7.1 MUST; keepalived drops it too).
//
// Accepted adverts may still differ from us in ways that are logged, not
// dropped (rxNote): a v3 interval that is not ours (RFC 5798 §6.4.2: a
// backup adopts the master's, here only once three adverts in a row from
// the same master carry it, so one forged advert cannot stretch the down
// timer; see timers.go), an address list that is not ours (RFC 5798
// §7.1 makes the check a MAY; keepalived outside strict mode accepts it),
// and the two non-RFC v3 checksum forms.

// rxPacket is one received IPv4 packet of protocol 112.
type rxPacket struct {
	ifIndex  int        // interface it arrived on (IP_PKTINFO)
	ttl      int        // from the IPv4 header
	src, dst netip.Addr // from the IPv4 header
	payload  []byte     // the VRRP message
}

// rxRules is the configuration the receive checks compare a packet with.
// The primary address is passed apart: it changes, the rules do not.
type rxRules struct {
	ifIndex  int
	vrid     uint8
	version  int
	group    netip.Addr   // the group; in unicast mode, old v3 checksums' Dst
	peers    []netip.Addr // unicast peers; empty means multicast mode
	authType uint8        // v2: 1 with a password, else 0
	authData [8]byte      // v2: Password(AuthPass)
	interval time.Duration
	vips     []netip.Addr
}

func (r *rxRules) unicast() bool { return len(r.peers) > 0 }

// ipv4HeaderLen is the length of an IPv4 header without options.
const ipv4HeaderLen = 20

// parseIPv4 splits what a raw IPv4 socket returns on Linux, the IP header
// followed by the payload, into an rxPacket. A header that is cut short,
// not IPv4, or whose total length is not what arrived is dropped for
// BadLength, as keepalived drops an ip_tot_len mismatch.
func parseIPv4(b []byte, ifIndex int) (rxPacket, error) {
	if len(b) < ipv4HeaderLen || b[0]>>4 != 4 {
		return rxPacket{}, rejected(badLength, "%d bytes are no IPv4 packet", len(b))
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < ipv4HeaderLen || ihl > len(b) || total != len(b) {
		return rxPacket{}, rejected(badLength, "IPv4 header length %d, total length %d, but %d bytes arrived",
			ihl, total, len(b))
	}
	return rxPacket{
		ifIndex: ifIndex,
		ttl:     int(b[8]),
		src:     netip.AddrFrom4([4]byte(b[12:16])),
		dst:     netip.AddrFrom4([4]byte(b[16:20])),
		payload: b[ihl:],
	}, nil
}

// check applies the receive checks, in the order documented above, to p.
// It returns the decoded advert, or nil and an error whose dropReason
// (dropReasonOf) says why p is dropped. primary is our primary address.
func (r *rxRules) check(p rxPacket, primary netip.Addr) (*Advert, error) {
	if p.ifIndex != r.ifIndex {
		return nil, rejected(wrongInterface, "arrived on interface index %d, want %d", p.ifIndex, r.ifIndex)
	}
	if primary.IsValid() && p.src == primary {
		return nil, rejected(ownPacket, "source %v is our primary address", p.src)
	}
	if len(p.payload) >= 2 && p.payload[1] != 0 && p.payload[1] != r.vrid {
		return nil, rejected(otherVRID, "VRID %d, ours is %d", p.payload[1], r.vrid)
	}
	if err := r.checkPath(p); err != nil {
		return nil, err
	}
	a, err := r.decode(p)
	if err != nil {
		return nil, err
	}
	if err := r.checkFields(a); err != nil {
		return nil, err
	}
	return a, nil
}

// checkPath checks how the packet travelled: destination, TTL and, in
// unicast mode, sender.
func (r *rxRules) checkPath(p rxPacket) error {
	if !r.unicast() {
		if p.dst != r.group {
			return rejected(wrongDestination, "multicast mode: destination %v, want the group %v", p.dst, r.group)
		}
		if p.ttl != 255 {
			return rejected(badTTL, "TTL %d, want 255 (RFC 5798 §7.1)", p.ttl)
		}
		return nil
	}
	if p.dst.IsMulticast() {
		return rejected(wrongDestination, "unicast mode: destination %v is multicast", p.dst)
	}
	if !slices.Contains(r.peers, p.src) {
		return rejected(notPeer, "unicast mode: source %v is not a configured peer", p.src)
	}
	return nil
}

// decode runs the codec. In unicast mode a v3 message whose checksum fails
// with the real destination is tried again with the group in the
// pseudo-header (see Advert.Src and Dst).
func (r *rxRules) decode(p rxPacket) (*Advert, error) {
	a := &Advert{Src: p.src, Dst: p.dst}
	err := a.UnmarshalBinary(p.payload)
	if err != nil && r.unicast() && dropReasonOf(err) == badChecksum && p.dst != r.group {
		old := &Advert{Src: p.src, Dst: r.group}
		if old.UnmarshalBinary(p.payload) == nil {
			return old, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// checkFields compares a decoded advert with the configuration.
func (r *rxRules) checkFields(a *Advert) error {
	if a.Version != r.version {
		return rejected(badVersion, "version %d, ours is %d", a.Version, r.version)
	}
	if a.Version != 2 {
		return nil
	}
	if a.AuthType != r.authType {
		return rejected(badAuth, "auth type %d, ours is %d (RFC 3768 §7.1)", a.AuthType, r.authType)
	}
	if r.authType == 1 && subtle.ConstantTimeCompare(a.AuthData[:], r.authData[:]) != 1 {
		return rejected(badAuth, "invalid password (RFC 3768 §7.1)")
	}
	if a.Interval != r.interval {
		return rejected(intervalMismatch, "advert interval %v, ours is %v (RFC 3768 §7.1)", a.Interval, r.interval)
	}
	return nil
}

// rxNote is a way an accepted advert differs from our configuration: worth
// a rate-limited log line, not a drop.
type rxNote int

const (
	// noteInterval: a v3 Max Adver Int other than ours. A backup adopts
	// the master's (RFC 5798 §6.4.2) after three in a row, so it is
	// normal, but worth knowing.
	noteInterval rxNote = iota + 1
	// noteAddrs: an address list other than ours (RFC 5798 §7.1 MAY).
	noteAddrs
	// noteOldChecksum: a unicast v3 checksum over the group, as keepalived
	// up to 1.3.6 and with old_unicast_checksum sends it.
	noteOldChecksum
	// noteNoPseudo: a v3 checksum without the pseudo-header, as some Cisco
	// and Juniper routers and keepalived's v3_checksum_as_v2 send it.
	noteNoPseudo
)

// String returns the note as a snake_case word, also its rate-limit key.
func (n rxNote) String() string {
	switch n {
	case noteInterval:
		return "interval_differs"
	case noteAddrs:
		return "addrs_differ"
	case noteOldChecksum:
		return "old_unicast_checksum"
	case noteNoPseudo:
		return "checksum_without_pseudo_header"
	}
	return fmt.Sprintf("rxNote(%d)", int(n))
}

// level is the log level of a note: only a different address list hints
// at a configuration mistake.
func (n rxNote) level() slog.Level {
	if n == noteAddrs {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// notes returns the ways the accepted advert a, received as p, differs from
// the configuration.
func (r *rxRules) notes(a *Advert, p rxPacket) []rxNote {
	var n []rxNote
	if a.Version == 3 && a.Interval != r.interval {
		n = append(n, noteInterval)
	}
	if !sameAddrs(a.Addrs, r.vips) {
		n = append(n, noteAddrs)
	}
	if a.Version == 3 && a.Dst != p.dst {
		n = append(n, noteOldChecksum)
	}
	if a.Version == 3 && a.ChecksumNoPseudo {
		n = append(n, noteNoPseudo)
	}
	return n
}

// sameAddrs reports whether got holds the same addresses as want, in any
// order: keepalived compares the count, then looks each of its own
// addresses up in the advert.
func sameAddrs(got, want []netip.Addr) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// dropLevel is the log level of a drop. Other routers' adverts, our own
// and packets for another interface or group are routine on a shared LAN;
// the rest point at a misconfigured or broken peer.
func dropLevel(r dropReason) slog.Level {
	switch r {
	case otherVRID, ownPacket, wrongInterface, wrongDestination:
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// rejected is the error for a packet the receive checks drop for reason r.
func rejected(r dropReason, format string, args ...any) error {
	return &dropError{reason: r, msg: "advert dropped: " + fmt.Sprintf(format, args...)}
}
