package vrrp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// These tests run the driver against fakes of its I/O in a synctest
// bubble: time is virtual, so the protocol's timers are checked to the
// millisecond without waiting for them. The real socket, addresses and
// ARP are checked in their own tests and end to end.

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
		// reaches a, which lets go one interval later, when clients have
		// b's gratuitous ARP.
		if took != 160*time.Millisecond {
			t.Errorf("handover took %v, want b's skew time and one interval, 160ms", took)
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
		a.addrs.events <- linkEvent{Kind: linkDown}
		synctest.Wait()
		if s := a.Status(); s.State != "FAULT" || !slices.Equal(s.Faults, []string{"link"}) || a.addrs.has() {
			t.Errorf("after link down: %+v, VIPs %v", s, a.addrs.has())
		}
		a.addrs.events <- linkEvent{Kind: linkUp}
		time.Sleep(time.Second)
		synctest.Wait()
		if a.state() != "MASTER" || !a.addrs.has() {
			t.Errorf("after link up: %s, VIPs %v", a.state(), a.addrs.has())
		}
	})
}

// TestInstanceFollowsThePrimaryAddress: after a re-address, reported by the
// link watcher, the socket sends from the new address and the machine
// names it as master; the backup sees the master's new address.
func TestInstanceFollowsThePrimaryAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		h := &hub{}
		a := h.start(t, ctx, "10.0.0.11", testConfig(150))
		b := h.start(t, ctx, "10.0.0.12", testConfig(100))
		a.SetHealthy(true)
		b.SetHealthy(true)
		time.Sleep(time.Second)
		synctest.Wait()
		if a.state() != "MASTER" || b.Status().Master != "10.0.0.11" {
			t.Fatalf("a %s, b's master %q; want a master at 10.0.0.11", a.state(), b.Status().Master)
		}
		a.ops.take()
		a.addrs.events <- linkEvent{Kind: primaryChanged, Addr: netip.MustParsePrefix("10.0.0.13/24")}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if got := a.ops.take(); !slices.Contains(got, "primary 10.0.0.13") {
			t.Errorf("a's socket not given the new address: %q", got)
		}
		if s := a.Status(); s.Primary != "10.0.0.13" || s.Master != "10.0.0.13" || s.State != "MASTER" {
			t.Errorf("a after the re-address: primary %q, master %q, %s; want 10.0.0.13, 10.0.0.13, MASTER", s.Primary, s.Master, s.State)
		}
		if m := b.Status().Master; m != "10.0.0.13" {
			t.Errorf("b sees master %q, want a's new address 10.0.0.13", m)
		}
		// The same address again (Watch reports what it first sees) is no change.
		a.addrs.events <- linkEvent{Kind: primaryChanged, Addr: netip.MustParsePrefix("10.0.0.13/24")}
		synctest.Wait()
		if got := a.ops.take(); slices.ContainsFunc(got, func(op string) bool { return strings.HasPrefix(op, "primary") }) {
			t.Errorf("an unchanged address set again: %q", got)
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
		n := &node{conn: h.conn("10.0.0.11", cfg, ops), addrs: &fakeAddrs{log: ops, events: make(chan linkEvent)}, ops: ops}
		n.instance = newInstance(cfg, n.conn, n.addrs, newFakeARP(ops), slog.New(slog.NewTextHandler(io.Discard, nil)))
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
		dropped := a.addrs.dropped()
		a.addrs.events <- linkEvent{Kind: vipDeleted, Addr: netip.MustParsePrefix("10.0.0.100/32")}
		synctest.Wait()
		time.Sleep(2 * staleGrace)
		synctest.Wait()
		// Its connections live on: the kernel keeps them while the
		// address is away.
		if n := a.addrs.dropped(); n != dropped {
			t.Errorf("a master restoring its VIP destroyed the sockets on it")
		}
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

// TestInstanceDropsStaleSocketsOffTheTakeover: the sockets left on the
// VIPs are destroyed at start-up and staleGrace after a yield, while the
// node is not master, so that a takeover does not wait for them; a node
// that preempts back within the grace destroys them as it takes over.
func TestInstanceDropsStaleSocketsOffTheTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a, b := settledPair(t, ctx)
		if a.addrs.dropped() != 1 || b.addrs.dropped() != 1 {
			t.Fatalf("after start-up: dropped on a %d times, on b %d; want once each", a.addrs.dropped(), b.addrs.dropped())
		}
		if a.state() != "MASTER" {
			t.Fatalf("a is %s, want MASTER", a.state())
		}
		// Becoming master with nothing left from a mastership drops
		// nothing more.
		if a.addrs.dropped() != 1 {
			t.Errorf("a dropped %d times by becoming master, want once (at start-up)", a.addrs.dropped())
		}

		a.SetFault("child", true)
		synctest.Wait()
		time.Sleep(staleGrace - time.Millisecond)
		synctest.Wait()
		if n := a.addrs.dropped(); n != 1 {
			t.Errorf("a dropped %d times within the grace after its yield, want 1", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if n := a.addrs.dropped(); n != 2 {
			t.Errorf("a dropped %d times after the grace, want 2", n)
		}

		// A quick return: a yields again and preempts back before the
		// grace has passed.
		a.SetFault("child", false)
		time.Sleep(time.Second)
		synctest.Wait()
		if a.state() != "MASTER" {
			t.Fatalf("a is %s after recovery, want MASTER", a.state())
		}
		a.SetFault("child", true)
		synctest.Wait()
		a.SetFault("child", false)
		time.Sleep(staleGrace / 2)
		synctest.Wait()
		if a.state() != "MASTER" {
			t.Fatalf("a is %s, want MASTER again within the grace", a.state())
		}
		if n := a.addrs.dropped(); n != 3 {
			t.Errorf("a dropped %d times by preempting back within the grace, want 3", n)
		}
		// The drop is a dump of every TCP socket, milliseconds on a busy
		// host: it comes after the takeover's advert and before the VIPs
		// are added, so that no connection to them is taken for stale.
		if got, want := a.addrs.droppedAfter(), "send 150"; got != want {
			t.Errorf("the takeover's drop came after %q, want right after the advert (%q)", got, want)
		}
		// And not again once the grace would have passed.
		time.Sleep(staleGrace)
		synctest.Wait()
		if n := a.addrs.dropped(); n != 3 {
			t.Errorf("a, master, dropped %d times after the grace, want 3", n)
		}
	})
}
