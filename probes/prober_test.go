package probes

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The Prober's tests run in synctest bubbles: time is fake, so a round
// that waits a second takes no real time and every timestamp is exact.

// fakeProbe passes or fails as the test sets it, after an optional delay.
type fakeProbe struct {
	name  string
	fail  atomic.Pointer[string]        // nil: pass
	delay atomic.Int64                  // how long a check takes, in ns
	hang  atomic.Bool                   // wait for ctx, then fail
	stuck atomic.Pointer[chan struct{}] // if set, ignore ctx and wait for it
	calls atomic.Int64
}

func newFake(name string) *fakeProbe { return &fakeProbe{name: name} }

func (f *fakeProbe) Name() string { return "fake " + f.name }

func (f *fakeProbe) setFail(reason string) { f.fail.Store(&reason) }
func (f *fakeProbe) setPass()              { f.fail.Store(nil) }

func (f *fakeProbe) Check(ctx context.Context) Result {
	start := time.Now()
	f.calls.Add(1)
	if stuck := f.stuck.Load(); stuck != nil {
		<-*stuck
		return fail(start, "released")
	}
	if f.hang.Load() {
		<-ctx.Done()
		return fail(start, timeoutReason(ctx, start))
	}
	if d := time.Duration(f.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return fail(start, timeoutReason(ctx, start))
		}
	}
	if r := f.fail.Load(); r != nil {
		return fail(start, *r)
	}
	return pass(start)
}

// syncBuffer is a bytes.Buffer for a logger that writes from Run's
// goroutine while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs a Prober in the current bubble and stops it, checking that
// Run returns, when the test ends.
type harness struct {
	t     *testing.T
	p     *Prober
	out   chan Verdict
	start time.Time
	log   *syncBuffer
}

func runProber(t *testing.T, probes []Probe, interval, timeout time.Duration, rise, fall int) *harness {
	t.Helper()
	h := &harness{t: t, out: make(chan Verdict), start: time.Now(), log: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.p = NewProber(probes, interval, timeout, rise, fall, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.p.Run(ctx, h.out)
	}()
	t.Cleanup(func() {
		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Error("Run did not return after its context was cancelled")
		}
	})
	return h
}

// next returns the next verdict and when it came, relative to the start;
// it fails the test if none comes within a minute of fake time.
func (h *harness) next() (Verdict, time.Duration) {
	h.t.Helper()
	select {
	case v := <-h.out:
		if got := time.Since(h.start); v.At.Sub(h.start) != got {
			h.t.Errorf("verdict At = %v, received at %v", v.At.Sub(h.start), got)
		}
		return v, v.At.Sub(h.start)
	case <-time.After(time.Minute):
		h.t.Fatal("no verdict within a minute")
		return Verdict{}, 0
	}
}

// want checks the next verdict.
func (h *harness) want(healthy bool, at time.Duration, reason string) {
	h.t.Helper()
	v, got := h.next()
	if v.Healthy != healthy || got != at || v.Reason != reason {
		h.t.Errorf("verdict (-want +got):\n-{Healthy:%v At:+%v Reason:%q}\n+{Healthy:%v At:+%v Reason:%q}",
			healthy, at, reason, v.Healthy, got, v.Reason)
	}
}

// quiet checks that no verdict comes before fake time reaches at.
func (h *harness) quiet(until time.Duration) {
	h.t.Helper()
	select {
	case v := <-h.out:
		h.t.Errorf("unexpected verdict at +%v: %+v", v.At.Sub(h.start), v)
	case <-time.After(until - time.Since(h.start)):
	}
}

// sleepUntil advances fake time to start+at and lets the Prober settle.
func (h *harness) sleepUntil(at time.Duration) {
	time.Sleep(at - time.Since(h.start))
	synctest.Wait()
}

func TestProberRiseAndFall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFake("a")
		h := runProber(t, []Probe{a}, time.Second, 500*time.Millisecond, 2, 3)
		// Rounds at 0s and 1s pass: healthy after the second.
		h.want(true, time.Second, "probes passed 2 rounds in a row")
		a.setFail("boom")
		// Rounds at 2s, 3s, 4s fail: unhealthy after the third.
		h.want(false, 4*time.Second, "fake a: boom")
		h.quiet(9500 * time.Millisecond)
		if got := a.calls.Load(); got != 10 {
			t.Errorf("%d checks by 9.5s, want 10 (one a second from 0s)", got)
		}
	})
}

func TestProberFirstRoundAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := runProber(t, []Probe{newFake("a")}, time.Hour, time.Second, 1, 1)
		h.want(true, 0, "probes passed")
	})
}

func TestProberNoProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := runProber(t, nil, time.Second, time.Second, 2, 2)
		h.want(true, time.Second, "probes passed 2 rounds in a row")
	})
}

func TestProberLogsEveryFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newFake("a"), newFake("b")
		a.setFail("connection refused")
		b.setFail("status 503")
		h := runProber(t, []Probe{a, b}, time.Second, time.Second, 1, 1)
		h.quiet(2500 * time.Millisecond) // rounds at 0s, 1s, 2s
		log := h.log.String()
		for _, want := range []string{
			`level=WARN msg="probe failed" probe="fake a" reason="connection refused"`,
			`level=WARN msg="probe failed" probe="fake b" reason="status 503"`,
		} {
			if n := strings.Count(log, want); n != 3 {
				t.Errorf("%d lines %s, want 3; log:\n%s", n, want, log)
			}
		}
		// Both probes fail in the verdict's reason, in order.
		a.setPass()
		b.setPass()
		h.want(true, 3*time.Second, "probes passed")
		a.setFail("connection refused")
		b.setFail("status 503")
		h.want(false, 4*time.Second, "fake a: connection refused; fake b: status 503")
	})
}

// TestProberConcurrent: two probes of a second each make a round of a
// second, not two.
func TestProberConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newFake("a"), newFake("b")
		a.delay.Store(int64(time.Second))
		b.delay.Store(int64(time.Second))
		h := runProber(t, []Probe{a, b}, 5*time.Second, 3*time.Second, 1, 1)
		h.want(true, time.Second, "probes passed")
	})
}

// TestProberSlowRound: a round longer than the interval delays the next
// one instead of overlapping it.
func TestProberSlowRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFake("a")
		a.delay.Store(int64(1500 * time.Millisecond))
		h := runProber(t, []Probe{a}, time.Second, 2*time.Second, 2, 1)
		// Rounds run 0-1.5s and 1.5-3s.
		h.want(true, 3*time.Second, "probes passed 2 rounds in a row")
	})
}

func TestProberHangingProbeCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFake("a")
		h := runProber(t, []Probe{a}, time.Second, 300*time.Millisecond, 1, 1)
		h.want(true, 0, "probes passed")
		a.hang.Store(true)
		h.want(false, 1300*time.Millisecond, "fake a: timeout after 300ms")
	})
}

// TestProberStuckProbe: a probe that ignores its deadline is given up on
// shortly after it, and is not started again while it still runs.
func TestProberStuckProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFake("a")
		h := runProber(t, []Probe{a}, time.Second, 300*time.Millisecond, 1, 1)
		h.want(true, 0, "probes passed")
		stuck := make(chan struct{})
		a.stuck.Store(&stuck)
		h.want(false, 1300*time.Millisecond+cutGrace, "fake a: did not return within timeout 300ms")
		h.sleepUntil(3500 * time.Millisecond) // rounds at 2s and 3s
		log := h.log.String()
		if n := strings.Count(log, `reason="still running since an earlier round"`); n != 2 {
			t.Errorf("%d rounds found the probe still running, want 2; log:\n%s", n, log)
		}
		if got := a.calls.Load(); got != 2 {
			t.Errorf("%d checks, want 2: a stuck probe must not be started again", got)
		}
		close(stuck) // so that Run, which waits for its checks, can return
	})
}

// TestProberResetCounts: a Reset between rounds starts the rise over.
func TestProberResetCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFake("a")
		h := runProber(t, []Probe{a}, time.Second, 500*time.Millisecond, 2, 1)
		h.sleepUntil(500 * time.Millisecond) // one pass counted
		h.p.Reset()
		h.want(true, 2*time.Second, "probes passed 2 rounds in a row")
		// Healthy, then Reset: unhealthy without a verdict, and rise
		// passes are needed again.
		h.sleepUntil(2500 * time.Millisecond)
		h.p.Reset()
		h.want(true, 4*time.Second, "probes passed 2 rounds in a row")
	})
}

// TestProberResetDiscardsRound: a round in progress at Reset is not
// counted.
func TestProberResetDiscardsRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFake("a")
		a.delay.Store(int64(time.Second))
		h := runProber(t, []Probe{a}, time.Second, 2*time.Second, 1, 1)
		h.sleepUntil(500 * time.Millisecond) // during the first round
		h.p.Reset()
		// The round 0-1s is discarded; the next, 1-2s, counts.
		h.want(true, 2*time.Second, "probes passed")
		if log := h.log.String(); !strings.Contains(log, "probe round discarded") {
			t.Errorf("no log of the discarded round; log:\n%s", log)
		}
	})
}

// TestProberResetWithdrawsVerdict: a verdict decided but not yet received
// when Reset is called is never received, even when the goroutine that
// receives verdicts is the one that calls Reset.
func TestProberResetWithdrawsVerdict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFake("a")
		h := runProber(t, []Probe{a}, time.Second, 500*time.Millisecond, 1, 1)
		synctest.Wait() // the first round passed; its verdict waits on out
		h.p.Reset()
		h.want(true, time.Second, "probes passed")
	})
}

// TestProberStops: Run returns when its context ends, also in the middle
// of a round, and leaves no goroutine behind (synctest.Test fails if one
// is left blocked in the bubble).
func TestProberStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newFake("a"), newFake("b")
		b.hang.Store(true)
		p := NewProber([]Probe{a, b}, time.Second, time.Hour, 1, 1, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.Run(ctx, make(chan Verdict))
		}()
		time.Sleep(30 * time.Minute) // inside the first round
		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("Run did not return after cancel")
		}
		// Reset after Run has returned does not block.
		p.Reset()
	})
}
