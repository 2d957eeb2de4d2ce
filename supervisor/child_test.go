package supervisor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/fakechild"
	"github.com/vipvisor/vipvisor/internal/lab"
)

// testReaper is shared by every test: a reaper waits for any child of the
// process, so there must be exactly one.
var testReaper *Reaper

func TestMain(m *testing.M) {
	if fakechild.Enabled() {
		fakechild.Main()
	}
	// Under the race detector a process lingers a second at exit
	// (atexit_sleep_ms); the fake children need not.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	// Orphans of the fake children must come back to this process, as
	// they come back to vipvisor.
	if err := BecomeSubreaper(); err != nil {
		panic(err)
	}
	testReaper = NewReaper(quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	go testReaper.Run(ctx)
	code := m.Run()
	cancel()
	os.Exit(code)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fake is a fake child under test, with its event log.
type fake struct {
	*Child
	log string
}

// startFake starts the test binary as a fake child in the given mode, with
// extra FAKECHILD_* settings, and waits until it is ready.
func startFake(t *testing.T, cfg Config, mode string, env ...string) *fake {
	t.Helper()
	return startFakeIn(t, nil, cfg, mode, env...)
}

// startFakeIn is startFake with the child in cgroup cg (nil: none).
func startFakeIn(t *testing.T, cg *Cgroup, cfg Config, mode string, env ...string) *fake {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "events")
	t.Setenv("FAKECHILD", mode)
	t.Setenv("FAKECHILD_LOG", logPath)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	c := NewChild(&cfg, []string{os.Args[0]}, testReaper, quietLog())
	if cg != nil {
		c.UseCgroup(cg)
	}
	if _, err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(); <-c.Stop() })
	f := &fake{Child: c, log: logPath}
	if mode != "exit" {
		f.waitFor(t, "ready ")
	}
	return f
}

// waitFor waits for a line starting with prefix in the fake's log. It polls
// a file the fake child writes: the child is another process, so there is
// nothing to block on. The 10 s bound only guards against a hang.
func (f *fake) waitFor(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range f.lines() {
			if strings.HasPrefix(line, prefix) {
				return line
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("fake child never logged %q; log:\n%s", prefix, strings.Join(f.lines(), "\n"))
	return ""
}

func (f *fake) lines() []string {
	b, _ := os.ReadFile(f.log)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// nextExit waits for the child's next exit; the bound only guards a hang.
func nextExit(t *testing.T, c *Child) Exit {
	t.Helper()
	select {
	case ex := <-c.Exits():
		return ex
	case <-time.After(15 * time.Second):
		t.Fatal("no exit reported")
	}
	return Exit{}
}

func TestStopSendsStopSignalAndWaits(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  Signal
		want string
	}{
		{"default TERM for an unknown program", 0, "signal TERM"},
		{"configured QUIT", Signal(syscall.SIGQUIT), "signal QUIT"},
		{"configured WINCH", Signal(syscall.SIGWINCH), "signal WINCH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, Config{StopSignal: tc.sig}, "serve")
			done := f.Stop()
			ex := nextExit(t, f.Child)
			<-done
			if !ex.Stopped || !ex.Success() {
				t.Errorf("exit = %+v (%s), want a stopped run with status 0", ex, ex.ProcessExit)
			}
			f.waitFor(t, tc.want)
			if f.PID() != 0 {
				t.Errorf("PID() = %d after the exit, want 0", f.PID())
			}
		})
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	f := startFake(t, Config{StopTimeout: timeout}, "serve", "FAKECHILD_IGNORE=TERM")
	f.Stop()
	ex := nextExit(t, f.Child)
	f.waitFor(t, "signal TERM")
	if !ex.Status.Signaled() || ex.Status.Signal() != syscall.SIGKILL {
		t.Errorf("status = %s, want killed by signal KILL", ex.ProcessExit)
	}
	if ex.Ran < timeout {
		t.Errorf("killed after %s, before the %s stop timeout", ex.Ran, timeout)
	}
}

func TestExitIsReportedAtOnceWithItsStatus(t *testing.T) {
	f := startFake(t, Config{}, "exit", "FAKECHILD_CODE=7", "FAKECHILD_AFTER=50ms")
	ex := nextExit(t, f.Child)
	if ex.Stopped || !ex.Status.Exited() || ex.Status.ExitStatus() != 7 {
		t.Fatalf("exit = %s stopped=%v, want exit status 7 on its own", ex.ProcessExit, ex.Stopped)
	}
	// The reaper wakes on SIGCHLD: the report follows the exit within
	// milliseconds. This bound is far above that and far below any
	// polling interval; it is a check that nothing polls, not a benchmark.
	if lag := time.Since(ex.At); lag > 100*time.Millisecond {
		t.Errorf("exit reached the driver %s after the reaper saw it", lag)
	}
	if ex.Ran < 50*time.Millisecond || ex.Ran > 2*time.Second {
		t.Errorf("ran %s, want about 50ms", ex.Ran)
	}
}

func TestSignalReachesTheChild(t *testing.T) {
	f := startFake(t, Config{}, "serve")
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2} {
		if err := f.Signal(sig); err != nil {
			t.Fatal(err)
		}
		f.waitFor(t, "signal "+Signal(sig).String())
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "signal HUP")
}

func TestSignalWithoutChild(t *testing.T) {
	f := startFake(t, Config{}, "serve")
	<-f.Stop()
	nextExit(t, f.Child)
	if err := f.Signal(syscall.SIGHUP); err != ErrNotRunning {
		t.Errorf("Signal after exit = %v, want ErrNotRunning", err)
	}
}

func TestChildDoesNotSeeSystemdVariables(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("WATCHDOG_USEC", "1000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	t.Setenv("KEPT", "yes")
	f := startFake(t, Config{}, "serve")
	f.waitFor(t, "env KEPT=yes")
	for _, line := range f.lines() {
		for _, name := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
			if strings.HasPrefix(line, "env "+name+"=") {
				t.Errorf("child saw %s", strings.TrimPrefix(line, "env "))
			}
		}
	}
}

func TestRestartStartsANewProcess(t *testing.T) {
	f := startFake(t, Config{}, "serve")
	old := f.PID()
	<-f.Stop()
	pid, err := f.Start()
	if err != nil {
		t.Fatal(err)
	}
	if ex := nextExit(t, f.Child); !ex.Stopped || ex.PID != old {
		t.Errorf("first exit = pid %d stopped=%v, want pid %d stopped", ex.PID, ex.Stopped, old)
	}
	if pid == old || pid != f.PID() || !alive(pid) {
		t.Errorf("after restart pid = %d (PID() %d), old %d", pid, f.PID(), old)
	}
}

func TestOrphansAreReapedWithoutStealingTheChildStatus(t *testing.T) {
	f := startFake(t, Config{}, "orphan", "FAKECHILD_AFTER=100ms")
	orphan, _ := strconv.Atoi(strings.Fields(f.waitFor(t, "orphan "))[1])
	// The grandchild's parent (the fake) does not wait for it; when it
	// exits it must not stay a zombie of ours.
	waitGone(t, orphan)
	f.Stop()
	if ex := nextExit(t, f.Child); !ex.Success() || !ex.Stopped {
		t.Errorf("child exit = %s, want status 0: the reaper kept the child's status", ex.ProcessExit)
	}
}

func TestLeftoversInTheGroupAreEnded(t *testing.T) {
	// The grandchild would sleep for a minute; its parent is killed the
	// way a crash kills nginx's master, leaving a worker behind.
	f := startFake(t, Config{}, "orphan", "FAKECHILD_AFTER=60s")
	orphan, _ := strconv.Atoi(strings.Fields(f.waitFor(t, "orphan "))[1])
	if err := unix.Kill(f.PID(), unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ex := nextExit(t, f.Child); ex.Stopped || ex.Status.Signal() != syscall.SIGKILL {
		t.Errorf("exit = %s stopped=%v, want killed by KILL on its own", ex.ProcessExit, ex.Stopped)
	}
	waitGone(t, orphan)
}

func TestSetsidGrandchildIsEndedWithTheChild(t *testing.T) {
	for _, how := range []string{"crash", "stop"} {
		t.Run(how, func(t *testing.T) {
			cg := testCgroup(t)
			f := startFakeIn(t, cg, Config{}, "setsid", "FAKECHILD_AFTER=60s")
			escaped, _ := strconv.Atoi(strings.Fields(f.waitFor(t, "orphan "))[1])
			if pgid, _ := unix.Getpgid(escaped); pgid == f.PID() {
				t.Fatalf("the grandchild is still in the child's process group %d", pgid)
			}
			if how == "crash" {
				unix.Kill(f.PID(), unix.SIGKILL)
			} else {
				f.Stop()
			}
			nextExit(t, f.Child)
			// The exit is reported only once the cgroup is empty.
			if alive(escaped) {
				t.Errorf("pid %d, which left the child's group with setsid, outlived the child's %s", escaped, how)
			}
		})
	}
}

// testCgroup makes a cgroup for one test below the test process's own and
// removes it afterwards. With CI=true a machine without a writable cgroup
// v2 hierarchy fails the test instead of skipping it.
func testCgroup(t *testing.T) *Cgroup {
	t.Helper()
	cg, err := NewCgroup(fmt.Sprintf("vipvisor-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-")))
	if err != nil {
		lab.Skip(t, "no cgroup for the child: %v", err)
	}
	t.Cleanup(func() {
		cg.KillAndWait(5 * time.Second)
		if err := cg.Remove(); err != nil {
			t.Error(err)
		}
	})
	return cg
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	return !strings.HasPrefix(s[strings.LastIndexByte(s, ')')+2:], "Z")
}

// waitGone waits until pid no longer exists at all (not even as a zombie).
// It polls /proc because nothing announces the end of a process that is
// not one's own child; the bound only guards against a hang.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d still exists (alive=%v)", pid, alive(pid))
}
