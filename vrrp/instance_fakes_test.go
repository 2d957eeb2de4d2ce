package vrrp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The fakes of the driver's I/O that the synctest tests of the Instance
// run against (instance_test.go, instance_reliability_test.go), in the
// driver's own verbs: a LAN of fake sockets, addresses and ARP.

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

func (c *fakeConn) Primary() netip.Addr {
	c.hub.mu.Lock()
	defer c.hub.mu.Unlock()
	return c.primary
}
func (c *fakeConn) SetPrimary(a netip.Addr) {
	c.log.add("primary " + a.String())
	c.hub.mu.Lock()
	c.primary = a
	c.hub.mu.Unlock()
}
func (c *fakeConn) CheckInterface() error    { return nil }
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
func (l *opLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ops) == 0 {
		return ""
	}
	return l.ops[len(l.ops)-1]
}
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
	events  chan linkEvent
	drops   int // DropStaleSockets calls
	// dropAfter is the operation logged last before the latest call.
	dropAfter string
}

func (a *fakeAddrs) DropStaleSockets() {
	last := a.log.last()
	a.mu.Lock()
	a.drops++
	a.dropAfter = last
	a.mu.Unlock()
}

// droppedAfter returns what the last DropStaleSockets call came after.
func (a *fakeAddrs) droppedAfter() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dropAfter
}
func (a *fakeAddrs) dropped() int { a.mu.Lock(); defer a.mu.Unlock(); return a.drops }
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
func (a *fakeAddrs) Watch(ctx context.Context, out chan<- linkEvent) error {
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
	conflicts chan addressConflict // what Watch reports, while it runs
	watching  atomic.Int32         // Watch calls running
}

func newFakeARP(log *opLog) *fakeARP {
	return &fakeARP{log: log, conflicts: make(chan addressConflict)}
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

func (f *fakeARP) Watch(ctx context.Context, out chan<- addressConflict) error {
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
	*instance
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
	n := h.prepare(primary, cfg)
	go func() { n.errc <- n.Run(ctx) }()
	return n
}

// prepare makes a node on the hub without running it.
func (h *hub) prepare(primary string, cfg *Config) *node {
	ops := &opLog{}
	n := &node{conn: h.conn(primary, cfg, ops), addrs: &fakeAddrs{log: ops, up: true, events: make(chan linkEvent, 8)},
		arp: newFakeARP(ops), ops: ops, errc: make(chan error, 1)}
	n.instance = newInstance(cfg, n.conn, n.addrs, n.arp, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return n
}

func (n *node) state() string { return n.Status().State }

// runtimeTimer is the loop timer of this package's tests: synctest's fake
// clock moves runtime timers, never a timerfd. The fdTimer the daemon
// runs has its own tests (fdtimer_test.go) and runs in the end-to-end
// ones.
type runtimeTimer struct{ t *time.Timer }

func init() {
	newLoopTimer = func() (loopTimer, error) {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return runtimeTimer{t}, nil
	}
}

func (r runtimeTimer) Chan() <-chan time.Time { return r.t.C }
func (r runtimeTimer) Reset(d time.Duration)  { r.t.Reset(d) }
func (r runtimeTimer) Stop()                  { r.t.Stop() }
func (r runtimeTimer) Close() error           { r.t.Stop(); return nil }
