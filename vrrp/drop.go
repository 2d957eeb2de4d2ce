package vrrp

import (
	"errors"
	"strconv"
	"sync/atomic"
)

// dropReason says why a received advertisement was dropped. The codec
// (UnmarshalBinary) reports the reasons that need nothing but the bytes and
// the IP addresses; the receiver reports the ones that need the
// configuration or the socket's control message. Each reason's String is a
// snake_case word fit for a metrics label.
type dropReason int

// The reasons an advertisement is dropped, after RFC 5798 §7.1 and RFC 3768
// §7.1 ("Receiving VRRP Packets") and keepalived's own checks.
const (
	// unknownReason is the zero dropReason: the error did not come from
	// this package's checks.
	unknownReason dropReason = iota
	// badLength: the message is shorter or longer than its address count
	// says (codec). keepalived drops trailing bytes too.
	badLength
	// badVersion: the version is neither 2 nor 3 (codec), or not the
	// configured one (receiver). RFC 5798 §5.2.1.
	badVersion
	// badType: the type is not 1, advertisement (codec). RFC 5798 §5.2.2.
	badType
	// badChecksum: the checksum does not verify (codec). RFC 5798 §5.2.8,
	// RFC 3768 §5.3.8.
	badChecksum
	// badInterval: the advertisement interval is zero (codec).
	badInterval
	// badVRID: the virtual router ID is 0 (codec). RFC 5798 §5.2.3.
	badVRID
	// otherVRID: a valid advertisement for another virtual router on the
	// link (receiver). Normal on a shared LAN, counted apart from errors.
	otherVRID
	// badAuth: a v2 authentication type other than 0 or 1 (codec), or a
	// type or password that differs from the configured one (receiver).
	badAuth
	// badTTL: a multicast advertisement whose TTL is not 255 (receiver).
	// RFC 5798 §7.1; keepalived skips this check in unicast mode.
	badTTL
	// intervalMismatch: a v2 interval that differs from the configured one
	// (receiver). RFC 3768 §7.1.
	intervalMismatch
	// notPeer: in unicast mode, the source is not a configured peer
	// (receiver).
	notPeer
	// ownPacket: our own advertisement, looped back (receiver).
	ownPacket
	// wrongInterface: the advertisement arrived on another interface; a raw
	// socket sees protocol 112 from all of them (receiver).
	wrongInterface
	// wrongDestination: multicast in unicast mode or unicast in multicast
	// mode (receiver), as keepalived checks.
	wrongDestination

	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	unknownReason:    "unknown",
	badLength:        "bad_length",
	badVersion:       "bad_version",
	badType:          "bad_type",
	badChecksum:      "bad_checksum",
	badInterval:      "bad_interval",
	badVRID:          "bad_vrid",
	otherVRID:        "other_vrid",
	badAuth:          "bad_auth",
	badTTL:           "bad_ttl",
	intervalMismatch: "interval_mismatch",
	notPeer:          "not_peer",
	ownPacket:        "own_packet",
	wrongInterface:   "wrong_interface",
	wrongDestination: "wrong_destination",
}

// String returns the reason as a snake_case word, such as "bad_checksum".
func (r dropReason) String() string {
	if r < 0 || r >= numDropReasons {
		return "DropReason(" + strconv.Itoa(int(r)) + ")"
	}
	return dropReasonNames[r]
}

// dropCounts counts dropped advertisements per reason. The zero value is
// ready to use; Add and the readers may run concurrently. It must not be
// copied after first use.
type dropCounts struct {
	n [numDropReasons]atomic.Uint64
}

// Add counts one advertisement dropped for reason r. A reason out of range
// is counted as unknownReason rather than lost.
func (c *dropCounts) Add(r dropReason) {
	if r < 0 || r >= numDropReasons {
		r = unknownReason
	}
	c.n[r].Add(1)
}

// Get returns how many advertisements were dropped for reason r.
func (c *dropCounts) Get(r dropReason) uint64 {
	if r < 0 || r >= numDropReasons {
		return 0
	}
	return c.n[r].Load()
}

// Snapshot returns every reason's count, zeros included so that a metrics
// series exists before its first drop, keyed by dropReason.String. The
// unknown reason, which no drop should have (every error of the codec and
// the receive checks carries its reason), appears only once counted.
func (c *dropCounts) Snapshot() map[string]uint64 {
	m := make(map[string]uint64, numDropReasons)
	for r := range numDropReasons {
		if n := c.n[r].Load(); n > 0 || r != unknownReason {
			m[r.String()] = n
		}
	}
	return m
}

// errMalformed is wrapped by every error UnmarshalBinary returns for bytes
// that are not a valid advertisement, so that a reader can skip them with
// errors.Is and go on.
var errMalformed = errors.New("malformed VRRP advertisement")

// dropError is an error that carries the reason of a drop. The errors it
// wraps (errMalformed, io.ErrUnexpectedEOF) stay visible to errors.Is.
type dropError struct {
	reason dropReason
	msg    string
	wraps  []error
}

func (e *dropError) Error() string { return "vrrp: " + e.msg }

func (e *dropError) Unwrap() []error { return e.wraps }

// dropReasonOf returns the reason carried by err, or UnknownReason when err
// carries none (nil included).
func dropReasonOf(err error) dropReason {
	var de *dropError
	if errors.As(err, &de) {
		return de.reason
	}
	return unknownReason
}
