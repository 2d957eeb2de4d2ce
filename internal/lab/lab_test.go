package lab

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// pingWait is how long a ping that must succeed may take; the first one
// waits for ARP.
const pingWait = 3 * time.Second

func TestTwoNodesPingAndHTTP(t *testing.T) {
	requireNginx(t)
	l := New(t, netip.MustParsePrefix("10.77.1.0/24"))
	a := l.AddNode("a", l.Host(11))
	b := l.AddNode("b", l.Host(12))

	if err := a.Ping(b.Addr.Addr(), pingWait); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(a.Addr.Addr(), pingWait); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	conf := NginxConf(t, dir, netip.AddrPortFrom(netip.IPv4Unspecified(), 80), "b")
	base := "http://" + b.Addr.Addr().String()
	startNginx(t, b.Command("nginx", "-c", conf, "-g", "daemon off;"), func(url string) (int, string, error) {
		return a.HTTPGet(url, time.Second)
	}, base)
	status, body, err := a.HTTPGet(base+"/", time.Second)
	if err != nil || status != 200 || body != "b" {
		t.Fatalf("GET / from a = %d %q, %v; want 200 \"b\"", status, body, err)
	}
	if _, _, err := l.Node("b").HTTPGet("http://"+a.Addr.Addr().String()+"/", time.Second); err == nil {
		t.Error("GET from b to a, where nothing listens, succeeded")
	}
}

func TestNodeSetup(t *testing.T) {
	l := New(t, netip.Prefix{})
	a := l.AddNode("a", l.Host(11))
	if got, want := a.Addrs(), []netip.Prefix{netip.MustParsePrefix("10.77.0.11/24")}; !equalPrefixes(got, want) {
		t.Errorf("Addrs() = %v, want %v", got, want)
	}
	if a.Iface != "eth0" || len(a.MAC) != 6 || !strings.HasPrefix(a.NS, Prefix+l.ID) {
		t.Errorf("node = %+v", a)
	}
	for key, want := range map[string]string{
		"ipv6/conf/all/disable_ipv6":  "1",
		"ipv6/conf/eth0/disable_ipv6": "1",
		"ipv4/conf/eth0/rp_filter":    "0",
		"ipv4/ip_forward":             "0",
	} {
		var got []byte
		err := a.Do(func() (err error) {
			got, err = os.ReadFile(filepath.Join("/proc/sys/net", key))
			return err
		})
		if err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("node sysctl %s = %q, %v; want %s", key, got, err, want)
		}
	}
	if out := a.Run("ip", "-br", "link", "show", "lo"); !strings.Contains(out, "UNKNOWN") {
		t.Errorf("lo is not up: %s", out)
	}
}

func TestAddrsSeesVIP(t *testing.T) {
	l := New(t, netip.Prefix{})
	a := l.AddNode("a", l.Host(11))
	vip := netip.MustParseAddr("10.77.0.100")
	a.Run("ip", "addr", "add", vip.String()+"/32", "dev", a.Iface)
	if !a.HasAddr(vip) {
		t.Fatalf("Addrs() = %v, want %s among them", a.Addrs(), vip)
	}
	a.Run("ip", "addr", "del", vip.String()+"/32", "dev", a.Iface)
	if a.HasAddr(vip) {
		t.Fatalf("Addrs() = %v after removing %s", a.Addrs(), vip)
	}
}

func TestDoRestoresNamespace(t *testing.T) {
	l := New(t, netip.Prefix{})
	a := l.AddNode("a", l.Host(11))
	host, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.Stat(filepath.Join(netnsDir, a.NS))
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		var inside os.FileInfo
		if err := a.Do(func() (err error) {
			inside, err = os.Stat("/proc/thread-self/ns/net")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(inside, want) {
			t.Fatal("Do ran outside the node's namespace")
		}
	}
	// Threads that ran Do go back to the pool: a fresh look from many
	// goroutines must find only the host's namespace.
	for range 50 {
		got := make(chan string)
		go func() {
			s, _ := os.Readlink("/proc/thread-self/ns/net")
			got <- s
		}()
		if s := <-got; s != host {
			t.Fatalf("a thread is in %s after Do, want %s", s, host)
		}
	}
}

func TestDoAnswersAfterGoexit(t *testing.T) {
	l := New(t, netip.Prefix{})
	a := l.AddNode("a", l.Host(11))
	if err := a.Do(func() error { runtime.Goexit(); return nil }); !errors.Is(err, errGoexit) {
		t.Fatalf("Do(Goexit) = %v, want %v", err, errGoexit)
	}
	if err := a.Do(func() error { return nil }); err != nil {
		t.Fatalf("Do after a Goexit: %v", err)
	}
}

func equalPrefixes(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
