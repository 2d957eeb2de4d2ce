package supervisor

import "time"

// The driver loop times everything it times (the policy's deadlines, the
// systemd watchdog, the times in Status) with the clock in Supervisor's
// now and newTimer fields. New sets the real clock; tests replace it, or
// run the loop inside a testing/synctest bubble, so that a backoff of
// minutes is checked in no time and to the nanosecond.

// timer is a one-shot timer as the loop uses it; a *time.Timer is the real
// one.
type timer interface {
	// C delivers the time when the timer fires.
	C() <-chan time.Time
	// Reset makes the timer fire after d, whether it ran or not.
	Reset(d time.Duration) bool
	// Stop keeps the timer from firing.
	Stop() bool
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
func (r realTimer) Stop() bool                 { return r.t.Stop() }

// newRealTimer is the real timer constructor.
func newRealTimer(d time.Duration) timer { return realTimer{time.NewTimer(d)} }
