package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/vrrp"
)

// fakeRouter stands in for the VRRP instance: it records what the
// supervisor asks of it, and the test decides when a handover completes.
type fakeRouter struct {
	mu       sync.Mutex
	calls    []string
	changes  chan vrrp.Change
	handover chan struct{}
	childPID func() int // to record whether the child ran at each call
	split    time.Time  // SplitBrainAt in Status
}

func newFakeRouter() *fakeRouter {
	return &fakeRouter{changes: make(chan vrrp.Change, 16), handover: make(chan struct{})}
}

func (r *fakeRouter) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.childPID != nil && r.childPID() != 0 {
		call += " (child running)"
	}
	r.calls = append(r.calls, call)
}

func (r *fakeRouter) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (r *fakeRouter) SetHealthy(h bool)             { r.record(fmt.Sprintf("healthy %v", h)) }
func (r *fakeRouter) SetFault(src string, on bool)  { r.record(fmt.Sprintf("fault %s %v", src, on)) }
func (r *fakeRouter) Changes() <-chan vrrp.Change   { return r.changes }
func (r *fakeRouter) Status() []vrrp.InstanceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := vrrp.InstanceStatus{Name: "VI_51", VRID: 51, State: "MASTER", Priority: 100}
	if !r.split.IsZero() {
		st.SplitBrainAt, st.SplitBrainWith = r.split, "10.0.0.2"
	}
	return []vrrp.InstanceStatus{st}
}

// splitBrain makes Status report a split brain found now.
func (r *fakeRouter) splitBrain() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.split = time.Now()
}
func (r *fakeRouter) Shutdown() <-chan struct{} {
	r.record("shutdown")
	return r.handover
}

func (r *fakeRouter) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func newTestSupervisor(t *testing.T, cfg Config, mode string, env ...string) (*Supervisor, *fakeRouter, *fake) {
	t.Helper()
	f := &fake{log: filepath.Join(t.TempDir(), "events")}
	t.Setenv("FAKECHILD", mode)
	t.Setenv("FAKECHILD_LOG", f.log)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg.StopTimeout = 5 * time.Second
	cfg.RestartWindow, cfg.StartTimeout = time.Minute, 10*time.Second
	f.Child = NewChild(&cfg, []string{os.Args[0]}, testReaper, quietLog())
	t.Cleanup(func() { f.Kill(); <-f.Stop() })
	r := newFakeRouter()
	r.childPID = f.PID
	parts := Parts{Child: f.Child, Router: r, Notifier: NewNotifier(quietLog())}
	return New(parts, &cfg, quietLog(), "test"), r, f
}

func TestStopHandsOverBeforeStoppingTheChild(t *testing.T) {
	s, r, f := newTestSupervisor(t, Config{Restarts: 1, OnYield: "retry"}, "serve")
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- s.Run(ctx) }()
	f.waitFor(t, "ready ")
	cancel() // the same path as SIGTERM
	waitCalls(t, r, "shutdown (child running)")
	// Until the router reports the VIPs handed over, the child serves.
	time.Sleep(100 * time.Millisecond)
	if f.PID() == 0 {
		t.Fatal("the child stopped before the handover completed")
	}
	close(r.handover)
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("Run = %v, want nil after a graceful stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the handover")
	}
	f.waitFor(t, "signal TERM")
	if got, want := r.log(), []string{"healthy true (child running)", "shutdown (child running)"}; !slices.Equal(got, want) {
		t.Errorf("router calls (-want +got):\n-%q\n+%q", want, got)
	}
}

// The fake child exits 100 ms after each start: a crash loop.
func TestCrashLoopRestartsOnceThenYields(t *testing.T) {
	s, r, _ := newTestSupervisor(t, Config{Restarts: 1, OnYield: "retry"}, "exit", "FAKECHILD_CODE=3", "FAKECHILD_AFTER=100ms")
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- s.Run(ctx) }()
	waitCalls(t, r, "fault child true")
	want := []string{"healthy true (child running)", "healthy false", "healthy true (child running)", "healthy false", "fault child true"}
	if got := r.log()[:5]; !slices.Equal(got, want) {
		t.Errorf("router calls (-want +got):\n-%q\n+%q", want, got)
	}
	st := s.Status()
	if !st.Yielded || st.Child.Starts != 2 || st.Child.Crashes != 2 {
		t.Errorf("status after the yield: yielded %v, child %+v", st.Yielded, st.Child)
	}
	close(r.handover)
	cancel()
	if err := <-result; err != nil {
		t.Errorf("Run = %v after a stop while yielded", err)
	}
}

func TestGiveUpExits3(t *testing.T) {
	s, r, f := newTestSupervisor(t, Config{Restarts: 1, OnYield: "exit"}, "exit", "FAKECHILD_CODE=3", "FAKECHILD_AFTER=100ms")
	close(r.handover)
	err := s.Run(context.Background())
	if !errors.Is(err, ErrGaveUp) {
		t.Fatalf("Run = %v, want ErrGaveUp", err)
	}
	if got, want := r.log()[3:], []string{"healthy false", "fault child true", "shutdown"}; !slices.Equal(got, want) {
		t.Errorf("router calls after the second crash (-want +got):\n-%q\n+%q", want, got)
	}
	if f.PID() != 0 {
		t.Errorf("the child still runs after giving up")
	}
}

func waitCalls(t *testing.T, r *fakeRouter, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if slices.Contains(r.log(), want) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("router never got %q; got %q", want, r.log())
}

func TestHookRunsInOrderWithKeepalivedArguments(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "notify.sh")
	// Each run sleeps a little, so a hook that ran them concurrently
	// would interleave them.
	os.WriteFile(script, []byte("#!/bin/sh\nsleep 0.05\necho \"$*\" >> "+out+"\n"), 0o755)
	h := NewHook([]string{script, "--tag", "web"}, testReaper, quietLog())
	for _, c := range []vrrp.Change{
		{Instance: "VI_51", From: vrrp.Init, To: vrrp.Backup, Priority: 100},
		{Instance: "VI_51", From: vrrp.Backup, To: vrrp.Master, Priority: 100},
		{Instance: "web2", From: vrrp.Init, To: vrrp.Backup, Priority: 90},
		{Instance: "VI_51", From: vrrp.Master, To: vrrp.Fault, Priority: 100},
		{Instance: "VI_51", From: vrrp.Fault, To: vrrp.Stopped, Priority: 100},
	} {
		h.Notify(c)
	}
	h.Close()
	b, _ := os.ReadFile(out)
	want := []string{
		"--tag web INSTANCE VI_51 BACKUP 100", "--tag web INSTANCE VI_51 MASTER 100", "--tag web INSTANCE web2 BACKUP 90",
		"--tag web INSTANCE VI_51 FAULT 100", "--tag web INSTANCE VI_51 STOP 100",
	}
	if got := strings.Split(strings.TrimSpace(string(b)), "\n"); !slices.Equal(got, want) {
		t.Errorf("runs (-want +got):\n-%q\n+%q", want, got)
	}
}

func TestHookTimeoutKillsTheGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	script := filepath.Join(dir, "notify.sh")
	// The script's background child is in its process group and must die
	// with it.
	os.WriteFile(script, []byte("#!/bin/sh\nsleep 60 &\necho $! > "+pidFile+"\nwait\n"), 0o755)
	h := NewHook([]string{script}, testReaper, quietLog())
	h.timeout = 200 * time.Millisecond
	began := time.Now()
	h.Notify(vrrp.Change{To: vrrp.Master, Priority: 100})
	h.Close()
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("a hanging notify command held the hook for %v", took)
	}
	b, _ := os.ReadFile(pidFile)
	var pid int
	fmt.Sscan(string(b), &pid)
	if pid == 0 {
		t.Fatal("the script did not start its child")
	}
	waitGone(t, pid)
}
