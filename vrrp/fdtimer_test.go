package vrrp

import (
	"testing"
	"time"
)

func newTestTimer(t *testing.T) *fdTimer {
	t.Helper()
	timer, err := newFDTimer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { timer.Close() })
	return timer
}

// The machine relies on a fire never coming before the deadline it was
// armed for: it ignores an early one, and would then wait for no other.
func TestFDTimerFiresNotBeforeItsDeadline(t *testing.T) {
	timer := newTestTimer(t)
	for _, d := range []time.Duration{-time.Second, 0, time.Nanosecond, 3 * time.Millisecond, 20 * time.Millisecond} {
		deadline := time.Now().Add(d)
		timer.Reset(time.Until(deadline))
		select {
		case now := <-timer.C:
			if now.Before(deadline) {
				t.Errorf("Reset(%v) fired %v before its deadline", d, deadline.Sub(now))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Reset(%v) never fired", d)
		}
	}
}

func TestFDTimerStopAndResetDropTheEarlierFire(t *testing.T) {
	timer := newTestTimer(t)
	timer.Reset(time.Millisecond)
	time.Sleep(20 * time.Millisecond) // fired, its fire waiting in C
	timer.Stop()
	select {
	case <-timer.C:
		t.Fatal("a stopped timer delivered the fire it had before Stop")
	case <-time.After(50 * time.Millisecond):
	}

	timer.Reset(time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	deadline := time.Now().Add(30 * time.Millisecond)
	timer.Reset(time.Until(deadline))
	now := <-timer.C
	if now.Before(deadline) {
		t.Fatalf("after Reset, C delivered the earlier fire, %v before the new deadline", deadline.Sub(now))
	}
}

func TestFDTimerAfterClose(t *testing.T) {
	timer, err := newFDTimer()
	if err != nil {
		t.Fatal(err)
	}
	if err := timer.Close(); err != nil {
		t.Fatal(err)
	}
	timer.Reset(time.Millisecond) // must neither panic nor fire
	timer.Stop()
	select {
	case <-timer.C:
		t.Fatal("a closed timer fired")
	case <-time.After(30 * time.Millisecond):
	}
}
