package vrrp

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// event is an input to machine.Handle. The set is closed: start,
// advertReceived, timeout, setHealthy, setFault, setPriority, setPrimary,
// shutdown, release, addressConflict.
type event interface{ isEvent() }

// start joins the virtual router (RFC 5798 §6.4.1 Startup): Backup, or
// Master at once for a healthy owner, or Fault if a fault is set.
type start struct{}

// advertReceived is an advert that passed the receive checks of RFC 5798
// §7.1; the caller has dropped the invalid ones and our own.
type advertReceived struct {
	Src      netip.Addr    // the sender's primary address (IP source)
	Priority uint8         // 0 means the sender is leaving mastership
	Interval time.Duration // Max Adver Int; used by VRRPv3 only
}

// timeout reports that Deadline has passed.
type timeout struct{}

// setHealthy reports whether the supervised service may be master. A sick
// router is never promoted; a master that falls sick stays master.
type setHealthy struct{ Healthy bool }

// setFault sets or clears a fault (the service yielded, the interface is
// down). The caller combines its sources into one flag.
type setFault struct{ Fault bool }

// setPriority changes the effective priority, clamped to 1..254; the
// owner's stays 255.
type setPriority struct{ Priority uint8 }

// setPrimary sets this router's own address after the interface was
// re-addressed: the tie-break of equal priorities and, while master, the
// master's address.
type setPrimary struct{ Addr netip.Addr }

// shutdown is a planned stop. The Machine ends in Stopped and ignores
// every later event.
type shutdown struct{}

// release is a hard stop: the caller is going away now (its context
// ended, or its socket failed) and cannot wait for a new master. A master
// sends priority 0 and removes its addresses at once; the Machine ends in
// Stopped like after Shutdown.
type release struct{}

// addressConflict reports an ARP frame from another station that claims
// one of the virtual addresses: while this router is master, someone else
// answers for its address, a split brain that adverts did not reveal.
type addressConflict struct {
	VIP netip.Addr       // the address claimed
	MAC net.HardwareAddr // the station claiming it (ARP sender)
}

func (start) isEvent()           {}
func (advertReceived) isEvent()  {}
func (timeout) isEvent()         {}
func (setHealthy) isEvent()      {}
func (setFault) isEvent()        {}
func (setPriority) isEvent()     {}
func (setPrimary) isEvent()      {}
func (shutdown) isEvent()        {}
func (release) isEvent()         {}
func (addressConflict) isEvent() {}

// action is an output of machine.Handle for the caller to carry out. The
// set is closed: sendAdvert, addVIPs, removeVIPs, announce, reannounce,
// handOver, stateChange, and the reports splitBrain, answerSuppressed and
// intervalDiffers, which the caller counts and logs.
type action interface {
	fmt.Stringer
	isAction()
}

// sendAdvert sends one advertisement with the given priority.
type sendAdvert struct{ Priority uint8 }

// addVIPs adds the virtual addresses to the interface.
type addVIPs struct{}

// removeVIPs removes the virtual addresses from the interface.
type removeVIPs struct{}

// announce starts the bursts of gratuitous ARPs of a new master for the
// virtual addresses.
type announce struct{}

// reannounce sends one burst of gratuitous ARPs now, to end a split
// brain, and asks for one more burst a little later (splitBrainRepeat):
// hosts that heard the other master just before may ignore the first.
type reannounce struct{}

// handOver announces the virtual addresses once on behalf of the router
// at To, which has just taken mastership from this one: only the old
// master knows that clients may still hold its own MAC address.
type handOver struct{ To netip.Addr }

// stateChange reports a state change, for logs, notify commands and
// systemd status.
type stateChange struct{ From, To State }

// splitBrain reports that this router, as master, heard another master:
// an advert with a priority above 0 from another router, or an ARP frame
// from another station for a virtual address. With names the other side.
type splitBrain struct{ With string }

// answerSuppressed reports an advert or a conflict that a master would
// have answered, but did not, because it answered one less than an
// advert interval ago (at most one answer per Advertisement_Interval).
type answerSuppressed struct{ From string }

// intervalDiffers reports an advert whose interval differs from
// Master_Adver_Interval and was not adopted (yet): Seen is how many
// adverts in a row From has sent with it.
type intervalDiffers struct {
	From     netip.Addr
	Interval time.Duration
	Seen     int
}

func (sendAdvert) isAction()       {}
func (addVIPs) isAction()          {}
func (removeVIPs) isAction()       {}
func (announce) isAction()         {}
func (reannounce) isAction()       {}
func (handOver) isAction()         {}
func (stateChange) isAction()      {}
func (splitBrain) isAction()       {}
func (answerSuppressed) isAction() {}
func (intervalDiffers) isAction()  {}

// String returns "SendAdvert(prio)".
func (a sendAdvert) String() string { return fmt.Sprintf("SendAdvert(%d)", a.Priority) }

// String returns "AddVIPs".
func (addVIPs) String() string { return "AddVIPs" }

// String returns "RemoveVIPs".
func (removeVIPs) String() string { return "RemoveVIPs" }

// String returns "Announce".
func (announce) String() string { return "Announce" }

// String returns "Reannounce".
func (reannounce) String() string { return "Reannounce" }

// String returns "HandOver(addr)".
func (a handOver) String() string { return fmt.Sprintf("HandOver(%v)", a.To) }

// String returns "Transition(FROM->TO)".
func (a stateChange) String() string { return fmt.Sprintf("Transition(%v->%v)", a.From, a.To) }

// String returns "SplitBrain(with)".
func (a splitBrain) String() string { return fmt.Sprintf("SplitBrain(%s)", a.With) }

// String returns "AnswerSuppressed(from)".
func (a answerSuppressed) String() string { return fmt.Sprintf("AnswerSuppressed(%s)", a.From) }

// String returns "IntervalDiffers(from interval seen)".
func (a intervalDiffers) String() string {
	return fmt.Sprintf("IntervalDiffers(%v %v %d)", a.From, a.Interval, a.Seen)
}
