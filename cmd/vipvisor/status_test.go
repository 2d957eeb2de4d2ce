package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/supervisor"
)

// fastLimits are the real limits with timeouts short enough for a test.
var fastLimits = func() statusLimits {
	l := defaultStatusLimits
	l.readHeader, l.read, l.write, l.idle = 300*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
	return l
}()

// testStatusServer serves the real status handler with lim on a loopback
// port and returns its address.
func testStatusServer(t *testing.T, lim statusLimits) string {
	return testStatusServerAt(t, lim, time.Now)
}

// testStatusServerAt is testStatusServer with the rate limit's clock.
func testStatusServerAt(t *testing.T, lim statusLimits, now func() time.Time) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newStatusServer(supervisor.StatusHandler(func() supervisor.Status { return supervisor.Status{Version: "test"} }), lim, now)
	go srv.Serve(limitListener(ln, lim))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestStatusMethods(t *testing.T) {
	addr := testStatusServer(t, defaultStatusLimits)
	for _, path := range []string{"/status", "/metrics", "/healthz"} {
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "FOO"} {
			req, _ := http.NewRequest(m, "http://"+addr+path, strings.NewReader("x"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", m, path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 405", m, path, resp.StatusCode)
			}
		}
	}
	for _, m := range []string{"GET", "HEAD"} {
		req, _ := http.NewRequest(m, "http://"+addr+"/status", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /status = %d, want 200", m, resp.StatusCode)
		}
	}
}

// closedByServer waits for the server to close c: a read that ends in EOF
// or a reset. The bound only guards a hang.
func closedByServer(c net.Conn, within time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	ne, isNet := err.(net.Error)
	return err == nil || !(isNet && ne.Timeout())
}

func TestStatusClosesSilentAndSlowConnections(t *testing.T) {
	addr := testStatusServer(t, fastLimits)
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	// A slowloris client: a header line now and then, never the end.
	fmt.Fprint(slow, "GET /status HTTP/1.1\r\nHost: x\r\n")
	done := make(chan bool, 1)
	go func() {
		for range 20 {
			if _, err := fmt.Fprint(slow, "X-A: b\r\n"); err != nil {
				done <- true
				return
			}
			time.Sleep(50 * time.Millisecond) // the client's own pace
		}
		done <- false
	}()
	if !closedByServer(silent, 5*time.Second) {
		t.Error("a connection that sends nothing is still open")
	}
	if !closedByServer(slow, 5*time.Second) {
		t.Error("a connection that sends its header slowly is still open")
	}
	<-done
}

func TestStatusClosesIdleKeepAlive(t *testing.T) {
	addr := testStatusServer(t, fastLimits)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("the server closed a keep-alive connection after one request")
	}
	if !closedByServer(c, 5*time.Second) {
		t.Error("an idle keep-alive connection is still open")
	}
}

// answers reports whether a GET /status on c is answered within d.
func answers(c net.Conn, d time.Duration) bool {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprint(c, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func TestStatusCapsConnectionsPerSource(t *testing.T) {
	lim := defaultStatusLimits
	addr := testStatusServer(t, lim)
	var held []net.Conn
	for range lim.maxPerSource {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
		if !answers(c, 5*time.Second) {
			t.Fatalf("connection %d of one source is not served", len(held))
		}
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if !closedByServer(extra, 5*time.Second) {
		t.Errorf("connection %d of one source was not closed", lim.maxPerSource+1)
	}
	// Another source is still served.
	other, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if !answers(other, 5*time.Second) {
		t.Error("another source is not served while one holds its limit")
	}
	// A closed connection frees its place, once the server has seen it
	// close; until then a new one may still be turned away.
	held[0].Close()
	served := false
	for deadline := time.Now().Add(5 * time.Second); !served && time.Now().Before(deadline); {
		again, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		served = answers(again, time.Second)
		again.Close()
	}
	if !served {
		t.Error("a source under its limit again is not served")
	}
}

func TestStatusCapsConnectionsInAll(t *testing.T) {
	lim := defaultStatusLimits
	addr := testStatusServer(t, lim)
	var held []net.Conn
	for i := 0; len(held) < lim.maxConns; i++ {
		src := net.IPv4(127, 0, 1, byte(1+i/lim.maxPerSource))
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}).Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
		if !answers(c, 5*time.Second) {
			t.Fatalf("connection %d is not served", len(held))
		}
	}
	waiting, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, 1)}}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	fmt.Fprint(waiting, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
	got := make(chan bool, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(waiting), nil)
		if err == nil {
			resp.Body.Close()
		}
		got <- err == nil && resp.StatusCode == http.StatusOK
	}()
	select {
	case <-got:
		t.Fatalf("connection %d was served while %d were open", lim.maxConns+1, lim.maxConns)
	case <-time.After(300 * time.Millisecond): // waits in the kernel's queue, as it should
	}
	held[0].Close()
	select {
	case ok := <-got:
		if !ok {
			t.Error("the waiting connection got no 200 once a place was free")
		}
	case <-time.After(5 * time.Second):
		t.Error("the waiting connection was not served once a place was free")
	}
}

func TestTokenBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newTokenBucket(10, func() time.Time { return now })
	taken := 0
	for b.take() {
		taken++
	}
	if taken != 10 {
		t.Errorf("a full bucket gave %d tokens, want a burst of 10", taken)
	}
	now = now.Add(300 * time.Millisecond)
	taken = 0
	for b.take() {
		taken++
	}
	if taken != 3 {
		t.Errorf("300ms later it gave %d tokens, want 3", taken)
	}
	now = now.Add(time.Hour)
	taken = 0
	for b.take() {
		taken++
	}
	if taken != 10 {
		t.Errorf("an hour later it gave %d tokens, want no more than the burst of 10", taken)
	}
}

func TestStatusRateLimitEndsAPipelinedBurst(t *testing.T) {
	lim := defaultStatusLimits
	lim.rate = 5
	frozen := time.Now() // no token comes back while the burst is read
	addr := testStatusServerAt(t, lim, func() time.Time { return frozen })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, strings.Repeat("GET /status HTTP/1.1\r\nHost: x\r\n\r\n", 50))
	r := bufio.NewReader(c)
	var codes []int
	for {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	want := []int{200, 200, 200, 200, 200, 429}
	if !slices.Equal(codes, want) {
		t.Errorf("50 pipelined requests at 5 a second were answered %v, want %v and the connection closed", codes, want)
	}
}

func TestStatusRefusesLargeHeaders(t *testing.T) {
	addr := testStatusServer(t, defaultStatusLimits)
	req, _ := http.NewRequest("GET", "http://"+addr+"/status", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 16<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 16 KiB header got %d, want 431", resp.StatusCode)
	}
}
