package probes

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// wait4Starter starts commands and waits for each with wait4 on its own
// pid; vipvisor's real reaper lives in supervisor and is tested there. It
// records the pids it started.
type wait4Starter struct {
	mu   sync.Mutex
	pids []int
}

func (s *wait4Starter) start(cmd *exec.Cmd) (<-chan unix.WaitStatus, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	s.mu.Lock()
	s.pids = append(s.pids, pid)
	s.mu.Unlock()
	ch := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		ch <- ws
	}()
	return ch, nil
}

func (s *wait4Starter) last(t *testing.T) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pids) == 0 {
		t.Fatal("nothing was started")
	}
	return s.pids[len(s.pids)-1]
}

func sh(script string, args ...string) []string {
	return append([]string{"/bin/sh", "-c", script, "sh"}, args...)
}

func TestExec(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("WATCHDOG_USEC", "1000000")
	t.Setenv("WATCHDOG_PID", "1")
	t.Setenv("VIPVISOR_TEST_KEEP", "yes")
	tests := []struct {
		name string
		argv []string
		want string // reason, "" for OK
	}{
		{"exit 0", sh("exit 0"), ""},
		{"exit 1", sh("exit 1"), "exit status 1"},
		{"exit 7", sh("exit 7"), "exit status 7"},
		{"killed by a signal", sh("kill -TERM $$"), "killed by SIGTERM"},
		{"not found", []string{"/nonexistent/check"}, "start: fork/exec /nonexistent/check: no such file or directory"},
		{"no systemd variables", sh(`[ -z "$NOTIFY_SOCKET$WATCHDOG_USEC$WATCHDOG_PID" ] && [ "$VIPVISOR_TEST_KEEP" = yes ]`), ""},
		{"own process group", sh(`read -r stat </proc/$$/stat; set -- ${stat##*)}; [ "$3" = $$ ]`), ""},
		{"stdin empty", sh(`! read -r line`), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s wait4Starter
			r := checkWithin(t, NewExec(tc.argv, s.start), 5*time.Second)
			if tc.want == "" {
				wantOK(t, r)
			} else {
				wantFail(t, r, tc.want)
			}
		})
	}
}

func TestExecName(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"check.sh"}, "exec check.sh"},
		{[]string{"/usr/bin/curl", "-f", "http://127.0.0.1/a b"}, "exec /usr/bin/curl -f 'http://127.0.0.1/a b'"},
	} {
		if got := NewExec(tc.argv, nil).Name(); got != tc.want {
			t.Errorf("Name() = %q, want %q", got, tc.want)
		}
	}
}

// TestExecTimeoutKillsGroup: a check that hangs and has a background job
// is killed at the deadline, both processes with it.
func TestExecTimeoutKillsGroup(t *testing.T) {
	var s wait4Starter
	bg := filepath.Join(t.TempDir(), "bg.pid")
	p := NewExec(sh(`sleep 60 & echo $! >"$1"; sleep 60`, bg), s.start)
	const timeout = 500 * time.Millisecond
	wantFail(t, checkWithin(t, p, timeout), "killed after timeout 500ms")
	leader := s.last(t)
	bgPID := readPID(t, bg)
	waitGone(t, leader, bgPID)
}

// TestExecLeftoversKilled: a check that exits 0 and leaves a background
// job passes, and the job is killed.
func TestExecLeftoversKilled(t *testing.T) {
	var s wait4Starter
	bg := filepath.Join(t.TempDir(), "bg.pid")
	p := NewExec(sh(`sleep 60 & echo $! >"$1"`, bg), s.start)
	wantOK(t, checkWithin(t, p, 5*time.Second))
	waitGone(t, s.last(t), readPID(t, bg))
}

func readPID(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return pid
}

// waitGone waits until no live process is left in the group pgid and the
// process bg is dead. Dead means gone from /proc or a zombie: a killed
// background job is an orphan, reaped by whichever process is init here.
// It polls because the kernel ends killed processes asynchronously and
// there is nothing to block on.
func waitGone(t *testing.T, pgid, bg int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		alive := groupMembers(t, pgid)
		if st := procState(bg); st != "" && st != "Z" {
			alive = append(alive, bg)
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v of group %d still alive", alive, pgid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// groupMembers lists the live (not zombie) processes whose group is pgid.
func groupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		f := procStat(pid)
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procState returns the state letter of pid, or "" if it is gone.
func procState(pid int) string {
	if f := procStat(pid); len(f) > 0 {
		return f[0]
	}
	return ""
}

// procStat returns the fields of /proc/PID/stat after the command name:
// state, ppid, pgrp, ...
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}
