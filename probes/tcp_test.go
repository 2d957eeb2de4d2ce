package probes

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// slack is how far past its deadline a check may return: the time to
// notice the deadline and abandon a connection or kill a process.
const slack = 250 * time.Millisecond

// checkWithin runs one check with timeout and fails the test unless it
// returned by the deadline plus slack.
func checkWithin(t *testing.T, p Probe, timeout time.Duration) Result {
	t.Helper()
	ctx, cancel := withTimeout(context.Background(), timeout)
	defer cancel()
	began := time.Now()
	r := p.Check(ctx)
	if took := time.Since(began); took > timeout+slack {
		t.Errorf("%s: Check returned after %v, timeout %v", p.Name(), took, timeout)
	}
	if r.Took <= 0 || r.Took > timeout+slack {
		t.Errorf("%s: Took = %v, timeout %v", p.Name(), r.Took, timeout)
	}
	return r
}

func wantOK(t *testing.T, r Result) {
	t.Helper()
	if !r.OK || r.Reason != "" {
		t.Errorf("result = %+v, want OK", r)
	}
}

func wantFail(t *testing.T, r Result, reason string) {
	t.Helper()
	if r.OK || r.Reason != reason {
		t.Errorf("result = %+v, want failure %q", r, reason)
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := NewTCP(ln.Addr().String())
	if got, want := p.Name(), "tcp "+ln.Addr().String(); got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	wantOK(t, checkWithin(t, p, time.Second))
}

func TestTCPRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now; the kernel answers RST
	wantFail(t, checkWithin(t, NewTCP(addr), time.Second), "connection refused")
}

// TestTCPTimeout points the probe at a listener whose accept queue is full.
// Linux then drops further SYNs (tcp_conn_request: "listen overflow"), so
// the handshake never completes and only the deadline ends the check. This
// happens on loopback, needs no privilege and does not depend on routing,
// unlike an address that blackholes.
func TestTCPTimeout(t *testing.T) {
	addr := fullListener(t)
	const timeout = 300 * time.Millisecond
	wantFail(t, checkWithin(t, NewTCP(addr), timeout), "timeout after 300ms")
}

// fullListener returns the address of a listener with backlog 0 that never
// accepts, after filling its accept queue.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	// A backlog of 0 still queues one connection (the queue is full when
	// it holds more than the backlog); fill until a dial times out.
	for i := 0; ; i++ {
		if i == 8 {
			t.Fatalf("accept queue of %s not full after %d connections", addr, i)
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			if !strings.Contains(err.Error(), "timeout") {
				t.Fatalf("filling accept queue: %v", err)
			}
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
}
