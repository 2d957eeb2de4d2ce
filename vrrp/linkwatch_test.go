package vrrp

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// lwTimeout bounds each wait for an event. Netlink notifications arrive
// asynchronously after the kernel made the change, and the operational
// state of a link is updated by deferred kernel work, so the tests wait on
// real time; the bound turns a lost event into a failure, not a hang.
const lwTimeout = 5 * time.Second

// lwQuiet is how long a test listens to be sure no event comes.
const lwQuiet = 300 * time.Millisecond

func TestLinkEventKindString(t *testing.T) {
	tests := []struct {
		k    linkEventKind
		want string
	}{
		{linkDown, "LinkDown"},
		{linkUp, "LinkUp"},
		{vipDeleted, "VIPDeleted"},
		{primaryChanged, "PrimaryChanged"},
		{0, "LinkEventKind(0)"},
		{99, "LinkEventKind(99)"},
	}
	for _, tc := range tests {
		if got := tc.k.String(); got != tc.want {
			t.Errorf("LinkEventKind(%d).String() (-want +got):\n-%s\n+%s", int(tc.k), tc.want, got)
		}
	}
	ev := linkEvent{Kind: primaryChanged}
	if got, want := ev.String(), "PrimaryChanged none"; got != want {
		t.Errorf("String() (-want +got):\n-%s\n+%s", want, got)
	}
}

// lwWatcher runs Watch on a goroutine of its own, which is outside the
// node's namespace: Watch must subscribe in the namespace of newVIPSet.
type lwWatcher struct {
	events  chan linkEvent
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

func lwStart(t *testing.T, v *vipSet) *lwWatcher {
	t.Helper()
	return lwStartN(t, v, 64)
}

// lwStartN is lwStart with an event channel of the given capacity.
func lwStartN(t *testing.T, v *vipSet, capacity int) *lwWatcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &lwWatcher{events: make(chan linkEvent, capacity), cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- v.Watch(ctx, w.events) }()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop cancels Watch and checks that it returns nil soon. Only the
// first call does anything.
func (w *lwWatcher) stop(t *testing.T) {
	t.Helper()
	if w.stopped {
		return
	}
	w.stopped = true
	w.cancel()
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("Watch returned %v after cancel, want nil", err)
		}
	case <-time.After(lwTimeout):
		t.Errorf("Watch did not return within %v of cancel", lwTimeout)
	}
}

// expect reads the next events and fails unless they are want, in order.
func (w *lwWatcher) expect(t *testing.T, step string, want ...linkEvent) {
	t.Helper()
	var got []linkEvent
	deadline := time.After(lwTimeout)
	for len(got) < len(want) {
		select {
		case ev := <-w.events:
			got = append(got, ev)
			if ev != want[len(got)-1] {
				t.Fatalf("%s: events (-want +got):\n-%v\n+%v", step, want, got)
			}
		case err := <-w.done:
			w.done <- err // for stop
			t.Fatalf("%s: Watch returned %v; events so far %v", step, err, got)
		case <-deadline:
			t.Fatalf("%s: waited %v for events %v, got %v", step, lwTimeout, want, got)
		}
	}
}

// quiet fails if any event arrives within lwQuiet.
func (w *lwWatcher) quiet(t *testing.T, step string) {
	t.Helper()
	select {
	case ev := <-w.events:
		t.Fatalf("%s: unexpected event %v", step, ev)
	case <-time.After(lwQuiet):
	}
}

// collect reads events until done says it has seen enough.
func (w *lwWatcher) collect(t *testing.T, step string, done func([]linkEvent) bool) []linkEvent {
	t.Helper()
	var got []linkEvent
	deadline := time.After(lwTimeout)
	for !done(got) {
		select {
		case ev := <-w.events:
			got = append(got, ev)
		case <-deadline:
			t.Fatalf("%s: waited %v, events %v", step, lwTimeout, got)
		}
	}
	return got
}

func lwVIPDeleted(s string) linkEvent {
	return linkEvent{Kind: vipDeleted, Addr: netip.MustParsePrefix(s)}
}

func lwPrimary(s string) linkEvent {
	if s == "" {
		return linkEvent{Kind: primaryChanged}
	}
	return linkEvent{Kind: primaryChanged, Addr: netip.MustParsePrefix(s)}
}

// TestWatch walks one watcher through every fault it must report. The
// steps build on one another, so they run in order.
func TestWatch(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)
	vips := vipPrefixes("10.77.0.100/32", "10.77.0.101/24", "10.98.0.1/32")
	v := vipNew(t, a, vips...)
	if err := v.Add(); err != nil {
		t.Fatal(err)
	}
	// What a driver learns at start-up; Watch reports changes against it.
	if up, err := v.LinkUp(); err != nil || !up {
		t.Fatalf("LinkUp = %v, %v; want true", up, err)
	}
	if p, err := v.Primary(); err != nil || p != a.Addr {
		t.Fatalf("Primary = %v, %v; want %v", p, err, a.Addr)
	}
	w := lwStart(t, v)
	w.quiet(t, "start, nothing changed")

	a.IfaceDown()
	w.expect(t, "admin down", linkEvent{Kind: linkDown})
	a.IfaceUp()
	w.expect(t, "admin up", linkEvent{Kind: linkUp})
	a.LinkDown()
	w.expect(t, "carrier lost", linkEvent{Kind: linkDown})
	a.LinkUp()
	w.expect(t, "carrier back", linkEvent{Kind: linkUp})
	// The kernel alone keeps IPv4 addresses across a flap.
	if got, err := v.Present(); err != nil || !slices.Equal(got, vips) {
		t.Errorf("Present after flaps = %v, %v; want all VIPs", got, err)
	}

	a.Run("ip", "addr", "del", "10.77.0.100/32", "dev", "eth0")
	w.expect(t, "ip addr del", lwVIPDeleted("10.77.0.100/32"))

	// Primary changes. A new secondary is no change. With
	// promote_secondaries, deleting the primary promotes the first
	// secondary, which is the VIP 10.77.0.101/24: the node's 10.77.0.31
	// stays secondary and is the primary in Primary's sense.
	a.Sysctl("net.ipv4.conf.eth0.promote_secondaries", "1")
	a.Run("ip", "addr", "add", "10.77.0.31/24", "dev", "eth0")
	w.quiet(t, "secondary added")
	a.Run("ip", "addr", "del", a.Addr.String(), "dev", "eth0")
	w.expect(t, "primary deleted", lwPrimary("10.77.0.31/24"))
	a.Run("ip", "addr", "del", "10.77.0.31/24", "dev", "eth0")
	w.expect(t, "last address deleted", lwPrimary(""))
	a.Run("ip", "addr", "add", a.Addr.String(), "dev", "eth0")
	w.expect(t, "address back", lwPrimary(a.Addr.String()))

	// A flap as a network manager handles it: the carrier goes, the
	// addresses are flushed, the own address comes back, then the carrier.
	// Link and address updates come on two sockets, so their order
	// between each other is not fixed.
	if err := v.Add(); err != nil {
		t.Fatal(err)
	}
	w.quiet(t, "VIPs added")
	a.LinkDown()
	a.Run("ip", "addr", "flush", "dev", "eth0")
	a.Run("ip", "addr", "add", a.Addr.String(), "dev", "eth0")
	a.LinkUp()
	// Whether the primary is seen to go depends on when Watch asks for
	// it; it must end as it began.
	got := w.collect(t, "flap with flush", func(evs []linkEvent) bool {
		deleted, up, primary := 0, false, a.Addr
		for _, ev := range evs {
			switch ev.Kind {
			case vipDeleted:
				deleted++
			case linkUp:
				up = true
			case primaryChanged:
				primary = ev.Addr
			}
		}
		return deleted == len(vips) && up && primary == a.Addr
	})
	t.Logf("flap with flush: %v", got)
	for _, p := range vips {
		if !slices.Contains(got, linkEvent{Kind: vipDeleted, Addr: p}) {
			t.Errorf("flap with flush: no VIPDeleted for %s in %v", p, got)
		}
	}
	if down := slices.Index(got, linkEvent{Kind: linkDown}); down < 0 || down > slices.Index(got, linkEvent{Kind: linkUp}) {
		t.Errorf("flap with flush: want LinkDown before LinkUp in %v", got)
	}
	w.quiet(t, "after flap")

	// The watcher's own process removing the VIPs is reported too.
	if err := v.Add(); err != nil {
		t.Fatal(err)
	}
	if err := v.Remove(); err != nil {
		t.Fatal(err)
	}
	w.expect(t, "own Remove", lwVIPDeleted(vips[0].String()), lwVIPDeleted(vips[1].String()), lwVIPDeleted(vips[2].String()))
	w.quiet(t, "end")
	w.stop(t)
}

// TestWatchStart checks what Watch reports first, against what LinkUp and
// Primary told the caller.
func TestWatchStart(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)

	// Nothing asked: Watch reports the current state.
	v := vipNew(t, a)
	w := lwStart(t, v)
	w.expect(t, "nothing asked", linkEvent{Kind: linkUp}, lwPrimary(a.Addr.String()))
	w.quiet(t, "nothing asked")
	w.stop(t)

	// Changed since asked: Watch reports the change, so nothing falls
	// between start-up and the subscription.
	v = vipNew(t, a)
	if up, err := v.LinkUp(); err != nil || !up {
		t.Fatalf("LinkUp = %v, %v; want true", up, err)
	}
	if _, err := v.Primary(); err != nil {
		t.Fatal(err)
	}
	a.LinkDown()
	a.Run("ip", "addr", "del", a.Addr.String(), "dev", "eth0")
	w = lwStart(t, v)
	w.expect(t, "changed since asked", linkEvent{Kind: linkDown}, lwPrimary(""))
	w.quiet(t, "changed since asked")
	w.stop(t)

	// A Watch whose reader has stopped still ends on cancel.
	w = lwStartN(t, v, 0)
	a.LinkUp()
	a.LinkDown()
	a.LinkUp()
	w.stop(t)
}

func TestWatchClosed(t *testing.T) {
	// A closed VIPs cannot subscribe; Watch must say so, not hang.
	v, err := newVIPSet("lo", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	err = v.Watch(context.Background(), make(chan linkEvent, 1))
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Watch on a closed VIPs = %v, want an error", err)
	}
	t.Log(err)
}

// TestWatchLoopback runs Watch in the test's own namespace, as production
// does, where subscribing needs no setns(2) and no privilege. It only
// reads: the loopback interface is up with 127.0.0.1/8 on any Linux host.
func TestWatchLoopback(t *testing.T) {
	v, err := newVIPSet("lo", nil, vipTestLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	w := lwStart(t, v)
	w.expect(t, "start", linkEvent{Kind: linkUp}, lwPrimary("127.0.0.1/8"))
	w.stop(t)
}
