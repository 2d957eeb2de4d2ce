package lab

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestSampleNamesItsConnection: a sample carries the client's end of its
// connection, the port that finds it in a capture, and whether the
// connection was kept alive from an earlier request; one whose dial
// never ended still names the socket it dialed from.
func TestSampleNamesItsConnection(t *testing.T) {
	RequireRoot(t)
	l := New(t, netip.MustParsePrefix("10.77.6.0/24"))
	a, c := l.AddNode("a", l.Host(11)), l.AddNode("c", l.Host(50))
	var ln net.Listener
	if err := a.Do(func() (err error) { ln, err = net.Listen("tcp4", ":80"); return err }); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var peers []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		peers = append(peers, r.RemoteAddr)
		mu.Unlock()
		w.Write([]byte("a\n"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	kept := c.HTTPClient(time.Second)
	kept.Transport = &http.Transport{DialContext: c.DialContext}
	url := "http://" + a.Addr.Addr().String() + "/"
	first, second := poll(kept, url), poll(kept, url)
	mu.Lock()
	defer mu.Unlock()
	if len(peers) != 2 {
		t.Fatalf("the server saw %d requests, want 2", len(peers))
	}
	for i, s := range []Sample{first, second} {
		if !s.OK() {
			t.Fatalf("request %d: %v", i, s.Err)
		}
		if s.Local.Addr() != c.Addr.Addr() || s.Local.String() != peers[i] {
			t.Errorf("request %d: Local %v, want the client's end the server saw, %s", i, s.Local, peers[i])
		}
	}
	if first.Reused || !second.Reused {
		t.Errorf("Reused: first %v, second %v; want false, true", first.Reused, second.Reused)
	}

	// Nothing answers at .99: the SYNs go unanswered (an ARP that fails
	// reports unreachable instead, so the neighbour is made up).
	c.Run("ip", "neigh", "replace", l.Host(99).Addr().String(), "lladdr", "02:00:00:00:00:99", "dev", Iface)
	s := poll(c.HTTPClient(200*time.Millisecond), "http://"+l.Host(99).Addr().String()+"/")
	if s.OK() || s.Who() != "!timeout" {
		t.Fatalf("request to nobody: %s, want !timeout", s.Who())
	}
	if s.Local.Addr() != c.Addr.Addr() || s.Local.Port() == 0 || s.Reused {
		t.Errorf("request to nobody: Local %v, Reused %v; want the socket it dialed from", s.Local, s.Reused)
	}
}
