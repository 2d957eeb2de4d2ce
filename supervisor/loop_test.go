package supervisor

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vipvisor/vipvisor/probes"
)

// These tests run the driver loop inside a testing/synctest bubble, with
// a fake child and fake probes: time there is fake and moves only when
// every goroutine of the bubble waits, so a backoff of minutes is
// checked at once and to the nanosecond.

// loopRun is a supervisor running in a bubble, and its fakes.
type loopRun struct {
	s      *Supervisor
	proc   *fakeProc
	health *fakeHealth // nil: no probe
	router *fakeRouter
	logs   *records
	stop   func() error // ends Run and returns its result
}

// signalLoopOnce starts os/signal's watcher outside any bubble: started
// inside one, it would belong to the bubble and keep it from ever being
// idle.
var signalLoopOnce sync.Once

func prepareSignals() {
	signalLoopOnce.Do(func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGWINCH)
		signal.Stop(c)
	})
}

// runLoop starts a supervisor of proc, with probes when withProbe, inside
// the current bubble.
func runLoop(t *testing.T, proc *fakeProc, withProbe bool) *loopRun {
	t.Helper()
	cfg := Config{Restarts: 1, RestartWindow: time.Minute, StartTimeout: 10 * time.Second, OnYield: "retry"}
	lr := &loopRun{proc: proc, router: newFakeRouter(), logs: &records{}}
	lr.router.childPID = proc.PID
	parts := Parts{Child: proc, Router: lr.router, Notifier: NewNotifier(quietLog())}
	if withProbe {
		lr.health = &fakeHealth{in: make(chan probes.Verdict)}
		parts.Health = lr.health
	}
	lr.s = New(parts, &cfg, slog.New(lr.logs), "test")
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- lr.s.Run(ctx) }()
	lr.stop = func() error {
		cancel()
		close(lr.router.handover)
		proc.reaped()
		return <-result
	}
	return lr
}

func TestLoopBackoffDoublesTo30s(t *testing.T) {
	prepareSignals()
	synctest.Test(t, func(t *testing.T) {
		// A child with no probe that exits at once, like `false`: it
		// counts as healthy while it runs, which must not reset the
		// backoff.
		proc := newFakeProc(true)
		lr := runLoop(t, proc, false)
		first := <-proc.starts
		got, _ := proc.gaps(first, 9)
		want := []time.Duration{0, 1, 2, 4, 8, 16, 30, 30, 30}
		for i := range want {
			want[i] *= time.Second
		}
		if !slices.Equal(got, want) {
			t.Errorf("time between starts (-want +got):\n-%v\n+%v", want, got)
		}
		synctest.Wait()
		wantLog := []string{"1s", "2s", "4s", "8s", "16s", "30s", "30s", "30s"}
		if got := lr.logs.attrs("trying the child again", "backoff"); !slices.Equal(got, wantLog) {
			t.Errorf(`backoff in "trying the child again" (-want +got):`+"\n-%q\n+%q", wantLog, got)
		}
		if err := lr.stop(); err != nil {
			t.Errorf("Run = %v after a stop while retrying", err)
		}
	})
}

func TestLoopBackoffResetsOnlyAfterAHealthyWindow(t *testing.T) {
	prepareSignals()
	synctest.Test(t, func(t *testing.T) {
		proc := newFakeProc(false)
		lr := runLoop(t, proc, true)
		prev := <-proc.starts
		lr.health.say(true, time.Now())
		proc.crash() // restarted at once
		got, prev := proc.gaps(prev, 1)
		if n := proc.refusals(); n != 0 {
			t.Errorf("a restart refused connections (%d times): the next child takes them", n)
		}
		proc.crash() // yields: 1 s
		g, prev := proc.gaps(prev, 1)
		got = append(got, g...)
		if n := proc.refusals(); n != 1 {
			t.Errorf("a yield asked %d times to refuse connections, want once", n)
		}
		// A brief healthy spell: the node rejoins, but the backoff
		// goes on growing.
		lr.health.say(true, time.Now())
		if !lr.s.Status().Child.Healthy || lr.s.Status().Yielded {
			t.Fatalf("a healthy try did not rejoin: %+v", lr.s.Status())
		}
		time.Sleep(5 * time.Second)
		proc.crash() // yields again: 2 s
		g, prev = proc.gaps(prev, 1)
		got = append(got, g...)
		// Healthy for RESTART_WINDOW: restarts and backoff start over,
		// not a moment before.
		lr.health.say(true, time.Now())
		settled := func() int {
			synctest.Wait()
			return len(lr.logs.attrs("the child stayed healthy for RESTART_WINDOW: restarts and retry backoff start over", "pid"))
		}
		time.Sleep(time.Minute - time.Millisecond)
		if n := settled(); n != 0 {
			t.Errorf("settled %d times before RESTART_WINDOW was over", n)
		}
		time.Sleep(2 * time.Millisecond)
		if n := settled(); n != 1 {
			t.Errorf("settled %d times after RESTART_WINDOW, want once", n)
		}
		if st := lr.s.Status(); st.Child.Restarts != 0 {
			t.Errorf("restarts %d after a healthy window, want 0", st.Child.Restarts)
		}
		proc.crash() // a restart, not a yield
		g, prev = proc.gaps(prev, 1)
		got = append(got, g...)
		proc.crash() // yields: 1 s again
		g, _ = proc.gaps(prev, 1)
		got = append(got, g...)
		want := []time.Duration{0, time.Second, 5*time.Second + 2*time.Second, time.Minute + time.Millisecond, time.Second}
		if !slices.Equal(got, want) {
			t.Errorf("time between starts (-want +got):\n-%v\n+%v", want, got)
		}
		if err := lr.stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// healthyCalls counts the times the router was told the node may be
// master.
func (r *fakeRouter) healthyCalls() int {
	n := 0
	for _, c := range r.log() {
		if c == "healthy true" || c == "healthy true (child running)" {
			n++
		}
	}
	return n
}

func TestLoopVerdictsJudgeOnlyTheCurrentRun(t *testing.T) {
	prepareSignals()
	for _, tc := range []struct {
		name string
		// setup brings the child into the situation, and returns when
		// the verdict under test was decided and what ends the
		// situation (nil: nothing to end).
		setup func(lr *loopRun) (at time.Time, end func())
	}{
		{"decided before the current child started", func(lr *loopRun) (time.Time, func()) {
			time.Sleep(5 * time.Second)
			decided := time.Now().Add(-time.Second) // by a round on the first run
			lr.proc.crash()                         // restarted at once
			<-lr.proc.starts
			return decided, nil
		}},
		{"arriving while no child runs", func(lr *loopRun) (time.Time, func()) {
			lr.proc.crash()
			<-lr.proc.starts
			lr.proc.crash() // yields; the next try is 1 s away
			synctest.Wait()
			return time.Now(), func() { <-lr.proc.starts }
		}},
		{"arriving while the failed child is being stopped", func(lr *loopRun) (time.Time, func()) {
			lr.proc.setLingers()
			lr.health.say(true, time.Now())
			lr.health.say(false, time.Now()) // stopped before a restart
			return time.Now(), func() { lr.proc.reaped(); <-lr.proc.starts }
		}},
		{"arriving after the child exited, before its exit is handled", func(lr *loopRun) (time.Time, func()) {
			report := lr.proc.vanish()
			return time.Now(), func() { report(); <-lr.proc.starts } // restarted
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lr := runLoop(t, newFakeProc(false), true)
				<-lr.proc.starts
				at, end := tc.setup(lr)
				before := lr.router.healthyCalls()
				lr.health.say(true, at)
				if n := lr.router.healthyCalls(); n != before {
					t.Errorf("the verdict made the node eligible: router calls %q", lr.router.log())
				}
				if lr.s.Status().Child.Healthy {
					t.Errorf("status says healthy after the verdict: %+v", lr.s.Status().Child)
				}
				if end != nil {
					end()
				}
				// The child that runs now is judged by the verdicts on
				// it: the check discards only what it must.
				lr.health.say(true, time.Now())
				if !lr.s.Status().Child.Healthy {
					t.Errorf("a verdict on the current run was discarded: %+v", lr.s.Status().Child)
				}
				if err := lr.stop(); err != nil {
					t.Errorf("Run = %v", err)
				}
			})
		})
	}
}

func TestLoopStatusTimesComeFromTheClock(t *testing.T) {
	prepareSignals()
	synctest.Test(t, func(t *testing.T) {
		proc := newFakeProc(false)
		cfg := Config{Restarts: 1, RestartWindow: time.Minute, StartTimeout: 10 * time.Second, OnYield: "retry"}
		r := newFakeRouter()
		s := New(Parts{Child: proc, Router: r, Notifier: NewNotifier(quietLog())}, &cfg, quietLog(), "test")
		fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		s.now = func() time.Time { return fixed }
		ctx, cancel := context.WithCancel(context.Background())
		result := make(chan error, 1)
		go func() { result <- s.Run(ctx) }()
		<-proc.starts
		synctest.Wait()
		if got := s.Status().Child.Since; !got.Equal(fixed) {
			t.Errorf("child since %v, want the injected clock's %v", got, fixed)
		}
		cancel()
		close(r.handover)
		proc.reaped()
		if err := <-result; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

func TestLoopStatusLineShowsASplitBrainWithoutATransition(t *testing.T) {
	prepareSignals()
	// systemd's end reads outside the bubble, so that sends never wait
	// on a full socket.
	conn := listenNotify(t)
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	}()
	synctest.Test(t, func(t *testing.T) {
		proc := newFakeProc(false)
		lr := runLoop(t, proc, true)
		<-proc.starts
		lr.health.say(true, time.Now())
		synctest.Wait()
		notifier := lr.s.notifier
		if got := notifier.lastStatus(); strings.Contains(got, "split brain") {
			t.Fatalf("STATUS=%q before any split brain", got)
		}
		// The router finds another master and sends no change: the
		// line says so within a second, with its age.
		lr.router.splitBrain()
		time.Sleep(statusRefresh)
		synctest.Wait()
		if got := notifier.lastStatus(); !strings.Contains(got, "split brain 1s ago with 10.0.0.2") {
			t.Errorf("STATUS=%q a second after a split brain, want it named", got)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := notifier.lastStatus(); !strings.Contains(got, "split brain 11s ago") {
			t.Errorf("STATUS=%q 11 s after a split brain, want its age", got)
		}
		time.Sleep(splitBrainShown)
		synctest.Wait()
		if got := notifier.lastStatus(); strings.Contains(got, "split brain") {
			t.Errorf("STATUS=%q long after the split brain", got)
		}
		if err := lr.stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}
