package supervisor

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/lab"
)

func TestListenAddrsDecode(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" when refused
		why      string // a word the refusal must hold
	}{
		{"80", "", "not host:port"},
		{":80", "0.0.0.0:80", ""},
		{"*:80", "0.0.0.0:80", ""},
		{"0.0.0.0:80", "0.0.0.0:80", ""},
		{"192.0.2.10:8080", "192.0.2.10:8080", ""},
		{"[::]:80", "[::]:80", ""},
		{"[2001:db8::10]:443", "[2001:db8::10]:443", ""},
		{":80, [::]:80", "0.0.0.0:80,[::]:80", ""},
		{"::80", "", "[addr]:port"},
		{"2001:db8::1:80", "", "[addr]:port"},
		{"[::1", "", "[addr]:port"},
		{"localhost:80", "", "names are not resolved"},
		{"[fe80::1%eth0]:80", "", "must be an IP address"},
		{"224.0.0.1:80", "", "not an address to listen on"},
		{"[::ffff:10.0.0.1]:80", "", "not an address to listen on"},
		{":0", "", "1-65535"},
		{":65536", "", "1-65535"},
		{":080", "", "1-65535"},
		{":+80", "", "1-65535"},
		{":http", "", "1-65535"},
		{":80,*:80", "", "listed twice"},
		{" , ", "", "no address"},
	} {
		var l ListenAddrs
		err := l.Decode(tc.in)
		switch {
		case tc.want != "" && (err != nil || l.String() != tc.want):
			t.Errorf("Decode(%q) = %s, %v; want %s", tc.in, l, err, tc.want)
		case tc.want == "" && (err == nil || !strings.Contains(err.Error(), tc.why)):
			t.Errorf("Decode(%q) = %s, %v; want refused: %s", tc.in, l, err, tc.why)
		}
	}
}

func TestListenAddrsCovers(t *testing.T) {
	var l ListenAddrs
	if err := l.Decode(":80,[::]:80,192.0.2.10:8080"); err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		a    string
		want bool
	}{
		{"127.0.0.1:80", true}, // the IPv4 wildcard
		{"192.0.2.10:80", true},
		{"[::1]:80", true}, // the IPv6 wildcard
		{"192.0.2.10:8080", true},
		{"127.0.0.1:8080", false},
		{"127.0.0.1:81", false},
	} {
		if got := l.Covers(ap(tc.a)); got != tc.want {
			t.Errorf("Covers(%s) = %v, want %v", tc.a, got, tc.want)
		}
	}
}

// TestOpenListeners binds in a network namespace of its own, made on a
// locked thread (the package's reaper would take a helper process's
// exit): the sockets listen with nginx's options, IPv4 and IPv6 side by
// side on one port, close-on-exec in vipvisor, and NginxEnv names them
// as 3, 4.
func TestOpenListeners(t *testing.T) { inNewNetns(t, testOpenListeners) }

// inNewNetns runs f on a thread in a network namespace of its own, its
// loopback up.
func inNewNetns(t *testing.T, f func(t *testing.T)) {
	lab.RequireRoot(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			t.Errorf("loopback up: %v", err)
			return
		}
		f(t)
	}()
	<-done
}

// TestRefuseResetsQueuedConnections: while refusing, a connection the
// held socket queued and each new one are reset at once; after Hold,
// connections queue for the next child again.
func TestRefuseResetsQueuedConnections(t *testing.T) {
	inNewNetns(t, func(t *testing.T) {
		ls, _ := openTest(t, "127.0.0.1:8081")
		if ls == nil {
			return
		}
		defer ls.Close()
		dial := func() net.Conn {
			c, err := net.DialTimeout("tcp", "127.0.0.1:8081", time.Second)
			if err != nil {
				t.Errorf("dial: %v", err)
				return nil
			}
			t.Cleanup(func() { c.Close() })
			return c
		}
		// reset says whether c is reset within wait.
		reset := func(c net.Conn, wait time.Duration) bool {
			c.SetReadDeadline(time.Now().Add(wait))
			_, err := c.Read(make([]byte, 1))
			return errors.Is(err, syscall.ECONNRESET)
		}
		queued := dial()
		if queued == nil || reset(queued, 100*time.Millisecond) {
			t.Error("a queued connection was reset before Refuse")
			return
		}
		if err := ls.Refuse(); err != nil {
			t.Error(err)
			return
		}
		ls.Refuse() // a second call changes nothing
		if !reset(queued, 2*time.Second) {
			t.Error("the connection queued before Refuse was not reset")
		}
		// Reset so soon that the handshake itself may end in it.
		if c, err := net.DialTimeout("tcp", "127.0.0.1:8081", time.Second); err == nil {
			if !reset(c, 2*time.Second) {
				t.Error("a connection made while refusing was not reset")
			}
			c.Close()
		} else if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("dial while refusing: %v, want a reset", err)
		}
		if n := ls.Hold(); n != 2 {
			t.Errorf("Hold = %d connections reset, want 2", n)
		}
		after := dial()
		if after == nil || reset(after, 200*time.Millisecond) {
			t.Error("a connection made after Hold was reset")
		}
		if fd, _, err := unix.Accept4(int(ls.Files()[0].Fd()), unix.SOCK_CLOEXEC); err != nil {
			t.Errorf("nothing queued after Hold: %v", err)
		} else {
			unix.Close(fd)
		}
	})
}

// openTest opens held sockets on list, or fails the test and returns
// nil; it is called on a thread that must not end, so it cannot Fatal.
func openTest(t *testing.T, list string) (*Listeners, ListenAddrs) {
	var addrs ListenAddrs
	if err := addrs.Decode(list); err != nil {
		t.Error(err)
		return nil, nil
	}
	ls, err := OpenListeners(addrs)
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	return ls, addrs
}

func testOpenListeners(t *testing.T) {
	ls, addrs := openTest(t, ":8080,[::]:8080")
	if ls == nil {
		return
	}
	defer ls.Close()
	if got := ls.NginxEnv(); got != "NGINX=3;4;" {
		t.Errorf("NginxEnv = %q", got)
	}
	for i, f := range ls.Files() {
		fd := int(f.Fd())
		reuse, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR)
		acc, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		flags, _ := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
		if reuse != 1 || acc != 1 || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s: SO_REUSEADDR %d, listening %d, FD_CLOEXEC %v; want 1, 1, set", addrs[i], reuse, acc, flags&unix.FD_CLOEXEC != 0)
		}
		// After Fd, as os/exec calls it: nginx inherits sockets that
		// are non-blocking, as its own are.
		if fl, _ := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
			t.Errorf("%s: not O_NONBLOCK", addrs[i])
		}
		if addrs[i].Addr().Is6() {
			if v6only, _ := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); v6only != 1 {
				t.Errorf("%s: IPV6_V6ONLY %d, want 1 (nginx's ipv6only=on)", addrs[i], v6only)
			}
		}
	}
	if len(ls.Inodes()) != 2 {
		t.Errorf("Inodes: %v", ls.Inodes())
	}
	// A second set on the same addresses cannot be had.
	if l2, err := OpenListeners(addrs[:1]); err == nil || !strings.Contains(err.Error(), "0.0.0.0:8080") {
		t.Errorf("second OpenListeners = %v, want an error naming the address", err)
		if err == nil {
			l2.Close()
		}
	}
}

func TestNginxListenProblems(t *testing.T) {
	dump := `# configuration file /etc/nginx/nginx.conf:
events {}
http {
    server_name listen.example.com;   # not a listen directive
    server {
        listen 80 default_server;
        listen [::]:80;
        # listen 8443 ssl;
    }
    server { listen 127.0.0.1:8080 reuseport; server_name x; }
    server { listen [::]:8081 ipv6only=off; listen unix:/run/x.sock; listen localhost:9000; }
}
`
	ls := parseNginxListens(dump)
	var got []string
	for _, l := range ls {
		got = append(got, l.Addr.String()+" "+l.Text)
	}
	want := []string{"0.0.0.0:80 listen 80 default_server", "[::]:80 listen [::]:80", "127.0.0.1:8080 listen 127.0.0.1:8080 reuseport",
		"[::]:8081 listen [::]:8081 ipv6only=off", "invalid AddrPort listen unix:/run/x.sock", "invalid AddrPort listen localhost:9000"}
	if !slices.Equal(got, want) {
		t.Errorf("listens:\n%q\nwant\n%q", got, want)
	}
	for _, tc := range []struct {
		held string
		want []string // substrings, one problem each
	}{
		{":80,[::]:80", nil},
		{"*:80", nil},
		{"127.0.0.1:80", []string{"does not listen on 127.0.0.1:80"}},
		{":8080", []string{"does not listen on 0.0.0.0:8080; add `listen 8080;`"}},
		{"127.0.0.1:8080", []string{"reuseport"}},
		{"[::]:8081", []string{"ipv6only=off"}},
	} {
		var held ListenAddrs
		if err := held.Decode(tc.held); err != nil {
			t.Fatal(err)
		}
		probs := NginxListenProblems(held, ls)
		ok := len(probs) == len(tc.want)
		for i := 0; ok && i < len(probs); i++ {
			ok = strings.Contains(probs[i], tc.want[i])
		}
		if !ok {
			t.Errorf("held %s: problems %q, want %q", tc.held, probs, tc.want)
		}
	}
}
