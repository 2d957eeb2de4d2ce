// Package e2e drives the vipvisor binary the way users do: built with the
// real toolchain, configured by environment, running real nginx (and, for
// fast life-cycle checks, the fake child of internal/fakechild), inside
// network namespaces the tests make. Most of these tests need root; with
// CI=true they fail instead of skipping.
package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/fakechild"
	"github.com/vipvisor/vipvisor/internal/lab"
)

// binary is the vipvisor built for this test run.
var binary string

func TestMain(m *testing.M) {
	if fakechild.Enabled() {
		fakechild.Main()
	}
	// Fake children are this test binary; under the race detector a
	// process lingers a second at exit unless told otherwise.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	dir, err := os.MkdirTemp("", "vipvisor-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "vipvisor")
	build := exec.Command("go", "build", "-race", "-o", binary, "../cmd/vipvisor")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building vipvisor:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// vipvisor is one running vipvisor process under test.
type vipvisor struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  string // file with its stdout and stderr, and its child's
	done chan struct{}
	err  error // from Wait, valid once done is closed
}

// baseEnv is the environment of every vipvisor under test: the test
// process's own without VIPVISOR_* variables, plus the required settings.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VIPVISOR_") && !strings.HasPrefix(kv, "FAKECHILD") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			env = append(env, kv)
		}
	}
	env = append(env, "VIPVISOR_INTERFACE=eth0", "VIPVISOR_VRID=51", "VIPVISOR_VIPS=10.99.0.100",
		"VIPVISOR_STATUS_ADDR=off")
	return append(env, extra...)
}

// start runs cmd (vipvisor, possibly wrapped by ip netns exec or unshare)
// with env, its output going to a file so that nothing the child leaves
// behind can hold a pipe open.
func start(t *testing.T, cmd *exec.Cmd, env []string) *vipvisor {
	t.Helper()
	out := filepath.Join(t.TempDir(), "vipvisor.log")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	v := &vipvisor{t: t, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { v.err = cmd.Wait(); close(v.done) }()
	t.Cleanup(func() {
		select {
		case <-v.done:
		default:
			cmd.Process.Kill()
			<-v.done
		}
		if t.Failed() {
			t.Logf("vipvisor output:\n%s", v.log())
		}
	})
	return v
}

func (v *vipvisor) log() string {
	b, _ := os.ReadFile(v.out)
	return string(b)
}

func (v *vipvisor) signal(sig syscall.Signal) {
	v.t.Helper()
	if err := v.cmd.Process.Signal(sig); err != nil {
		v.t.Fatalf("signal %v to vipvisor: %v", sig, err)
	}
}

// wait returns vipvisor's exit code; the bound only guards a hang.
func (v *vipvisor) wait(timeout time.Duration) int {
	v.t.Helper()
	select {
	case <-v.done:
	case <-time.After(timeout):
		v.t.Fatalf("vipvisor still running after %v", timeout)
	}
	return v.cmd.ProcessState.ExitCode()
}

// events reads a fake child's event log.
type events struct {
	mu   sync.Mutex
	path string
}

func (e *events) lines() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, _ := os.ReadFile(e.path)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// waitFor waits for a line starting with prefix and returns it. It polls a
// file another process writes; the bound only guards a hang.
func (e *events) waitFor(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range e.lines() {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fake child never logged %q; it logged:\n%s", prefix, strings.Join(e.lines(), "\n"))
	return ""
}

// fakeEnv returns the settings that make vipvisor's child this test binary
// acting as a fake server, and the fake's event log.
func fakeEnv(t *testing.T, mode string, extra ...string) ([]string, *events) {
	ev := &events{path: filepath.Join(t.TempDir(), "events")}
	env := []string{"FAKECHILD=" + mode, "FAKECHILD_LOG=" + ev.path, "VIPVISOR_COMMAND=" + os.Args[0]}
	return append(env, extra...), ev
}

// soloNode makes a lab of one node. Every vipvisor under test runs in a
// network namespace the test made: its adverts, addresses and ARP never
// reach the host's interfaces.
func soloNode(t *testing.T) *lab.Node {
	l := lab.New(t, netip.Prefix{})
	return l.AddNode("solo", l.Host(11))
}
