package vrrp

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"
)

// This file holds what the driver does for the machine's actions and for
// link events, and the snapshots it publishes. It all runs on Run's loop
// goroutine unless a comment says otherwise.

// release is the hard stop (ctx ended, or the socket failed), through the
// machine like every transition: a master yields with priority 0 and
// removes its addresses at once, and STOP is published.
func (i *instance) release(now time.Time) {
	i.apply(now, release{})
}

func (i *instance) apply(now time.Time, ev event) {
	i.do(now, i.m.Handle(now, ev))
}

// do carries out the machine's actions in order. A new master starts its
// ARP watch only after them, so that opening its socket does not delay
// the advert and the announcement of a takeover.
func (i *instance) do(now time.Time, actions []action) {
	defer i.watchIfMaster()
	for _, a := range actions {
		switch a := a.(type) {
		case stateChange:
			i.transition(now, a)
		case sendAdvert:
			i.send(a.Priority)
		case addVIPs:
			// After the advert, as the dump of every socket can take
			// milliseconds, and before the VIPs, so that no new
			// connection is taken for stale.
			i.dropStale()
			if err := i.addrs.Add(); err != nil {
				i.log.Error("adding virtual addresses failed", "err", err)
			}
		case removeVIPs:
			i.cancelTimers()
			if err := i.addrs.Remove(); err != nil {
				i.log.Error("removing virtual addresses failed", "err", err)
			}
			i.stale = restart(i.stale, staleGrace)
		case announce:
			i.announce("new master")
			i.burst = restart(i.burst, secondBurst)
		case reannounce:
			i.announce("split brain")
			if i.again == nil {
				i.again = time.NewTimer(splitBrainRepeat)
			}
		case handOver:
			i.handOver(a.To)
		default:
			i.note(now, a)
		}
	}
}

// note counts and logs the machine's reports, each kind at most once per
// noteLogPeriod.
func (i *instance) note(now time.Time, a action) {
	switch a := a.(type) {
	case splitBrain:
		total := i.counters.inc(ctrSplitBrain)
		i.splitAt, i.splitWith = now, a.With
		i.publish()
		if ok, unlogged := i.notes.Allow("split_brain", now); ok {
			i.log.Warn("split brain: another master heard", "with", a.With,
				"state", i.m.State().String(), "unlogged", unlogged, "total", total)
		}
	case answerSuppressed:
		total := i.counters.inc(ctrAnswersSuppressed)
		if ok, unlogged := i.notes.Allow("answers_suppressed", now); ok {
			i.log.Warn("answers to lower-priority adverts suppressed", "from", a.From,
				"per", i.cfg.AdvertInterval.String(), "unlogged", unlogged, "total", total)
		}
	case intervalDiffers:
		total := i.counters.inc(ctrIntervalMismatch)
		if ok, unlogged := i.notes.Allow("interval_mismatch", now); ok {
			i.log.Warn("master advertises another interval; not adopted yet", "master", a.From.String(),
				"interval", a.Interval.String(), "ours", i.cfg.AdvertInterval.String(), "seen", a.Seen,
				"adopted_after", adoptAfter, "unlogged", unlogged, "total", total)
		}
	}
}

// restart stops t, if any, and returns a new timer for d.
func restart(t *time.Timer, d time.Duration) *time.Timer {
	if t != nil {
		t.Stop()
	}
	return time.NewTimer(d)
}

// dropStale destroys, if the grace of the last yield is still pending,
// the sockets that mastership left on the VIPs, and forgets the grace.
func (i *instance) dropStale() {
	if i.stale == nil {
		return
	}
	i.stale.Stop()
	i.stale = nil
	i.addrs.DropStaleSockets()
}

// cancelTimers drops the pending announcements: the addresses are gone.
func (i *instance) cancelTimers() {
	for _, t := range []**time.Timer{&i.burst, &i.again} {
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
}

func (i *instance) transition(now time.Time, t stateChange) {
	switch {
	case t.To == Master:
		i.counters.inc(ctrBecomeMaster)
	case t.From == Master:
		i.counters.inc(ctrReleaseMaster)
		i.unwatchARP()
	}
	c := Change{Instance: i.cfg.DisplayName(), From: t.From, To: t.To, Priority: i.m.EffectivePriority(), Master: i.m.Master(), At: now}
	i.log.Info("vrrp state", "from", t.From.String(), "to", t.To.String(), "priority", c.Priority, "master", addrString(c.Master))
	i.publish()
	select {
	case i.changes <- c:
	default:
		i.log.Warn("state change not delivered: the supervisor is behind", "to", t.To.String())
	}
}

// watchIfMaster starts watching ARP for a VIP answered by another MAC
// address once this node is master, for as long as it stays master.
func (i *instance) watchIfMaster() {
	if i.m.State() != Master || i.unwatch != nil {
		return
	}
	ctx, cancel := context.WithCancel(i.ctx)
	i.unwatch = cancel
	i.bg.Go(func() { // not on the loop
		if err := i.arp.Watch(ctx, i.conflicts); err != nil {
			i.log.Warn("watching ARP for the VIPs failed; a VIP answered by another node goes unnoticed", "err", err)
		}
	})
}

func (i *instance) unwatchARP() {
	if i.unwatch != nil {
		i.unwatch()
		i.unwatch = nil
	}
}

// handOver announces the addresses once on behalf of the new master, off
// the loop: finding its MAC address takes an ARP round trip.
func (i *instance) handOver(to netip.Addr) {
	from := i.conn.Primary()
	ctx, cancel := context.WithTimeout(i.ctx, resolveTimeout)
	i.bg.Go(func() { // not on the loop
		defer cancel()
		mac, err := i.arp.HandOver(ctx, to, from)
		if errors.Is(err, errNoHandOver6) {
			return
		}
		if err != nil {
			i.log.Warn("announcing the VIPs on behalf of the new master failed", "master", to.String(), "err", err)
			return
		}
		i.counters.inc(ctrAnnouncements)
		i.log.Info("announced the VIPs on behalf of the new master", "master", to.String(), "mac", mac.String())
	})
}

// send sends an advert; a failure is logged when it first happens and
// when it ends, not on every interval.
func (i *instance) send(prio uint8) {
	err := i.conn.Send(prio)
	switch {
	case err != nil && !i.sendFailing:
		i.log.Error("sending advert failed", "err", err)
	case err == nil && i.sendFailing:
		i.log.Info("sending adverts works again")
	}
	i.sendFailing = err != nil
	if err == nil {
		i.counters.inc(ctrAdvertsSent)
		if prio == 0 {
			i.counters.inc(ctrPriorityZeroSent)
		}
	}
}

// received counts an advert the socket handed on.
func (i *instance) received(a *Advert) {
	i.counters.inc(ctrAdvertsReceived)
	if a.Priority == 0 {
		i.counters.inc(ctrPriorityZeroReceived)
	}
}

func (i *instance) announce(why string) {
	i.counters.inc(ctrAnnouncements)
	if err := i.arp.Announce(i.cfg.GARPRepeat); err != nil {
		i.log.Error("gratuitous ARP failed", "why", why, "err", err)
	}
}

// onLink reacts to what the kernel reports about the interface.
func (i *instance) onLink(now time.Time, ev linkEvent) {
	switch ev.Kind {
	case linkDown:
		i.setFault(now, "link", true)
	case linkUp:
		if err := i.conn.CheckInterface(); err != nil {
			i.log.Warn("interface not usable after link up", "err", err)
		}
		i.setFault(now, "link", false)
	case vipDeleted:
		// Our own Remove is reported too; only a master that should
		// hold its addresses puts one back.
		if i.m.State() == Master {
			i.log.Warn("virtual address removed from under a master; restoring it", "addr", ev.Addr.String())
			i.do(now, []action{addVIPs{}, announce{}})
		}
	case primaryChanged:
		// The socket sends from it, the machine breaks ties with it.
		was, is := i.conn.Primary(), ev.Addr.Addr()
		if is == was {
			return
		}
		i.conn.SetPrimary(is)
		i.do(now, i.m.Handle(now, setPrimary{Addr: is}))
		if is.IsValid() {
			i.log.Warn("interface primary address changed; adverts now come from it", "was", addrString(was), "primary", addrString(is))
		} else {
			i.log.Warn("interface has no address of its own left; no adverts until it has one", "was", addrString(was))
		}
	}
}

// setFault records one fault source; the machine sees their union.
func (i *instance) setFault(now time.Time, source string, on bool) {
	if i.faults[source] == on {
		return
	}
	if on {
		i.faults[source] = true
		i.log.Warn("fault", "source", source)
	} else {
		delete(i.faults, source)
		i.log.Info("fault cleared", "source", source)
	}
	i.apply(now, setFault{Fault: len(i.faults) > 0})
	i.publish()
}

// refreshStatus publishes a new snapshot when what it shows changed
// without a transition: the master a backup follows, the priority.
func (i *instance) refreshStatus() {
	s := i.status.Load()
	if s.Master != addrString(i.m.Master()) || s.Priority != i.m.EffectivePriority() || s.State != i.m.State().String() {
		i.publish()
	}
}

func (i *instance) publish() {
	s := &InstanceStatus{
		Name:           i.cfg.DisplayName(),
		State:          i.m.State().String(),
		Priority:       i.m.EffectivePriority(),
		Master:         addrString(i.m.Master()),
		Primary:        addrString(i.conn.Primary()),
		VRID:           i.cfg.VRID,
		VIPs:           i.cfg.VIPS.String(),
		SplitBrainAt:   i.splitAt,
		SplitBrainWith: i.splitWith,
	}
	for f := range i.faults {
		s.Faults = append(s.Faults, f)
	}
	slices.Sort(s.Faults)
	i.status.Store(s)
}
