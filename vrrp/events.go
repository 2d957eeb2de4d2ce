package vrrp

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Event is an input to Machine.Handle. The set is closed: Start,
// AdvertReceived, Timeout, SetHealthy, SetFault, SetPriority, SetPrimary,
// Shutdown, Release, AddressConflict.
type Event interface{ isEvent() }

// Start joins the virtual router (RFC 5798 §6.4.1 Startup): Backup, or
// Master at once for a healthy owner, or Fault if a fault is set.
type Start struct{}

// AdvertReceived is an advert that passed the receive checks of RFC 5798
// §7.1; the caller has dropped the invalid ones and our own.
type AdvertReceived struct {
	Src      netip.Addr    // the sender's primary address (IP source)
	Priority uint8         // 0 means the sender is leaving mastership
	Interval time.Duration // Max Adver Int; used by VRRPv3 only
}

// Timeout reports that Deadline has passed.
type Timeout struct{}

// SetHealthy reports whether the supervised service may be master. A sick
// router is never promoted; a master that falls sick stays master.
type SetHealthy struct{ Healthy bool }

// SetFault sets or clears a fault (the service yielded, the interface is
// down). The caller combines its sources into one flag.
type SetFault struct{ Fault bool }

// SetPriority changes the effective priority, clamped to 1..254; the
// owner's stays 255.
type SetPriority struct{ Priority uint8 }

// SetPrimary sets this router's own address after the interface was
// re-addressed: the tie-break of equal priorities and, while master, the
// master's address.
type SetPrimary struct{ Addr netip.Addr }

// Shutdown is a planned stop. The Machine ends in Stopped and ignores
// every later event.
type Shutdown struct{}

// Release is a hard stop: the caller is going away now (its context
// ended, or its socket failed) and cannot wait for a new master. A master
// sends priority 0 and removes its addresses at once; the Machine ends in
// Stopped like after Shutdown.
type Release struct{}

// AddressConflict reports an ARP frame from another station that claims
// one of the virtual addresses: while this router is master, someone else
// answers for its address, a split brain that adverts did not reveal.
type AddressConflict struct {
	VIP netip.Addr       // the address claimed
	MAC net.HardwareAddr // the station claiming it (ARP sender)
}

func (Start) isEvent()           {}
func (AdvertReceived) isEvent()  {}
func (Timeout) isEvent()         {}
func (SetHealthy) isEvent()      {}
func (SetFault) isEvent()        {}
func (SetPriority) isEvent()     {}
func (SetPrimary) isEvent()      {}
func (Shutdown) isEvent()        {}
func (Release) isEvent()         {}
func (AddressConflict) isEvent() {}

// Action is an output of Machine.Handle for the caller to carry out. The
// set is closed: SendAdvert, AddVIPs, RemoveVIPs, Announce, Reannounce,
// HandOver, Transition, and the reports SplitBrain, AnswerSuppressed and
// IntervalDiffers, which the caller counts and logs.
type Action interface {
	fmt.Stringer
	isAction()
}

// SendAdvert sends one advertisement with the given priority.
type SendAdvert struct{ Priority uint8 }

// AddVIPs adds the virtual addresses to the interface.
type AddVIPs struct{}

// RemoveVIPs removes the virtual addresses from the interface.
type RemoveVIPs struct{}

// Announce starts the bursts of gratuitous ARPs of a new master for the
// virtual addresses.
type Announce struct{}

// Reannounce sends one burst of gratuitous ARPs now, to end a split
// brain, and asks for one more burst a little later (splitBrainRepeat):
// hosts that heard the other master just before may ignore the first.
type Reannounce struct{}

// HandOver announces the virtual addresses once on behalf of the router
// at To, which has just taken mastership from this one: only the old
// master knows that clients may still hold its own MAC address.
type HandOver struct{ To netip.Addr }

// Transition reports a state change, for logs, notify commands and
// systemd status.
type Transition struct{ From, To State }

// SplitBrain reports that this router, as master, heard another master:
// an advert with a priority above 0 from another router, or an ARP frame
// from another station for a virtual address. With names the other side.
type SplitBrain struct{ With string }

// AnswerSuppressed reports an advert or a conflict that a master would
// have answered, but did not, because it answered one less than an
// advert interval ago (at most one answer per Advertisement_Interval).
type AnswerSuppressed struct{ From string }

// IntervalDiffers reports an advert whose interval differs from
// Master_Adver_Interval and was not adopted (yet): Seen is how many
// adverts in a row From has sent with it.
type IntervalDiffers struct {
	From     netip.Addr
	Interval time.Duration
	Seen     int
}

func (SendAdvert) isAction()       {}
func (AddVIPs) isAction()          {}
func (RemoveVIPs) isAction()       {}
func (Announce) isAction()         {}
func (Reannounce) isAction()       {}
func (HandOver) isAction()         {}
func (Transition) isAction()       {}
func (SplitBrain) isAction()       {}
func (AnswerSuppressed) isAction() {}
func (IntervalDiffers) isAction()  {}

// String returns "SendAdvert(prio)".
func (a SendAdvert) String() string { return fmt.Sprintf("SendAdvert(%d)", a.Priority) }

// String returns "AddVIPs".
func (AddVIPs) String() string { return "AddVIPs" }

// String returns "RemoveVIPs".
func (RemoveVIPs) String() string { return "RemoveVIPs" }

// String returns "Announce".
func (Announce) String() string { return "Announce" }

// String returns "Reannounce".
func (Reannounce) String() string { return "Reannounce" }

// String returns "HandOver(addr)".
func (a HandOver) String() string { return fmt.Sprintf("HandOver(%v)", a.To) }

// String returns "Transition(FROM->TO)".
func (a Transition) String() string { return fmt.Sprintf("Transition(%v->%v)", a.From, a.To) }

// String returns "SplitBrain(with)".
func (a SplitBrain) String() string { return fmt.Sprintf("SplitBrain(%s)", a.With) }

// String returns "AnswerSuppressed(from)".
func (a AnswerSuppressed) String() string { return fmt.Sprintf("AnswerSuppressed(%s)", a.From) }

// String returns "IntervalDiffers(from interval seen)".
func (a IntervalDiffers) String() string {
	return fmt.Sprintf("IntervalDiffers(%v %v %d)", a.From, a.Interval, a.Seen)
}
