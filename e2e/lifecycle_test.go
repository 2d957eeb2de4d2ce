package e2e

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

func TestBadEnvironmentExits2AndStartsNothing(t *testing.T) {
	env, ev := fakeEnv(t, "serve")
	v := start(t, soloNode(t).Command(binary), baseEnv(append(env, "VIPVISOR_VRID=300", "VIPVISOR_CHECK_FALL=0")...))
	if code := v.wait(10 * time.Second); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	for _, want := range []string{`VIPVISOR_VRID="300"`, `VIPVISOR_CHECK_FALL="0"`, "accepted: "} {
		if !strings.Contains(v.log(), want) {
			t.Errorf("output lacks %q:\n%s", want, v.log())
		}
	}
	if _, err := os.Stat(ev.path); !os.IsNotExist(err) {
		t.Errorf("the child was started despite the bad environment")
	}
}

func TestSignalsReachTheChild(t *testing.T) {
	env, ev := fakeEnv(t, "serve")
	v := start(t, soloNode(t).Command(binary), baseEnv(env...))
	ev.waitFor(t, "ready ")
	for _, tc := range []struct {
		send syscall.Signal
		want string
	}{
		{syscall.SIGUSR1, "signal USR1"},
		{syscall.SIGUSR2, "signal USR2"},
		{syscall.SIGHUP, "signal HUP"}, // the reload signal of a program that is neither nginx nor httpd
	} {
		v.signal(tc.send)
		ev.waitFor(t, tc.want)
	}
	v.signal(syscall.SIGINT)
	ev.waitFor(t, "signal TERM") // the stop signal of such a program
	if code := v.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGINT, want 0", code)
	}
}

func TestStopTimeoutEndsAStubbornChild(t *testing.T) {
	env, ev := fakeEnv(t, "serve", "FAKECHILD_IGNORE=TERM", "VIPVISOR_STOP_TIMEOUT=500ms")
	v := start(t, soloNode(t).Command(binary), baseEnv(env...))
	pid := readyPID(t, ev)
	began := time.Now()
	v.signal(syscall.SIGTERM)
	if code := v.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if took := time.Since(began); took < 500*time.Millisecond {
		t.Errorf("stopped after %v, before the 500ms stop timeout", took)
	}
	ev.waitFor(t, "signal TERM")
	if !lab.Gone(pid) {
		t.Errorf("child %d outlived vipvisor", pid)
	}
	if !strings.Contains(v.log(), "killed by signal KILL") {
		t.Errorf("log does not say the child was killed:\n%s", v.log())
	}
}

func TestSecondStopSignalKillsAtOnce(t *testing.T) {
	env, ev := fakeEnv(t, "serve", "FAKECHILD_IGNORE=TERM")
	v := start(t, soloNode(t).Command(binary), baseEnv(env...))
	pid := readyPID(t, ev)
	v.signal(syscall.SIGTERM)
	ev.waitFor(t, "signal TERM")
	v.signal(syscall.SIGTERM)
	if code := v.wait(5 * time.Second); code != 0 { // well before the 10s stop timeout
		t.Errorf("exit code %d, want 0", code)
	}
	if !lab.Gone(pid) {
		t.Errorf("child %d outlived vipvisor", pid)
	}
}

func TestChildDiesWithVipvisor(t *testing.T) {
	env, ev := fakeEnv(t, "serve")
	v := start(t, soloNode(t).Command(binary), baseEnv(env...))
	pid := readyPID(t, ev)
	v.signal(syscall.SIGKILL)
	v.wait(5 * time.Second)
	lab.WaitFor(t, 5*time.Second, "the child to die with vipvisor", func() bool { return lab.Gone(pid) })
}

// TestReapsOrphansAsPID1 runs vipvisor as PID 1 of a new PID namespace, as
// a container entrypoint, with a child that leaves an orphan behind.
func TestReapsOrphansAsPID1(t *testing.T) {
	env, ev := fakeEnv(t, "orphan", "FAKECHILD_AFTER=500ms")
	v := start(t, soloNode(t).Command("unshare", "--pid", "--fork", "--kill-child", binary), baseEnv(env...))
	ev.waitFor(t, "ready ")
	// ev's pids are inside the namespace; find vipvisor's host pid as
	// unshare's only child.
	pid1 := childOf(t, v.cmd.Process.Pid)
	lab.WaitFor(t, 5*time.Second, "the orphan to be handed to PID 1", func() bool {
		return len(lab.Children(pid1)) == 2
	})
	lab.WaitFor(t, 5*time.Second, "the orphan to be reaped", func() bool {
		for _, c := range lab.Children(pid1) {
			if state, _ := lab.ProcState(c); state == "Z" {
				return false
			}
		}
		return len(lab.Children(pid1)) == 1 // only the fake child is left
	})
	// As PID 1, vipvisor gets only the signals it has handlers for.
	if err := syscall.Kill(pid1, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := v.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0: the child's status was lost or it did not stop", code)
	}
	ev.waitFor(t, "signal TERM")
	if !strings.Contains(v.log(), `msg=stopped child_status="exit status 0"`) {
		t.Errorf("vipvisor did not see the child's own exit status:\n%s", v.log())
	}
}

func readyPID(t *testing.T, ev *events) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.Fields(ev.waitFor(t, "ready "))[1])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func childOf(t *testing.T, ppid int) int {
	t.Helper()
	var kids []int
	lab.WaitFor(t, 5*time.Second, "unshare's child", func() bool {
		kids = lab.Children(ppid)
		return len(kids) == 1
	})
	return kids[0]
}
