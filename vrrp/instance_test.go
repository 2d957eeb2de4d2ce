package vrrp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// These tests run the driver against fakes of its I/O in a synctest
// bubble: time is virtual, so the protocol's timers are checked to the
// millisecond without waiting for them. The real socket, addresses and
// ARP are checked in their own tests and end to end.

// hub is a fake LAN: what one fakeConn sends, every other one receives.
type hub struct {
	mu    sync.Mutex
	conns []*fakeConn
}

type fakeConn struct {
	hub     *hub
	primary netip.Addr
	version int
	ival    time.Duration
	in      chan *Advert
	log     *opLog
	closed  chan struct{}
	failc   chan error // an error for Receive to return
	once    sync.Once
	deaf    bool // drop everything sent to it (a cut link)
}

func (h *hub) conn(primary string, cfg *Config, log *opLog) *fakeConn {
	c := &fakeConn{hub: h, primary: netip.MustParseAddr(primary), version: cfg.Version,
		ival: cfg.AdvertInterval, in: make(chan *Advert, 64), log: log, closed: make(chan struct{}),
		failc: make(chan error, 1)}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	return c
}

func (c *fakeConn) Primary() netip.Addr      { return c.primary }
func (c *fakeConn) Refresh() error           { return nil }
func (c *fakeConn) Drops() map[string]uint64 { return nil }
func (c *fakeConn) Close() error             { c.once.Do(func() { close(c.closed) }); return nil }

func (c *fakeConn) Send(prio uint8) error {
	c.log.add(fmt.Sprintf("send %d", prio))
	c.hub.mu.Lock()
	defer c.hub.mu.Unlock()
	for _, o := range c.hub.conns {
		if o != c && !o.deaf && !c.deaf {
			o.in <- &Advert{Version: c.version, Priority: prio, Interval: c.ival, Src: c.primary}
		}
	}
	return nil
}

func (c *fakeConn) Receive() (*Advert, error) {
	select {
	case a := <-c.in:
		return a, nil
	case <-c.closed:
		return nil, net.ErrClosed
	case err := <-c.failc:
		return nil, err
	}
}

// forge delivers an advert from src, a router with no instance behind
// it (a forger, or a peer that only the test drives), to every node.
func (h *hub) forge(src string, prio uint8, ival time.Duration) {
	a := &Advert{Version: 3, Priority: prio, Interval: ival, Src: netip.MustParseAddr(src)}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, o := range h.conns {
		if !o.deaf {
			o.in <- a
		}
	}
}

// opLog records what a node's fakes were asked to do, in order.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) add(op string) { l.mu.Lock(); l.ops = append(l.ops, op); l.mu.Unlock() }
func (l *opLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ops := l.ops
	l.ops = nil
	return ops
}

type fakeAddrs struct {
	log     *opLog
	mu      sync.Mutex
	present bool
	up      bool
	events  chan LinkEvent
}

func (a *fakeAddrs) Add() error {
	a.log.add("add")
	a.mu.Lock()
	a.present = true
	a.mu.Unlock()
	return nil
}
func (a *fakeAddrs) Remove() error {
	a.log.add("remove")
	a.mu.Lock()
	a.present = false
	a.mu.Unlock()
	return nil
}
func (a *fakeAddrs) has() bool                            { a.mu.Lock(); defer a.mu.Unlock(); return a.present }
func (a *fakeAddrs) RemoveStale() ([]netip.Prefix, error) { return nil, nil }
func (a *fakeAddrs) LinkUp() (bool, error)                { return a.up, nil }
func (a *fakeAddrs) Watch(ctx context.Context, out chan<- LinkEvent) error {
	for {
		select {
		case ev := <-a.events:
			out <- ev
		case <-ctx.Done():
			return nil
		}
	}
}

type fakeARP struct {
	log       *opLog
	conflicts chan AddressConflict // what Watch reports, while it runs
	watching  atomic.Int32         // Watch calls running
}

func newFakeARP(log *opLog) *fakeARP {
	return &fakeARP{log: log, conflicts: make(chan AddressConflict)}
}

func (f *fakeARP) Announce(rounds int) error {
	f.log.add(fmt.Sprintf("announce %d", rounds))
	return nil
}

// fakePeerMAC is the MAC address every hand-over resolves.
var fakePeerMAC = net.HardwareAddr{2, 0, 0, 0, 0, 0x42}

func (f *fakeARP) HandOver(ctx context.Context, to, from netip.Addr) (net.HardwareAddr, error) {
	f.log.add(fmt.Sprintf("hand over to %v from %v", to, from))
	return fakePeerMAC, nil
}

func (f *fakeARP) Watch(ctx context.Context, out chan<- AddressConflict) error {
	f.watching.Add(1)
	defer f.watching.Add(-1)
	for {
		select {
		case c := <-f.conflicts:
			out <- c
		case <-ctx.Done():
			return nil
		}
	}
}

// node is one instance under test with its fakes.
type node struct {
	*Instance
	conn  *fakeConn
	addrs *fakeAddrs
	arp   *fakeARP
	ops   *opLog
	errc  chan error
}

func testConfig(prio int) *Config {
	return &Config{Interface: "eth0", VRID: 51, Priority: prio, Version: 3,
		AdvertInterval: 100 * time.Millisecond, Preempt: true, GARPRepeat: 5,
		VIPS: VIPList{netip.MustParsePrefix("10.0.0.100/32")}}
}

func (h *hub) start(t *testing.T, ctx context.Context, primary string, cfg *Config) *node {
	ops := &opLog{}
	n := &node{conn: h.conn(primary, cfg, ops), addrs: &fakeAddrs{log: ops, up: true, events: make(chan LinkEvent, 8)},
		arp: newFakeARP(ops), ops: ops, errc: make(chan error, 1)}
	n.Instance = newInstance(cfg, n.conn, n.addrs, n.arp, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() { n.errc <- n.Run(ctx) }()
	return n
}

func (n *node) state() string { return n.Status().State }

func TestInstanceElectsTheHigherPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		h := &hub{}
		a := h.start(t, ctx, "10.0.0.11", testConfig(150))
		b := h.start(t, ctx, "10.0.0.12", testConfig(100))
		a.SetHealthy(true)
		b.SetHealthy(true)
		// a's Master_Down_Interval at 100ms, priority 150: 300ms + 40ms.
		time.Sleep(339 * time.Millisecond)
		synctest.Wait()
		if a.state() != "BACKUP" {
			t.Fatalf("a is %s before its down timer ran out", a.state())
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if a.state() != "MASTER" || b.state() != "BACKUP" {
			t.Fatalf("a %s, b %s; want MASTER, BACKUP", a.state(), b.state())
		}
		if got, want := a.ops.take(), []string{"send 150", "add", "announce 5"}; !slices.Equal(got, want) {
			t.Errorf("becoming master: (-want +got)\n-%q\n+%q", want, got)
		}
		if !a.addrs.has() || b.addrs.has() {
			t.Errorf("VIPs on a %v, on b %v", a.addrs.has(), b.addrs.has())
		}
		// A master advertises every interval.
		time.Sleep(time.Second)
		synctest.Wait()
		if sends := count(a.ops.take(), "send 150"); sends != 10 {
			t.Errorf("%d adverts in a second at 100ms", sends)
		}
	})
}

func TestInstanceSecondGARPBurstAndRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		cfg := testConfig(100)
		cfg.GARPRefresh = 30 * time.Second
		a := (&hub{}).start(t, ctx, "10.0.0.11", cfg)
		a.SetHealthy(true)
		time.Sleep(time.Second) // master by now, alone
		synctest.Wait()
		a.ops.take()
		time.Sleep(secondBurst)
		synctest.Wait()
		if n := count(a.ops.take(), "announce 5"); n != 1 {
			t.Errorf("%d announcements in the 5 s after becoming master, want the second burst", n)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if n := count(a.ops.take(), "announce 5"); n != 1 {
			t.Errorf("%d announcements in the next 30 s, want one refresh", n)
		}
	})
}

func TestInstancePlannedStopHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a, b := settledPair(t, ctx)

		began := time.Now()
		stopped := a.Shutdown()
		synctest.Wait()
		if !a.addrs.has() {
			t.Fatal("a let go of its VIPs before the new master was heard")
		}
		<-stopped
		took := time.Since(began)
		// b's Skew_Time at priority 100, 100ms: 60ms; then its advert
		// reaches a, which lets go at once.
		if took != 60*time.Millisecond {
			t.Errorf("handover took %v, want b's skew time, 60ms", took)
		}
		if got, want := a.ops.take(), []string{"send 0", "remove"}; !slices.Equal(got, want) {
			t.Errorf("a during the stop: (-want +got)\n-%q\n+%q", want, got)
		}
		if b.state() != "MASTER" || !b.addrs.has() {
			t.Errorf("b is %s with VIPs %v after the handover", b.state(), b.addrs.has())
		}
		if err := <-a.errc; err != nil {
			t.Errorf("Run after Shutdown = %v", err)
		}
	})
}

func TestInstanceYieldsOnFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a, b := settledPair(t, ctx)

		began := time.Now()
		a.SetFault("child", true)
		synctest.Wait()
		if got, want := a.ops.take(), []string{"send 0", "remove"}; !slices.Equal(got, want) {
			t.Errorf("yield: (-want +got)\n-%q\n+%q", want, got)
		}
		if s := a.Status(); s.State != "FAULT" || !slices.Equal(s.Faults, []string{"child"}) {
			t.Errorf("a status %+v, want FAULT from child", s)
		}
		// b takes over after its Skew_Time: priority 100 at 100ms, 60ms.
		time.Sleep(59*time.Millisecond - time.Since(began))
		synctest.Wait()
		if b.state() != "BACKUP" {
			t.Errorf("b is %s before its skew time passed", b.state())
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if b.state() != "MASTER" {
			t.Errorf("b is %s after its skew time, want MASTER", b.state())
		}
		// In FAULT a sends nothing, whatever happens.
		time.Sleep(time.Second)
		synctest.Wait()
		if ops := a.ops.take(); len(ops) > 0 {
			t.Errorf("a in FAULT did %q", ops)
		}
		a.SetFault("child", false)
		synctest.Wait()
		if a.state() != "BACKUP" {
			t.Errorf("a is %s after the fault cleared, want BACKUP", a.state())
		}
		// And preempts back as the higher priority, after its down timer.
		time.Sleep(time.Second)
		synctest.Wait()
		if a.state() != "MASTER" || b.state() != "BACKUP" {
			t.Errorf("a %s, b %s after recovery; want a to preempt", a.state(), b.state())
		}
	})
}

func TestInstanceLinkDownIsAFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a := (&hub{}).start(t, ctx, "10.0.0.11", testConfig(100))
		a.SetHealthy(true)
		time.Sleep(time.Second)
		synctest.Wait()
		a.addrs.events <- LinkEvent{Kind: LinkDown}
		synctest.Wait()
		if s := a.Status(); s.State != "FAULT" || !slices.Equal(s.Faults, []string{"link"}) || a.addrs.has() {
			t.Errorf("after link down: %+v, VIPs %v", s, a.addrs.has())
		}
		a.addrs.events <- LinkEvent{Kind: LinkUp}
		time.Sleep(time.Second)
		synctest.Wait()
		if a.state() != "MASTER" || !a.addrs.has() {
			t.Errorf("after link up: %s, VIPs %v", a.state(), a.addrs.has())
		}
	})
}

func TestInstanceStartsInFaultWhenTheLinkIsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		h := &hub{}
		ops := &opLog{}
		cfg := testConfig(100)
		n := &node{conn: h.conn("10.0.0.11", cfg, ops), addrs: &fakeAddrs{log: ops, events: make(chan LinkEvent)}, ops: ops}
		n.Instance = newInstance(cfg, n.conn, n.addrs, newFakeARP(ops), slog.New(slog.NewTextHandler(io.Discard, nil)))
		go n.Run(ctx)
		n.SetHealthy(true)
		time.Sleep(time.Second)
		synctest.Wait()
		if n.state() != "FAULT" || len(ops.take()) > 0 {
			t.Errorf("state %s with the link down at start, want FAULT and nothing sent", n.state())
		}
	})
}

func TestInstanceRestoresADeletedVIP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a := (&hub{}).start(t, ctx, "10.0.0.11", testConfig(100))
		a.SetHealthy(true)
		time.Sleep(time.Second)
		synctest.Wait()
		a.ops.take()
		a.addrs.Remove() // someone else's doing
		a.ops.take()
		a.addrs.events <- LinkEvent{Kind: VIPDeleted, Addr: netip.MustParsePrefix("10.0.0.100/32")}
		synctest.Wait()
		if got := a.ops.take(); !slices.Contains(got, "add") || !slices.Contains(got, "announce 5") || !a.addrs.has() {
			t.Errorf("after the VIP was deleted: ops %q, VIPs %v", got, a.addrs.has())
		}
	})
}

func TestInstanceNeverMasterWhileUnhealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a := (&hub{}).start(t, ctx, "10.0.0.11", testConfig(254))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if a.state() != "BACKUP" || a.addrs.has() {
			t.Fatalf("unhealthy and alone: %s, VIPs %v; want BACKUP without VIPs", a.state(), a.addrs.has())
		}
		a.SetHealthy(true)
		synctest.Wait()
		if a.state() != "MASTER" {
			t.Errorf("healthy after its down timer ran out: %s, want MASTER at once", a.state())
		}
	})
}

// TestInstanceHardStopReleases: when Run's context ends, a master yields
// with priority 0, removes its VIPs, and says so: a STOP change and a
// STOP status, as every transition goes through the machine.
func TestInstanceHardStopReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		a := (&hub{}).start(t, ctx, "10.0.0.11", testConfig(100))
		a.SetHealthy(true)
		time.Sleep(time.Second)
		synctest.Wait()
		a.ops.take()
		cancel()
		if err := <-a.errc; err != nil {
			t.Fatal(err)
		}
		if got, want := a.ops.take(), []string{"send 0", "remove"}; !slices.Equal(got, want) {
			t.Errorf("hard stop: (-want +got)\n-%q\n+%q", want, got)
		}
		checkStopped(t, a)
	})
}

// TestInstanceFailureReleases: a socket that fails ends Run with its
// error, and the master lets go as on a hard stop.
func TestInstanceFailureReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := (&hub{}).start(t, t.Context(), "10.0.0.11", testConfig(100))
		a.SetHealthy(true)
		time.Sleep(time.Second)
		synctest.Wait()
		a.ops.take()
		a.conn.failc <- errors.New("boom")
		if err := <-a.errc; err == nil || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("Run after a receive error = %v, want it", err)
		}
		if got, want := a.ops.take(), []string{"send 0", "remove"}; !slices.Equal(got, want) {
			t.Errorf("failure: (-want +got)\n-%q\n+%q", want, got)
		}
		checkStopped(t, a)
	})
}

// checkStopped checks that a master that was hard-stopped published its
// STOP: the last change, the status, the counters.
func checkStopped(t *testing.T, a *node) {
	t.Helper()
	var last Change
	for len(a.Changes()) > 0 {
		last = <-a.Changes()
	}
	if last.From != Master || last.To != Stopped {
		t.Errorf("last change %v->%v, want MASTER->STOP", last.From, last.To)
	}
	s := a.Status()
	if s.State != "STOP" {
		t.Errorf("status says %s after the hard stop, want STOP", s.State)
	}
	if s.Counters["release_master"] != 1 || s.Counters["priority_zero_sent"] != 1 {
		t.Errorf("counters %v, want release_master and priority_zero_sent 1", s.Counters)
	}
	if n := a.arp.watching.Load(); n != 0 {
		t.Errorf("%d ARP watches still running after Run returned", n)
	}
}

func TestInstanceReportsChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a := (&hub{}).start(t, ctx, "10.0.0.11", testConfig(100))
		a.SetHealthy(true)
		time.Sleep(time.Second)
		a.SetFault("child", true)
		synctest.Wait()
		<-a.Shutdown()
		var got []string
		for len(a.Changes()) > 0 {
			c := <-a.Changes()
			got = append(got, fmt.Sprintf("%s->%s %d", c.From, c.To, c.Priority))
		}
		want := []string{"INIT->BACKUP 100", "BACKUP->MASTER 100", "MASTER->FAULT 100", "FAULT->STOP 100"}
		if !slices.Equal(got, want) {
			t.Errorf("changes: (-want +got)\n-%s\n+%s", strings.Join(want, " "), strings.Join(got, " "))
		}
	})
}

// settledPair starts a (priority 150) and b (100), lets a become master
// and clears what they did so far. It runs inside a synctest bubble.
func settledPair(t *testing.T, ctx context.Context) (a, b *node) {
	h := &hub{}
	a = h.start(t, ctx, "10.0.0.11", testConfig(150))
	b = h.start(t, ctx, "10.0.0.12", testConfig(100))
	a.SetHealthy(true)
	b.SetHealthy(true)
	time.Sleep(time.Second)
	synctest.Wait()
	a.ops.take()
	b.ops.take()
	return a, b
}

func count(ops []string, op string) int {
	n := 0
	for _, o := range ops {
		if o == op {
			n++
		}
	}
	return n
}
