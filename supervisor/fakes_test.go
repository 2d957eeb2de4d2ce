package supervisor

import (
	"context"
	"log/slog"
	"sync"
	"syscall"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/probes"
)

// Fakes of the child and of its probes for the driver loop's tests in
// loop_test.go, which run inside a testing/synctest bubble: no real
// process or socket, only state, channels and the bubble's fake clock.

// fakeProc is a child process that exists only as state: it starts,
// exits and stops when the test says so.
type fakeProc struct {
	mu      sync.Mutex
	pid     int  // the running pid, or 0
	lastPID int  // pids are 1001, 1002, ...
	atOnce  bool // every run exits at once, status 1
	lingers bool // a stopped run ends only when the test calls reaped
	exits   chan Exit
	starts  chan time.Time // when each run started
	refused int            // RefuseConnections calls
}

func newFakeProc(atOnce bool) *fakeProc {
	return &fakeProc{atOnce: atOnce, exits: make(chan Exit, 16), starts: make(chan time.Time, 64)}
}

func (p *fakeProc) Start() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastPID++
	pid := 1000 + p.lastPID
	p.pid = pid
	p.starts <- time.Now()
	if p.atOnce {
		p.endLocked(false)
	}
	return pid, nil
}

// endLocked ends the running process and reports its exit: status 1 on
// its own, or killed by the stop signal.
func (p *fakeProc) endLocked(stopped bool) {
	if p.pid == 0 {
		return
	}
	status := unix.WaitStatus(1 << 8)
	if stopped {
		status = unix.WaitStatus(unix.SIGTERM)
	}
	p.exits <- Exit{ProcessExit: ProcessExit{PID: p.pid, Status: status, At: time.Now()}, Stopped: stopped}
	p.pid = 0
}

// crash ends the running process on its own.
func (p *fakeProc) crash() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked(false)
}

// reaped ends a process that is being stopped.
func (p *fakeProc) reaped() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked(true)
}

// vanish ends the process without reporting its exit yet, as when the
// kernel has reaped it and the exit is still on its way to the loop.
func (p *fakeProc) vanish() (report func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pid := p.pid
	p.pid = 0
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.pid = pid
		p.endLocked(false)
	}
}

// setLingers makes stopped runs end only when the test calls reaped.
func (p *fakeProc) setLingers() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lingers = true
}

func (p *fakeProc) Stop() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.lingers {
		p.endLocked(true)
	}
	return nil // the driver waits for the exit on Exits, never on this
}

func (p *fakeProc) Kill() { p.reaped() }

func (p *fakeProc) RefuseConnections() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused++
}

// refusals returns how many times the driver asked to refuse
// connections.
func (p *fakeProc) refusals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

func (p *fakeProc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

func (p *fakeProc) Exits() <-chan Exit { return p.exits }
func (p *fakeProc) Name() string       { return "fake" }
func (p *fakeProc) Signal(syscall.Signal) error {
	if p.PID() == 0 {
		return ErrNotRunning
	}
	return nil
}
func (p *fakeProc) Reload() error                { return p.Signal(syscall.SIGHUP) }
func (p *fakeProc) ReloadSignal() syscall.Signal { return syscall.SIGHUP }

// fakeHealth delivers the verdicts the test sends.
type fakeHealth struct{ in chan probes.Verdict }

func (h *fakeHealth) Run(ctx context.Context, out chan<- probes.Verdict) {
	for {
		select {
		case <-ctx.Done():
			return
		case v := <-h.in:
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
	}
}

func (h *fakeHealth) Reset() {}

// say delivers a verdict decided at `at` and waits until the loop has
// handled it.
func (h *fakeHealth) say(healthy bool, at time.Time) {
	h.in <- probes.Verdict{Healthy: healthy, Reason: "fake verdict", At: at}
	synctest.Wait()
}

// records keeps the log records of a supervisor under test.
type records struct {
	mu   sync.Mutex
	msgs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Clone())
	return nil
}

// attrs returns the value of key in every record with message msg.
func (r *records) attrs(msg, key string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.msgs {
		if rec.Message != msg {
			continue
		}
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				out = append(out, a.Value.String())
			}
			return true
		})
	}
	return out
}

// gaps reads n more starts and returns the time from each start to the
// next, the first measured from prev.
func (p *fakeProc) gaps(prev time.Time, n int) (gaps []time.Duration, last time.Time) {
	for range n {
		at := <-p.starts
		gaps = append(gaps, at.Sub(prev))
		prev = at
	}
	return gaps, prev
}
