package vrrp

import (
	"context"
	"maps"
	"net"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// These tests drive the Instance as an attacker and an unlucky network
// would, in a synctest bubble like instance_test.go: forged adverts from
// an address no instance owns (hub.forge), a VIP answered by another MAC
// address (fakeARP.conflicts).

// forger is the source address of forged adverts.
const forger = "10.0.0.66"

// aloneMaster starts a (priority 100, advert 100 ms) on a hub of its own,
// lets it become master and send its second burst, and clears what it
// did so far.
func aloneMaster(t *testing.T, ctx context.Context) (*hub, *node) {
	h := &hub{}
	a := h.start(t, ctx, "10.0.0.11", testConfig(100))
	a.SetHealthy(true)
	time.Sleep(time.Second + secondBurst) // past the second burst
	synctest.Wait()
	if a.state() != "MASTER" {
		t.Fatalf("a alone is %s, want MASTER", a.state())
	}
	a.ops.take()
	return h, a
}

// flood forges n adverts of priority prio, one per millisecond.
func flood(h *hub, n int, prio uint8) {
	for range n {
		h.forge(forger, prio, 100*time.Millisecond)
		time.Sleep(time.Millisecond)
	}
	synctest.Wait()
}

// TestInstanceDoesNotAmplifyAFlood: a thousand forged adverts in a second,
// of lower priority and of priority 0, cost no more adverts than the
// master sends anyway (one per 100 ms), answers to the lower priority
// come at most once per interval but in every one, and every advert is
// counted.
func TestInstanceDoesNotAmplifyAFlood(t *testing.T) {
	for _, tc := range []struct {
		name  string
		prio  uint8
		lower bool // lower priority: a split brain, answered with gratuitous ARP
	}{
		{name: "lower priority", prio: 50, lower: true},
		{name: "priority 0", prio: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				h, a := aloneMaster(t, ctx)
				before := a.Status().Counters
				const n = 1000 // one second
				flood(h, n, tc.prio)

				ops := a.ops.take()
				c := delta(before, a.Status().Counters)
				sends, announces := count(ops, "send 100"), count(ops, "announce 5")
				// One per 100 ms in a second, and one more at an end.
				const most = 11
				if sends > most {
					t.Errorf("%d adverts sent during the flood, want at most %d", sends, most)
				}
				switch {
				case tc.lower && (announces > most || announces < most-2):
					t.Errorf("%d announcements during the flood, want one per 100ms", announces)
				case !tc.lower && announces != 0:
					t.Errorf("%d announcements answering priority 0, want none", announces)
				}
				want := map[string]uint64{"adverts_received": n, "adverts_sent": uint64(sends), "announcements": uint64(announces)}
				if tc.lower {
					want["split_brain"] = n
				} else {
					want["priority_zero_received"] = n
				}
				for k, v := range want {
					if c[k] != v {
						t.Errorf("counter %s went up by %d, want %d (all: %v)", k, c[k], v, c)
					}
				}
				if s := c["answers_suppressed"]; s < n-most || s >= n {
					t.Errorf("%d of %d adverts counted as not answered at once, want all but one per 100ms", s, n)
				}
				if a.state() != "MASTER" {
					t.Errorf("a is %s after the flood, want MASTER", a.state())
				}
			})
		})
	}
}

// TestInstancePriorityZeroFloodDoesNotMoveTheVIP: forged priority-0
// adverts from a router other than the master do not make the backup take
// over a Skew_Time after one. Sent every 90 ms, just under the interval,
// most of them fall while the master's answer is suppressed.
func TestInstancePriorityZeroFloodDoesNotMoveTheVIP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a, b := settledPair(t, ctx)
		for range 30 {
			a.conn.hub.forge(forger, 0, 100*time.Millisecond)
			time.Sleep(90 * time.Millisecond)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if a.state() != "MASTER" || b.state() != "BACKUP" || b.Status().Counters["become_master"] != 0 {
			t.Errorf("after the flood a is %s, b %s (became master %d times); want MASTER, BACKUP, never",
				a.state(), b.state(), b.Status().Counters["become_master"])
		}
	})
}

// TestInstanceCounterNames: the counters are the contract's set, each
// present from the start, and they count a takeover.
func TestInstanceCounterNames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		h := &hub{}
		a := h.start(t, ctx, "10.0.0.11", testConfig(150))
		want := []string{"adverts_received", "adverts_sent", "announcements", "answers_suppressed", "become_master",
			"interval_mismatch", "priority_zero_received", "priority_zero_sent", "release_master", "split_brain"}
		if got := slices.Sorted(maps.Keys(a.Status().Counters)); !slices.Equal(got, want) {
			t.Errorf("counter names (-want +got):\n-%q\n+%q", want, got)
		}
		b := h.start(t, ctx, "10.0.0.12", testConfig(100))
		a.SetHealthy(true)
		b.SetHealthy(true)
		time.Sleep(time.Second)
		synctest.Wait()
		ca, cb := a.Status().Counters, b.Status().Counters
		if ca["become_master"] != 1 || ca["announcements"] != 1 || ca["adverts_sent"] != uint64(count(a.ops.take(), "send 150")) {
			t.Errorf("master's counters %v", ca)
		}
		if cb["become_master"] != 0 || cb["adverts_received"] != ca["adverts_sent"] || cb["adverts_sent"] != 0 {
			t.Errorf("backup's counters %v, master's %v", cb, ca)
		}
	})
}

// TestInstanceRepeatsTheSplitBrainAnswer: a master that hears another
// master answers with an advert and an announcement at once, announces
// again 1.1 s later, and reports the split brain in its status.
func TestInstanceRepeatsTheSplitBrainAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		h, a := aloneMaster(t, ctx)
		heard := time.Now()
		h.forge(forger, 50, 100*time.Millisecond)
		synctest.Wait()
		if got, want := a.ops.take(), []string{"send 100", "announce 5"}; !slices.Equal(got, want) {
			t.Errorf("answer: (-want +got)\n-%q\n+%q", want, got)
		}
		s := a.Status()
		if s.SplitBrain != 1 || s.SplitBrainWith != forger || !s.SplitBrainAt.Equal(heard) {
			t.Errorf("status: split brain %d with %q at %v, want 1 with %s at %v", s.SplitBrain, s.SplitBrainWith, s.SplitBrainAt, forger, heard)
		}
		time.Sleep(splitBrainRepeat - time.Millisecond)
		synctest.Wait()
		if n := count(a.ops.take(), "announce 5"); n != 0 {
			t.Errorf("%d announcements before the repeat was due", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if n := count(a.ops.take(), "announce 5"); n != 1 {
			t.Errorf("%d announcements 1.1s after the answer, want the repeat", n)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := count(a.ops.take(), "announce 5"); n != 0 {
			t.Errorf("%d announcements later, want the repeat only once", n)
		}
	})
}

// TestInstanceHandsOverWhenSteppingDown: a master that hears a higher
// priority removes its VIPs, then announces them for the new master,
// whose address it passes with its own primary to resolve it.
func TestInstanceHandsOverWhenSteppingDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		h, a := aloneMaster(t, ctx)
		before := a.Status().Counters
		h.forge(forger, 200, 100*time.Millisecond)
		synctest.Wait()
		want := []string{"remove", "hand over to 10.0.0.66 from 10.0.0.11"}
		if got := a.ops.take(); !slices.Equal(got, want) {
			t.Errorf("stepping down: (-want +got)\n-%q\n+%q", want, got)
		}
		c := delta(before, a.Status().Counters)
		if a.state() != "BACKUP" || c["release_master"] != 1 || c["announcements"] != 1 || c["split_brain"] != 1 {
			t.Errorf("a is %s, counters went up by %v", a.state(), c)
		}
		if n := a.arp.watching.Load(); n != 0 {
			t.Errorf("%d ARP watches running in BACKUP", n)
		}
	})
}

// TestInstanceAnswersAVIPAnsweredElsewhere: while master, and only then,
// the instance watches ARP; a VIP claimed by another MAC address is a
// split brain, answered at most once per interval, and with an
// announcement only the first time in a term (no ARP war).
func TestInstanceAnswersAVIPAnsweredElsewhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		_, a := aloneMaster(t, ctx)
		if n := a.arp.watching.Load(); n != 1 {
			t.Fatalf("%d ARP watches running as master, want 1", n)
		}
		other := net.HardwareAddr{2, 0, 0, 0, 0, 0x99}
		claim := addressConflict{VIP: netip.MustParseAddr("10.0.0.100"), MAC: other}
		a.arp.conflicts <- claim
		synctest.Wait()
		if got, want := a.ops.take(), []string{"send 100", "announce 5"}; !slices.Equal(got, want) {
			t.Errorf("answer to the conflict: (-want +got)\n-%q\n+%q", want, got)
		}
		a.arp.conflicts <- claim
		synctest.Wait()
		if got := a.ops.take(); len(got) != 0 {
			t.Errorf("second conflict within the interval answered: %q", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		a.ops.take()
		a.arp.conflicts <- claim
		synctest.Wait()
		if got, want := a.ops.take(), []string{"send 100"}; !slices.Equal(got, want) {
			t.Errorf("answer to a later conflict: (-want +got)\n-%q\n+%q", want, got)
		}
		s := a.Status()
		if s.SplitBrain != 3 || s.SplitBrainWith != other.String() || s.Counters["answers_suppressed"] != 1 {
			t.Errorf("status: split brain %d with %q, counters %v", s.SplitBrain, s.SplitBrainWith, s.Counters)
		}
	})
}

// TestInstanceOneForgedAdvertDoesNotSilenceTheVIP: one advert of priority
// 254 that claims an interval of 40.95 s makes the master step down, but
// it is master again within its own Master_Down_Interval (340 ms) plus a
// second, not after 123 s.
func TestInstanceOneForgedAdvertDoesNotSilenceTheVIP(t *testing.T) {
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
		forged := time.Now()
		h.forge(forger, 254, 4095*centisecond)
		synctest.Wait()
		if a.state() != "BACKUP" || b.state() != "BACKUP" {
			t.Fatalf("after the forged advert a is %s, b %s; want both BACKUP", a.state(), b.state())
		}
		for a.state() != "MASTER" && time.Since(forged) < 5*time.Second {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
		}
		// Promise: the configured Master_Down_Interval plus one second.
		if took := time.Since(forged); took > 1340*time.Millisecond+10*time.Millisecond {
			t.Errorf("a master again %v after the forged advert, want within 1.34s", took)
		}
		if !a.addrs.has() || b.addrs.has() || b.state() != "BACKUP" {
			t.Errorf("VIPs on a %v, on b %v; b is %s", a.addrs.has(), b.addrs.has(), b.state())
		}
		for _, n := range []*node{a, b} {
			if got := n.Status().Counters["interval_mismatch"]; got != 1 {
				t.Errorf("%s counted %d interval mismatches, want 1", n.conn.primary, got)
			}
		}
	})
}

// delta returns after - before for every counter.
func delta(before, after map[string]uint64) map[string]uint64 {
	d := make(map[string]uint64, len(after))
	for k, v := range after {
		d[k] = v - before[k]
	}
	return d
}
