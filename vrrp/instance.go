package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The driver's view of the I/O layer, in its own verbs. The real ones are
// Conn, VIPs and Announcer; tests put fakes in their place.
type (
	advertConn interface {
		Primary() netip.Addr
		Refresh() error
		Send(prio uint8) error
		Receive() (*Advert, error)
		Drops() map[string]uint64
		Close() error
	}
	addrHolder interface {
		Add() error
		Remove() error
		RemoveStale() ([]netip.Prefix, error)
		LinkUp() (bool, error)
		Watch(ctx context.Context, out chan<- LinkEvent) error
	}
	announcer interface {
		Announce(rounds int) error
	}
)

// secondBurst is when keepalived repeats its gratuitous ARPs after
// becoming master (garp_master_delay, 5 s): switches that missed the
// first burst while a link came up learn the new port then.
const secondBurst = 5 * time.Second

// Instance is one VRRP instance: the state machine driven by received
// adverts, its timer, link events and the supervisor's verdicts on the
// child's health. Run owns it; the other methods are safe from any
// goroutine.
type Instance struct {
	cfg   *Config
	conn  advertConn
	addrs addrHolder
	arp   announcer
	log   *slog.Logger

	inbox   chan func(now time.Time) // requests, run on the loop
	changes chan Change
	status  atomic.Pointer[InstanceStatus]
	stopped chan struct{} // closed once the instance let its addresses go

	// Owned by Run.
	m           *Machine
	faults      map[string]bool
	burst       *time.Timer // the second gratuitous ARP burst
	sendFailing bool
	stopMu      sync.Once
}

// NewInstance opens the socket and resolves the interface. Nothing on the
// host changes until Run.
func NewInstance(cfg *Config, log *slog.Logger) (*Instance, error) {
	conn, err := Listen(ConnConfig{
		Interface: cfg.Interface, VRID: uint8(cfg.VRID), Version: cfg.Version,
		Group: cfg.McastGroup, Peers: cfg.UnicastPeers, AuthPass: cfg.AuthPass,
		Interval: cfg.AdvertInterval, VIPs: cfg.VIPS.Addrs(), Log: log,
	})
	if err != nil {
		return nil, err
	}
	addrs, err := NewVIPs(cfg.Interface, cfg.VIPS, log)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return newInstance(cfg, conn, addrs, NewAnnouncer(cfg.Interface, cfg.VIPS.Addrs(), log), log), nil
}

func newInstance(cfg *Config, conn advertConn, addrs addrHolder, arp announcer, log *slog.Logger) *Instance {
	i := &Instance{
		cfg: cfg, conn: conn, addrs: addrs, arp: arp,
		log:     log.With("vrid", cfg.VRID),
		inbox:   make(chan func(time.Time), 16),
		changes: make(chan Change, 64),
		stopped: make(chan struct{}),
		faults:  map[string]bool{},
	}
	i.m = NewMachine(i.machineConfig())
	i.publish()
	return i
}

func (i *Instance) machineConfig() MachineConfig {
	return MachineConfig{
		Version:      i.cfg.Version,
		Priority:     uint8(i.cfg.Priority),
		Interval:     i.cfg.AdvertInterval,
		Preempt:      i.cfg.Preempt,
		PreemptDelay: i.cfg.PreemptDelay,
		PrimaryIP:    i.conn.Primary(),
		// Long enough for the slowest backup to take over even if our
		// priority-0 advert is lost.
		StopWait: MasterDownInterval(i.cfg.Version, 1, i.cfg.AdvertInterval),
	}
}

// Changes delivers every state transition, in order.
func (i *Instance) Changes() <-chan Change { return i.changes }

// Status returns the latest snapshot, with the drop counters as they are
// now.
func (i *Instance) Status() InstanceStatus {
	s := *i.status.Load()
	s.Drops = i.conn.Drops()
	return s
}

// SetHealthy tells whether the child may be master: an unhealthy node is
// never promoted, but a master is not demoted by this (see SetFault).
func (i *Instance) SetHealthy(healthy bool) {
	i.request(func(now time.Time) { i.apply(now, SetHealthy{Healthy: healthy}) })
}

// SetFault sets or clears one named fault ("child", "link", "gateway"):
// while any is set the instance is in FAULT, sends nothing and holds no
// address; a master yields at once with priority 0.
func (i *Instance) SetFault(source string, on bool) {
	i.request(func(now time.Time) { i.setFault(now, source, on) })
}

// Shutdown begins a planned stop: a master sends priority 0 and keeps
// its addresses until the new master is heard (or a bounded wait passes).
// The returned channel is closed once the addresses are gone.
func (i *Instance) Shutdown() <-chan struct{} {
	i.request(func(now time.Time) { i.apply(now, Shutdown{}) })
	return i.stopped
}

func (i *Instance) request(f func(time.Time)) {
	select {
	case i.inbox <- f:
	case <-i.stopped:
	}
}

// Run starts the instance and drives it until it has stopped (after
// Shutdown), ctx ends (the addresses are then removed at once), or the
// socket or the link watch fails.
func (i *Instance) Run(ctx context.Context) error {
	defer i.stopMu.Do(func() { close(i.stopped) })
	defer i.conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := i.removeStale(); err != nil {
		return err
	}
	up, err := i.addrs.LinkUp()
	if err != nil {
		return err
	}
	links := make(chan LinkEvent, 64)
	failed := make(chan error, 2)
	go func() {
		if err := i.addrs.Watch(ctx, links); err != nil && ctx.Err() == nil {
			failed <- fmt.Errorf("vrrp: watching %s: %w", i.cfg.Interface, err)
		}
	}()
	adverts := i.receive(failed)
	now := time.Now()
	if !up {
		i.setFault(now, "link", true)
	}
	i.apply(now, Start{})
	return i.loop(ctx, adverts, links, failed)
}

// removeStale removes copies of the VIPs an earlier run left behind (a
// kill -9 gives no chance to remove them). The address owner (priority
// 255) skips it: its VIPs are its own real addresses.
func (i *Instance) removeStale() error {
	if i.cfg.Priority == 255 {
		return nil
	}
	removed, err := i.addrs.RemoveStale()
	if len(removed) > 0 {
		i.log.Warn("removed stale virtual addresses left by an earlier run", "addrs", fmt.Sprint(removed))
	}
	return err
}

// receive reads adverts on a goroutine of its own until the socket is
// closed; any other error ends the instance.
func (i *Instance) receive(failed chan<- error) <-chan *Advert {
	adverts := make(chan *Advert, 16)
	go func() {
		for {
			a, err := i.conn.Receive()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					failed <- fmt.Errorf("vrrp: receive on %s: %w", i.cfg.Interface, err)
				}
				return
			}
			adverts <- a
		}
	}()
	return adverts
}

func (i *Instance) loop(ctx context.Context, adverts <-chan *Advert, links <-chan LinkEvent, failed <-chan error) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var refresh <-chan time.Time
	if d := i.cfg.GARPRefresh; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		refresh = t.C
	}
	for i.m.State() != Stopped {
		i.refreshStatus()
		i.arm(timer)
		select {
		case a := <-adverts:
			i.apply(time.Now(), AdvertReceived{Src: a.Src, Priority: a.Priority, Interval: a.Interval})
		case now := <-timer.C:
			i.apply(now, Timeout{})
		case ev := <-links:
			i.onLink(time.Now(), ev)
		case f := <-i.inbox:
			f(time.Now())
		case <-i.burstC():
			i.burst = nil
			i.announce("second burst")
		case <-refresh:
			if i.m.State() == Master {
				i.announce("refresh")
			}
		case err := <-failed:
			i.release(time.Now())
			return err
		case <-ctx.Done():
			i.release(time.Now())
			return nil
		}
	}
	return nil
}

// arm sets timer to the machine's deadline.
func (i *Instance) arm(timer *time.Timer) {
	d := i.m.Deadline()
	if d.IsZero() {
		timer.Stop()
		return
	}
	timer.Reset(time.Until(d))
}

// cancelBurst drops a pending second burst: the addresses are gone, or a
// new first burst was just sent.
func (i *Instance) cancelBurst() {
	if i.burst != nil {
		i.burst.Stop()
		i.burst = nil
	}
}

func (i *Instance) burstC() <-chan time.Time {
	if i.burst == nil {
		return nil
	}
	return i.burst.C
}

// release is the hard stop: a master yields with priority 0 and removes
// its addresses at once.
func (i *Instance) release(now time.Time) {
	if i.m.State() == Master {
		i.do(now, []Action{SendAdvert{Priority: 0}, RemoveVIPs{}})
	}
}

func (i *Instance) apply(now time.Time, ev Event) {
	i.do(now, i.m.Handle(now, ev))
}

// do carries out the machine's actions in order.
func (i *Instance) do(now time.Time, actions []Action) {
	for _, a := range actions {
		switch a := a.(type) {
		case Transition:
			i.transition(now, a)
		case SendAdvert:
			i.send(a.Priority)
		case AddVIPs:
			if err := i.addrs.Add(); err != nil {
				i.log.Error("adding virtual addresses failed", "err", err)
			}
		case RemoveVIPs:
			i.cancelBurst()
			if err := i.addrs.Remove(); err != nil {
				i.log.Error("removing virtual addresses failed", "err", err)
			}
		case Announce:
			i.announce("new master")
			i.cancelBurst()
			i.burst = time.NewTimer(secondBurst)
		}
	}
}

func (i *Instance) transition(now time.Time, t Transition) {
	c := Change{From: t.From, To: t.To, Priority: i.m.EffectivePriority(), Master: i.m.Master(), At: now}
	i.log.Info("vrrp state", "from", t.From.String(), "to", t.To.String(), "priority", c.Priority, "master", addrString(c.Master))
	i.publish()
	select {
	case i.changes <- c:
	default:
		i.log.Warn("state change not delivered: the supervisor is behind", "to", t.To.String())
	}
}

// send sends an advert; a failure is logged when it first happens and
// when it ends, not on every interval.
func (i *Instance) send(prio uint8) {
	err := i.conn.Send(prio)
	switch {
	case err != nil && !i.sendFailing:
		i.log.Error("sending advert failed", "err", err)
	case err == nil && i.sendFailing:
		i.log.Info("sending adverts works again")
	}
	i.sendFailing = err != nil
}

func (i *Instance) announce(why string) {
	if err := i.arp.Announce(i.cfg.GARPRepeat); err != nil {
		i.log.Error("gratuitous ARP failed", "why", why, "err", err)
	}
}

// onLink reacts to what the kernel reports about the interface.
func (i *Instance) onLink(now time.Time, ev LinkEvent) {
	switch ev.Kind {
	case LinkDown:
		i.setFault(now, "link", true)
	case LinkUp:
		if err := i.conn.Refresh(); err != nil {
			i.log.Warn("interface address not readable after link up", "err", err)
		}
		i.setFault(now, "link", false)
	case VIPDeleted:
		// Our own Remove is reported too; only a master that should
		// hold its addresses puts one back.
		if i.m.State() == Master {
			i.log.Warn("virtual address removed from under a master; restoring it", "addr", ev.Addr.String())
			i.do(now, []Action{AddVIPs{}, Announce{}})
		}
	case PrimaryChanged:
		// Watch also reports the address it first sees, unchanged.
		was := i.conn.Primary()
		if err := i.conn.Refresh(); err != nil {
			i.log.Warn("interface address not readable", "err", err)
		}
		if is := i.conn.Primary(); is != was {
			i.log.Warn("interface primary address changed; adverts now come from it", "was", addrString(was), "primary", addrString(is))
		}
	}
}

// setFault records one fault source; the machine sees their union.
func (i *Instance) setFault(now time.Time, source string, on bool) {
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
	i.apply(now, SetFault{Fault: len(i.faults) > 0})
	i.publish()
}

// refreshStatus publishes a new snapshot when what it shows changed
// without a transition: the master a backup follows, the priority.
func (i *Instance) refreshStatus() {
	s := i.status.Load()
	if s.Master != addrString(i.m.Master()) || s.Priority != i.m.EffectivePriority() || s.State != i.m.State().String() {
		i.publish()
	}
}

func (i *Instance) publish() {
	s := &InstanceStatus{
		State:    i.m.State().String(),
		Priority: i.m.EffectivePriority(),
		Master:   addrString(i.m.Master()),
		Primary:  addrString(i.conn.Primary()),
		VRID:     i.cfg.VRID,
		VIPs:     i.cfg.VIPS.String(),
	}
	for f := range i.faults {
		s.Faults = append(s.Faults, f)
	}
	slices.Sort(s.Faults)
	i.status.Store(s)
}
