package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// Event is an input to Machine.Handle. The set is closed: Start,
// AdvertReceived, Timeout, SetHealthy, SetFault, SetPriority, Shutdown.
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

// Shutdown is a planned stop. The Machine ends in Stopped and ignores
// every later event.
type Shutdown struct{}

func (Start) isEvent()          {}
func (AdvertReceived) isEvent() {}
func (Timeout) isEvent()        {}
func (SetHealthy) isEvent()     {}
func (SetFault) isEvent()       {}
func (SetPriority) isEvent()    {}
func (Shutdown) isEvent()       {}

// Action is an output of Machine.Handle for the caller to carry out. The
// set is closed: SendAdvert, AddVIPs, RemoveVIPs, Announce, Transition.
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

// Announce starts a burst of gratuitous ARPs for the virtual addresses.
type Announce struct{}

// Transition reports a state change, for logs, notify commands and
// systemd status.
type Transition struct{ From, To State }

func (SendAdvert) isAction() {}
func (AddVIPs) isAction()    {}
func (RemoveVIPs) isAction() {}
func (Announce) isAction()   {}
func (Transition) isAction() {}

// String returns "SendAdvert(prio)".
func (a SendAdvert) String() string { return fmt.Sprintf("SendAdvert(%d)", a.Priority) }

// String returns "AddVIPs".
func (AddVIPs) String() string { return "AddVIPs" }

// String returns "RemoveVIPs".
func (RemoveVIPs) String() string { return "RemoveVIPs" }

// String returns "Announce".
func (Announce) String() string { return "Announce" }

// String returns "Transition(FROM->TO)".
func (a Transition) String() string { return fmt.Sprintf("Transition(%v->%v)", a.From, a.To) }
