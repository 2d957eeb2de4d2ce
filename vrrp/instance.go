package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The driver's view of the I/O layer, in its own verbs. The real ones are
// Conn, VIPs and Announcer; tests put fakes in their place.
type (
	advertConn interface {
		Primary() netip.Addr
		SetPrimary(netip.Addr)
		CheckInterface() error
		Send(prio uint8) error
		Receive() (*Advert, error)
		Drops() map[string]uint64
		Close() error
	}
	addrHolder interface {
		DropStaleSockets()
		Add() error
		Remove() error
		RemoveStale() ([]netip.Prefix, error)
		LinkUp() (bool, error)
		Watch(ctx context.Context, out chan<- linkEvent) error
	}
	announcer interface {
		Announce(rounds int) error
		HandOver(ctx context.Context, to, from netip.Addr) (net.HardwareAddr, error)
		Watch(ctx context.Context, out chan<- addressConflict) error
	}
)

// secondBurst is when keepalived repeats its gratuitous ARPs after
// becoming master (garp_master_delay, 5 s): switches that missed the
// first burst while a link came up learn the new port then.
const secondBurst = 5 * time.Second

// staleGrace is how long after losing its VIPs a node destroys the TCP
// sockets left on them: time for responses already on their way to go
// out. No connection on them can go on longer anyway, its client's next
// segments going to the new master. Done then, on a backup, it costs a
// takeover nothing; a node that becomes master again sooner does it at
// once, before it advertises.
const staleGrace = time.Second

// splitBrainRepeat is when a master that answered a split brain announces
// once more: just past Linux's neighbour locktime (1 s by default), within
// which a host that took the other master's ARP a moment before ours
// ignores a second change of the entry.
const splitBrainRepeat = 1100 * time.Millisecond

// resolveTimeout bounds the ARP request of a hand-over for the new
// master's MAC address; on a LAN the answer takes a millisecond.
const resolveTimeout = 500 * time.Millisecond

// noteLogPeriod is how often one kind of protocol oddity (a suppressed
// answer, a split brain, an interval not adopted) is logged: a flood of
// forged adverts must not flood the log.
const noteLogPeriod = 10 * time.Second

// instance is one VRRP instance: the state machine driven by received
// adverts, its timer, link events and the supervisor's verdicts on the
// child's health. Run owns it; the other methods are safe from any
// goroutine.
type instance struct {
	cfg   *Config
	conn  advertConn
	addrs addrHolder
	arp   announcer
	log   *slog.Logger

	inbox     chan func(now time.Time) // requests, run on the loop
	changes   chan Change
	status    atomic.Pointer[InstanceStatus]
	stopped   chan struct{} // closed once the instance let its addresses go
	counters  counters
	notes     *rateLimiter         // bounds the logs of do's reports
	conflicts chan addressConflict // from the ARP watch, while master
	bg        sync.WaitGroup       // hand-overs and the ARP watch

	// Owned by Run.
	ctx    context.Context // Run's, for the goroutines it starts
	m      *machine
	faults map[string]bool
	burst  *time.Timer // the second gratuitous ARP burst
	again  *time.Timer // the repeat of a split-brain answer
	// stale is due staleGrace after the VIPs went: then the sockets left
	// on them are destroyed (see sockets.go). It is nil once that is
	// done or under way.
	stale       *time.Timer
	unwatch     context.CancelFunc
	splitAt     time.Time // the last split brain
	splitWith   string
	sendFailing bool
	stopMu      sync.Once
}

// openInstance opens the socket and resolves the interface. Nothing on the
// host changes until Run.
func openInstance(cfg *Config, log *slog.Logger) (*instance, error) {
	conn, err := listenConn(connConfig{
		Interface: cfg.Interface, VRID: uint8(cfg.VRID), Version: cfg.Version,
		Group: cfg.McastGroup, Peers: cfg.UnicastPeers, AuthPass: cfg.AuthPass,
		Interval: cfg.AdvertInterval, VIPs: cfg.VIPS.Addrs(), Log: log,
	})
	if err != nil {
		return nil, err
	}
	addrs, err := newVIPSet(cfg.Interface, cfg.VIPS, log)
	if err != nil {
		conn.Close()
		return nil, err
	}
	// VIPs owns the primary address from here on: it reports changes as
	// PrimaryChanged, which onLink hands to the socket and the machine.
	primary, err := addrs.Primary()
	if err == nil && !primary.IsValid() {
		err = errNoAddress
		if cfg.IPv6() {
			err = errNoLinkLocal
		}
		err = fmt.Errorf("vrrp: interface %s: %w", cfg.Interface, err)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetPrimary(primary.Addr())
	var arp announcer
	if cfg.IPv6() {
		arp = newNDAnnouncer(cfg.Interface, cfg.VIPS.Addrs(), log)
	} else {
		a := newARPAnnouncer(cfg.Interface, cfg.VIPS.Addrs(), log)
		addrs.added = a.First
		arp = a
	}
	return newInstance(cfg, conn, addrs, arp, log), nil
}

func newInstance(cfg *Config, conn advertConn, addrs addrHolder, arp announcer, log *slog.Logger) *instance {
	i := &instance{
		cfg: cfg, conn: conn, addrs: addrs, arp: arp,
		log:       log.With("vrid", cfg.VRID),
		inbox:     make(chan func(time.Time), 16),
		changes:   make(chan Change, 64),
		stopped:   make(chan struct{}),
		faults:    map[string]bool{},
		notes:     newRateLimiter(noteLogPeriod),
		conflicts: make(chan addressConflict, 16),
		ctx:       context.Background(),
	}
	i.m = newMachine(i.machineConfig())
	i.publish()
	return i
}

func (i *instance) machineConfig() machineConfig {
	return machineConfig{
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
func (i *instance) Changes() <-chan Change { return i.changes }

// Status returns the latest snapshot, with the drop and event counters
// as they are now.
func (i *instance) Status() InstanceStatus {
	s := *i.status.Load()
	s.Drops = i.conn.Drops()
	s.Counters = i.counters.snapshot()
	s.SplitBrain = i.counters.get(ctrSplitBrain)
	return s
}

// SetHealthy tells whether the child may be master: an unhealthy node is
// never promoted, but a master is not demoted by this (see SetFault).
func (i *instance) SetHealthy(healthy bool) {
	i.request(func(now time.Time) { i.apply(now, setHealthy{Healthy: healthy}) })
}

// SetFault sets or clears one named fault ("child", "link", "gateway"):
// while any is set the instance is in FAULT, sends nothing and holds no
// address; a master yields at once with priority 0.
func (i *instance) SetFault(source string, on bool) {
	i.request(func(now time.Time) { i.setFault(now, source, on) })
}

// Shutdown begins a planned stop: a master sends priority 0 and keeps
// its addresses until the new master is heard (or a bounded wait passes).
// The returned channel is closed once the addresses are gone.
func (i *instance) Shutdown() <-chan struct{} {
	i.request(func(now time.Time) { i.apply(now, shutdown{}) })
	return i.stopped
}

func (i *instance) request(f func(time.Time)) {
	select {
	case i.inbox <- f:
	case <-i.stopped:
	}
}

// Run starts the instance and drives it until it has stopped (after
// Shutdown), ctx ends (the addresses are then removed at once), or the
// socket or the link watch fails. It returns once the goroutines it
// started have ended.
func (i *instance) Run(ctx context.Context) error {
	defer i.stopMu.Do(func() { close(i.stopped) })
	defer i.conn.Close()
	defer i.bg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	i.ctx = ctx
	timer, err := newLoopTimer()
	if err != nil {
		return err
	}
	defer timer.Close()
	if err := i.removeStale(); err != nil {
		return err
	}
	defer func() {
		if i.stale != nil {
			i.stale.Stop()
		}
	}()
	up, err := i.addrs.LinkUp()
	if err != nil {
		return err
	}
	links := make(chan linkEvent, 64)
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
	i.apply(now, start{})
	return i.loop(ctx, timer, adverts, links, failed)
}

// removeStale removes copies of the VIPs an earlier run left behind (a
// kill -9 gives no chance to remove them). The address owner (priority
// 255) skips it: its VIPs are its own real addresses.
func (i *instance) removeStale() error {
	if i.cfg.Priority == 255 {
		return nil
	}
	removed, err := i.addrs.RemoveStale()
	if len(removed) > 0 {
		i.log.Warn("removed stale virtual addresses left by an earlier run", "addrs", fmt.Sprint(removed))
	}
	if err == nil {
		// The sockets an earlier run's mastership left, as a restarted
		// node that preempts would otherwise meet them.
		i.addrs.DropStaleSockets()
	}
	return err
}

// receive reads adverts on a goroutine of its own until the socket is
// closed; any other error ends the instance.
func (i *instance) receive(failed chan<- error) <-chan *Advert {
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

func (i *instance) loop(ctx context.Context, timer loopTimer, adverts <-chan *Advert, links <-chan linkEvent, failed <-chan error) error {
	var refresh <-chan time.Time
	if d := i.cfg.GARPRefresh; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		refresh = t.C
	}
	var armed time.Time
	for i.m.State() != Stopped {
		i.refreshStatus()
		armed = i.arm(timer, armed)
		select {
		case a := <-adverts:
			i.received(a)
			i.apply(time.Now(), advertReceived{Src: a.Src, Priority: a.Priority, Interval: a.Interval})
		case c := <-i.conflicts:
			i.apply(time.Now(), c)
		case now := <-timer.Chan():
			armed = time.Time{}
			i.apply(now, timeout{})
		case ev := <-links:
			i.onLink(time.Now(), ev)
		case f := <-i.inbox:
			f(time.Now())
		case <-timerC(i.burst):
			i.burst = nil
			i.announce("second burst")
		case <-timerC(i.stale):
			// Off the loop: on a busy host the dump of every socket
			// takes milliseconds, which a backup's timers must not
			// wait for. A takeover meanwhile waits for it in Add.
			i.stale = nil
			if i.m.State() != Master {
				i.bg.Go(i.addrs.DropStaleSockets)
			}
		case <-timerC(i.again):
			i.again = nil
			if i.m.State() == Master {
				i.announce("split brain, again")
			}
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

// arm sets timer to the machine's deadline unless it is set to it
// already, armed being the deadline it was last set to (zero once it has
// fired), and returns the deadline it is set to.
func (i *instance) arm(timer loopTimer, armed time.Time) time.Time {
	d := i.m.Deadline()
	switch {
	case d.Equal(armed):
	case d.IsZero():
		timer.Stop()
	default:
		timer.Reset(time.Until(d))
	}
	return d
}

// timerC is t's channel, or nil (never ready) when t is nil.
func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}
