package vrrp

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// watchRcvBuf is the receive buffer asked for each netlink subscription
// (the kernel caps it at net.core.rmem_max). A flush of a few hundred
// addresses must fit: an overflow ends the subscription with ENOBUFS.
const watchRcvBuf = 1 << 20

// linkEventKind says what a LinkEvent reports.
type linkEventKind int

const (
	// linkDown reports that the interface stopped being usable: it was
	// set administratively down, lost its carrier, went dormant or
	// testing, or was deleted. See vipSet.LinkUp.
	linkDown linkEventKind = iota + 1
	// linkUp reports that the interface is usable again.
	linkUp
	// vipDeleted reports that an address of one of the VIPs left the
	// interface; linkEvent.Addr is the prefix as the kernel had it.
	vipDeleted
	// primaryChanged reports a new primary IPv4 address (see
	// vipSet.Primary); linkEvent.Addr is the zero Prefix when the
	// interface has none left.
	primaryChanged
)

var linkEventKindNames = [...]string{
	linkDown:       "LinkDown",
	linkUp:         "LinkUp",
	vipDeleted:     "VIPDeleted",
	primaryChanged: "PrimaryChanged",
}

// String returns the constant's name, such as "VIPDeleted".
func (k linkEventKind) String() string {
	if k > 0 && int(k) < len(linkEventKindNames) {
		return linkEventKindNames[k]
	}
	return fmt.Sprintf("LinkEventKind(%d)", int(k))
}

// linkEvent is something about the interface that the driver must react
// to, as reported by vipSet.Watch.
type linkEvent struct {
	Kind linkEventKind
	// Addr is the deleted VIP for VIPDeleted and the new primary address
	// for PrimaryChanged; it is the zero Prefix otherwise.
	Addr netip.Prefix
}

// String returns the kind, followed by the address if there is one.
func (e linkEvent) String() string {
	if e.Kind == vipDeleted || e.Kind == primaryChanged {
		return e.Kind.String() + " " + eventAddrString(e.Addr)
	}
	return e.Kind.String()
}

func eventAddrString(p netip.Prefix) string {
	if !p.IsValid() {
		return "none"
	}
	return p.String()
}

// Watch reports on out, until ctx ends, what the driver must react to:
// the link going down or up (as vipSet.LinkUp defines it), an address of one
// of the VIPs leaving the interface, and a change of the primary IPv4
// address. It returns nil when ctx ends.
//
// Reports are changes against what the caller last learnt from LinkUp,
// Primary or Watch itself. A state the caller has not asked for is
// reported once at the start: a Watch without a prior LinkUp begins with
// LinkUp or LinkDown, and one without a prior Primary with PrimaryChanged.
// So a driver that calls LinkUp and Primary at start-up and then Watch
// misses nothing that happens between the two and hears nothing twice.
//
// VIPDeleted is reported for every deletion while Watch runs, whoever made
// it: an operator, a network manager flushing the interface, or this
// process's own Remove and RemoveStale. The driver decides what matters
// (re-adding while master); what was deleted before Watch started, Present
// tells. The kernel by itself keeps IPv4 addresses across a down and up;
// it is network managers that flush them when the carrier goes, and that
// arrives here as VIPDeleted events.
//
// Watch subscribes to netlink link and address updates in the namespace of
// newVIPSet, so it may run on any goroutine. out should be buffered and
// drained promptly: while a send blocks, updates queue in the kernel, and
// if its buffer overflows the subscription ends. Watch then returns an
// error; events may have been lost, so the caller should ask LinkUp,
// Present and Primary again and start a new Watch. Run one Watch at a
// time: Watches share what the caller was last told, so a second would miss
// what the first reported.
func (v *vipSet) Watch(ctx context.Context, out chan<- linkEvent) error {
	w := &linkWatch{v: v, out: out}
	err := w.subscribe()
	defer w.close()
	if err != nil {
		return fmt.Errorf("vrrp: watch %s: %w", v.ifname, err)
	}
	// The state is asked for after subscribing, so that no change can
	// fall between the answers and the updates. An update already queued
	// may then be older than an answer; it reports a change that really
	// happened, and the last report is the current state.
	for _, note := range []func() (linkEvent, bool, error){v.noteLinkNow, v.notePrimary} {
		if ev, ok, err := note(); err != nil {
			return err
		} else if ok && !w.send(ctx, ev) {
			return nil
		}
	}
	for {
		var ev linkEvent
		var ok bool
		var err error
		select {
		case <-ctx.Done():
			return nil
		case u, open := <-w.links:
			if !open {
				return w.stopped("link")
			}
			ev, ok = v.onLink(*u)
		case u, open := <-w.addrs:
			if !open {
				return w.stopped("address")
			}
			ev, ok, err = v.onAddr(*u)
		case cbErr := <-w.errs:
			// A fatal error is followed by its channel closing.
			w.lastErr = cbErr
			v.log.Warn("netlink subscription", "iface", v.ifname, "err", cbErr)
		}
		if err != nil {
			return err
		}
		if ok {
			v.log.Debug("link event", "iface", v.ifname, "event", ev)
			if !w.send(ctx, ev) {
				return nil
			}
		}
	}
}

// linkWatch is one run of Watch: its copy of the namespace's updates.
type linkWatch struct {
	v       *vipSet
	out     chan<- linkEvent
	sub     *feedSub
	links   <-chan *netlink.LinkUpdate
	addrs   <-chan *netlink.AddrUpdate
	errs    <-chan error // from the subscriptions' ErrorCallback
	lastErr error        // the last of them Watch read
}

// subscribe takes a copy of the updates of the VIPs' namespace, from the
// feed every watch there shares (see linkFeed).
func (w *linkWatch) subscribe() error {
	sub, err := subscribeFeed(w.v.ns)
	if err != nil {
		return err
	}
	w.sub, w.links, w.addrs, w.errs = sub, sub.links, sub.addrs, sub.errs
	return nil
}

// close gives the copy back.
func (w *linkWatch) close() {
	if w.sub != nil {
		w.sub.unsubscribe(w.v.ns)
	}
}

// stopped explains a copy that ended although ctx did not: the feed's
// subscription ended, or this watch fell behind.
func (w *linkWatch) stopped(what string) error {
	cause := w.sub.err
	if w.lastErr != nil {
		cause = fmt.Errorf("%w (last error: %v)", cause, w.lastErr)
	}
	return fmt.Errorf("vrrp: watch %s: %s updates stopped, events may be lost: %w", w.v.ifname, what, cause)
}

// send delivers ev unless ctx ends first.
func (w *linkWatch) send(ctx context.Context, ev linkEvent) bool {
	select {
	case w.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// onLink turns a link update for the interface into LinkDown or LinkUp
// when the state differs from what the caller knows. A deleted link is
// down.
func (v *vipSet) onLink(u netlink.LinkUpdate) (linkEvent, bool) {
	if int(u.IfInfomsg.Index) != v.index {
		return linkEvent{}, false
	}
	up := u.Header.Type == unix.RTM_NEWLINK && linkFlagsUp(u.IfInfomsg.Flags)
	return v.noteLink(up)
}

// noteLinkNow asks for the link state and returns LinkUp or LinkDown if
// the caller does not know it yet.
func (v *vipSet) noteLinkNow() (linkEvent, bool, error) {
	l, err := v.h.LinkByIndex(v.index)
	if err != nil {
		return linkEvent{}, false, fmt.Errorf("vrrp: watch %s: link state: %w", v.ifname, err)
	}
	ev, ok := v.noteLink(linkFlagsUp(l.Attrs().RawFlags))
	return ev, ok, nil
}

// noteLink records the link state and returns the event that reports it,
// if the caller does not know it yet.
func (v *vipSet) noteLink(up bool) (linkEvent, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.upKnown && v.up == up {
		return linkEvent{}, false
	}
	v.upKnown, v.up = true, up
	if up {
		return linkEvent{Kind: linkUp}, true
	}
	return linkEvent{Kind: linkDown}, true
}

// onAddr turns an address update for the interface into VIPDeleted, or,
// for an address that is not a VIP, checks whether the primary changed.
func (v *vipSet) onAddr(u netlink.AddrUpdate) (linkEvent, bool, error) {
	p, ok := ipNetPrefix(u.LinkAddress, v.v6)
	if u.LinkIndex != v.index || !ok {
		return linkEvent{}, false, nil
	}
	if v.isVIP[p.Addr()] {
		if u.NewAddr {
			return linkEvent{}, false, nil
		}
		return linkEvent{Kind: vipDeleted, Addr: p}, true, nil
	}
	return v.notePrimary()
}

// notePrimary asks for the primary address and returns PrimaryChanged if
// the caller does not know it yet.
func (v *vipSet) notePrimary() (linkEvent, bool, error) {
	p, err := v.findPrimary()
	if err != nil {
		return linkEvent{}, false, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.primKnown && v.primary == p {
		return linkEvent{}, false, nil
	}
	v.primKnown, v.primary = true, p
	return linkEvent{Kind: primaryChanged, Addr: p}, true, nil
}
