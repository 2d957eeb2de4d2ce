package probes

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newServer starts an HTTP server on 127.0.0.1 that answers with h and
// counts the connections it accepts.
func newServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &conns
}

func TestHTTPStatusAndBody(t *testing.T) {
	s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		var code int
		switch r.URL.Path {
		case "/ok":
			code = 200
		case "/503":
			code = 503
		case "/204":
			code = 204
		case "/201":
			code = 201
		case "/302":
			http.Redirect(w, r, "/503", http.StatusFound)
			return
		}
		w.WriteHeader(code)
		if code != 204 {
			w.Write([]byte("status: ok\n"))
		}
	})
	custom := StatusSet{{200, 200}, {204, 204}, {300, 399}}
	tests := []struct {
		name     string
		path     string
		statuses StatusSet
		body     string
		want     string // reason, "" for OK
	}{
		{"200 default set", "/ok", nil, "", ""},
		{"503 default set", "/503", nil, "", "status 503"},
		{"204 in custom set", "/204", custom, "", ""},
		{"201 not in custom set", "/201", custom, "", "status 201"},
		{"302 not followed, in set", "/302", custom, "", ""},
		{"302 not followed, not in set", "/302", StatusSet{{200, 200}}, "", "status 302"},
		{"body contains", "/ok", nil, "ok", ""},
		{"body does not contain", "/ok", nil, "healthy", `body does not contain "healthy"`},
		{"status checked before body", "/503", nil, "ok", "status 503"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := checkWithin(t, NewHTTP(s.URL+tc.path, tc.statuses, tc.body), time.Second)
			if tc.want == "" {
				wantOK(t, r)
			} else {
				wantFail(t, r, tc.want)
			}
		})
	}
}

func TestHTTPName(t *testing.T) {
	p := NewHTTP("http://127.0.0.1/health", nil, "")
	if got, want := p.Name(), "http http://127.0.0.1/health"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
}

func TestHTTPRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	ln.Close()
	wantFail(t, checkWithin(t, NewHTTP(url, nil, ""), time.Second), "connection refused")
}

// hangingServer starts a server that accepts and never answers, until the
// client goes away or the test ends.
func hangingServer(t *testing.T) *httptest.Server {
	release := make(chan struct{})
	s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	// Registered after newServer's cleanup, so run before it: s.Close
	// waits for the handler.
	t.Cleanup(func() { close(release) })
	return s
}

// TestHTTPNoHeaders: a server that accepts and never answers.
func TestHTTPNoHeaders(t *testing.T) {
	s := hangingServer(t)
	const timeout = 300 * time.Millisecond
	wantFail(t, checkWithin(t, NewHTTP(s.URL, nil, ""), timeout), "timeout after 300ms")
}

// TestTimeoutReasonNamesTheTimeGiven: a check that begins late, as on a
// busy machine, still names the timeout it was given, not what was left.
func TestTimeoutReasonNamesTheTimeGiven(t *testing.T) {
	s := hangingServer(t)
	ctx, cancel := withTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	time.Sleep(50 * time.Millisecond)
	wantFail(t, NewHTTP(s.URL, nil, "").Check(ctx), "timeout after 300ms")
}

// slowBody sends its headers at once and then a byte every 10ms, forever
// (until the client goes away).
func slowBody(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(200)
	drip(w, r)
}

// drip sends a byte every 10ms until the client goes away.
func drip(w http.ResponseWriter, r *http.Request) {
	w.(http.Flusher).Flush()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := w.Write([]byte(".")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}

func TestHTTPEndlessBody(t *testing.T) {
	s, _ := newServer(t, slowBody)
	const timeout = 300 * time.Millisecond
	t.Run("body check fails at the deadline", func(t *testing.T) {
		r := checkWithin(t, NewHTTP(s.URL, nil, "ok"), timeout)
		wantFail(t, r, "timeout after 300ms reading body")
		if r.Took < timeout {
			t.Errorf("Took = %v, before the deadline %v", r.Took, timeout)
		}
	})
	t.Run("status-only check does not read the body", func(t *testing.T) {
		r := checkWithin(t, NewHTTP(s.URL, nil, ""), timeout)
		wantOK(t, r)
		if r.Took > timeout/2 {
			t.Errorf("Took = %v: the check waited for the body", r.Took)
		}
	})
}

// TestHTTPBodyFoundEarly: the text comes first and the body never ends;
// the check passes as soon as the text is read.
func TestHTTPBodyFoundEarly(t *testing.T) {
	s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok "))
		drip(w, r)
	})
	r := checkWithin(t, NewHTTP(s.URL, nil, "ok"), time.Second)
	wantOK(t, r)
	if r.Took > 500*time.Millisecond {
		t.Errorf("Took = %v: the check waited for the end of the body", r.Took)
	}
}

// TestHTTPSNotVerified: the test server's certificate is self-signed and
// not for 127.0.0.1; the probe asks whether it answers, not who it is.
func TestHTTPSNotVerified(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	defer s.Close()
	wantOK(t, checkWithin(t, NewHTTP(s.URL, nil, "ok"), time.Second))
}

// TestHTTPBodyLimit: a body longer than 64 KiB is read no further.
func TestHTTPBodyLimit(t *testing.T) {
	s, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", maxBody) + "ok"))
	})
	wantFail(t, checkWithin(t, NewHTTP(s.URL, nil, "ok"), time.Second),
		`body does not contain "ok" in its first 65536 bytes`)
}

// TestHTTPNewConnectionEachCheck: no keep-alive; the server sees one new
// connection per check.
func TestHTTPNewConnectionEachCheck(t *testing.T) {
	s, conns := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})
	for _, body := range []string{"", "ok"} {
		p := NewHTTP(s.URL, nil, body)
		before := conns.Load()
		for range 3 {
			wantOK(t, checkWithin(t, p, time.Second))
		}
		if got := conns.Load() - before; got != 3 {
			t.Errorf("body %q: 3 checks made %d connections, want 3", body, got)
		}
	}
}

func TestBodyContains(t *testing.T) {
	tests := []struct {
		name, body, want string
		limit            int
		found            bool
	}{
		{"found", "abc ok def", "ok", 64, true},
		{"absent", "abc def", "ok", 64, false},
		{"split across reads", "o|k", "ok", 64, true},
		{"beyond limit", "xxxxok", "ok", 4, false},
		{"ends at limit", "xxok", "ok", 4, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &chunks{parts: strings.Split(tc.body, "|")}
			found, _, err := bodyContains(r, []byte(tc.want), tc.limit)
			if err != nil || found != tc.found {
				t.Errorf("bodyContains = %v, %v; want %v", found, err, tc.found)
			}
		})
	}
}

// chunks returns one part per Read, as a network connection might.
type chunks struct{ parts []string }

func (c *chunks) Read(b []byte) (int, error) {
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(b, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	if c.parts[0] == "" {
		c.parts = c.parts[1:]
	}
	return n, nil
}
