package lab

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// requireNginx skips a test without nginx, except under CI=true.
func requireNginx(t *testing.T) {
	t.Helper()
	if _, err := lookPath("nginx"); err == nil {
		return
	}
	Skip(t, "nginx is not installed")
}

// startNginx starts cmd, an "nginx -c ... -g 'daemon off;'", waits until
// /health at base answers 200 through hc, and stops nginx with SIGQUIT (its
// graceful stop) when the test ends.
func startNginx(t *testing.T, cmd *exec.Cmd, get func(url string) (int, string, error), base string) {
	t.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("nginx did not stop on SIGQUIT within 10s")
		}
		if t.Failed() {
			t.Logf("nginx output:\n%s", out.String())
		}
	})
	WaitFor(t, 10*time.Second, "nginx at "+base+" to answer /health", func() bool {
		status, _, err := get(base + "/health")
		return err == nil && status == 200
	})
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// fakeT stands in for a test that fails, so a test can watch what the lab
// leaves behind after a failed setup without failing itself. It is a T and
// no testing.TB, as a program's T is, so it also shows that the lab needs
// no more than T.
type fakeT struct {
	mu       sync.Mutex
	failed   bool
	msgs     []string
	cleanups []func()
}

func (f *fakeT) Helper() {}

func (f *fakeT) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fakeT) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *fakeT) Logf(string, ...any) {}

// run runs body as the fake test would, then its cleanups, last first.
func (f *fakeT) run(body func(T)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(f)
	}()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// leftovers lists the namespaces whose names contain id.
func leftovers(t *testing.T, id string) []string {
	t.Helper()
	out, err := runIP("netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, id) {
			found = append(found, line)
		}
	}
	return found
}

// What tests pass to the lab must stay a T.
var (
	_ T = (*testing.T)(nil)
	_ T = (*testing.B)(nil)
	_ T = (*testing.F)(nil)
	_ T = testing.TB(nil)
	_ T = (*fakeT)(nil)
)
