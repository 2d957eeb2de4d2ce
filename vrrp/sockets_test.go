package vrrp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// TestDropStaleSocketsResetsAReturningClient: the client's connection
// that a node meets when the VIP comes back to it, opened to the other
// master from the port of a connection the node still holds in TIME_WAIT,
// is reset at once rather than answered with the old connection's ACK
// until the client gives up. A listener on the VIP and a connection to
// the node's own address are left alone.
func TestDropStaleSocketsResetsAReturningClient(t *testing.T) {
	lab.RequireRoot(t)
	l := lab.New(t, netip.MustParsePrefix("10.77.5.0/24"))
	a, b, c := l.AddNode("a", l.Host(11)), l.AddNode("b", l.Host(12)), l.AddNode("c", l.Host(50))
	vip := l.Host(100)
	listen := func(n *lab.Node, addr string) net.Listener {
		var ln net.Listener
		if err := n.Do(func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
			t.Fatalf("listen on %s %s: %v", n, addr, err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	dial := func(local *net.TCPAddr, to string) net.Conn {
		var conn net.Conn
		err := c.Do(func() (err error) {
			d := net.Dialer{LocalAddr: local, Timeout: time.Second}
			conn, err = d.Dial("tcp4", to)
			return err
		})
		if err != nil {
			t.Fatalf("dial %s from %v: %v", to, local, err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	accept := func(ln net.Listener) net.Conn {
		conn, err := ln.Accept()
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// moveVIP puts the VIP on to and points the client at it, as a
	// gratuitous ARP would.
	moveVIP := func(from, to *lab.Node) {
		if from != nil {
			from.Run("ip", "addr", "del", vip.String(), "dev", lab.Iface)
		}
		to.Run("ip", "addr", "add", vip.String(), "dev", lab.Iface)
		c.Run("ip", "neigh", "replace", vip.Addr().String(), "lladdr", to.MAC.String(), "dev", lab.Iface)
	}
	target := net.JoinHostPort(vip.Addr().String(), "8080")

	moveVIP(nil, a)
	v := vipNew(t, a, vip)
	lnA, lnB := listen(a, "0.0.0.0:8080"), listen(b, "0.0.0.0:8080")
	listen(a, net.JoinHostPort(vip.Addr().String(), "8081"))
	// A connection to a's own address, which must survive.
	own := dial(nil, net.JoinHostPort(a.Addr.Addr().String(), "8080"))
	ownSrv := accept(lnA)
	// While a holds the VIP, its connections on it are live, not stale.
	live := dial(nil, target)
	liveSrv := accept(lnA)
	v.DropStaleSockets()
	echo(t, "a live connection on the VIP", live, liveSrv)
	// A connection a's server closes first: a holds it in TIME_WAIT,
	// the client nothing.
	first := dial(nil, target)
	port := first.LocalAddr().(*net.TCPAddr).Port
	accept(lnA).Close()
	if _, err := io.ReadAll(first); err != nil {
		t.Fatalf("read to the server's close: %v", err)
	}
	first.Close()
	waitFor(t, "a's TIME_WAIT", func() bool { return strings.Contains(a.Run("ss", "-Htan", "state", "time-wait"), vip.Addr().String()) })

	// The VIP moves to b; the client connects to it from the same port.
	moveVIP(a, b)
	again := dial(&net.TCPAddr{Port: port}, target)
	srvB := accept(lnB)
	if _, err := again.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(srvB, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}

	// The VIP comes back to a: a new master drops what it held on it.
	b.Run("ip", "addr", "del", vip.String(), "dev", lab.Iface)
	v.DropStaleSockets()
	moveVIP(nil, a)
	if out := a.Run("ss", "-Htan", "state", "time-wait"); strings.Contains(out, vip.Addr().String()) {
		t.Errorf("a still holds a TIME_WAIT on the VIP:\n%s", out)
	}
	if out := a.Run("ss", "-Hltn"); !strings.Contains(out, vip.Addr().String()+":8081") {
		t.Errorf("the listener on the VIP is gone:\n%s", out)
	}

	again.SetDeadline(time.Now().Add(1500 * time.Millisecond))
	_, err := again.Write([]byte("ping"))
	if err == nil {
		_, err = again.Read(make([]byte, 1))
	}
	switch {
	case errors.Is(err, syscall.ECONNRESET):
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("the client's connection hung (a stale socket answered it), want a reset")
	default:
		t.Errorf("the client's connection: %v, want a reset", err)
	}

	echo(t, "the connection to a's own address", own, ownSrv)
}

// echo checks that what the client writes on conn reaches srv.
func echo(t *testing.T, what string, conn, srv net.Conn) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(time.Second))
	srv.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if _, err := io.ReadFull(srv, make([]byte, 4)); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waited 5s for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestDropOnBothFamilies: DropOn destroys the connections on an IPv4 and
// an IPv6 VIP, IPv4 ones accepted by a dual-stack [::] listener (mapped
// addresses) among them, and leaves that listener and a connection on
// another address alone.
func TestDropOnBothFamilies(t *testing.T) {
	lab.RequireRoot(t)
	l := lab.New(t, netip.MustParsePrefix("10.77.6.0/24"))
	a := l.AddNode("a", l.Host(11))
	vip4, vip6 := l.Host(100).Addr(), netip.MustParseAddr("fd00:77:6::100")
	a.Run("ip", "addr", "add", l.Host(100).String(), "dev", lab.Iface)
	a.EnableIPv6(netip.PrefixFrom(vip6, 64))
	var ln net.Listener
	var d *sockDiag
	if err := a.Do(func() (err error) {
		if ln, err = net.Listen("tcp", "[::]:8080"); err != nil {
			return err
		}
		d, err = openSockDiag()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer d.Close()
	// dial connects from a to addr and returns both ends; on one node
	// both ends have addr for local address.
	dial := func(addr netip.Addr) (net.Conn, net.Conn) {
		var c net.Conn
		if err := a.Do(func() (err error) {
			c, err = net.DialTimeout("tcp", netip.AddrPortFrom(addr, 8080).String(), time.Second)
			return err
		}); err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return c, s
	}
	c4, _ := dial(vip4)
	c6, _ := dial(vip6)
	own, ownSrv := dial(a.Addr.Addr())

	// The IPv4 connection's server end is an IPv6 socket of a mapped
	// address; its client end's address is a's own, the kernel's choice.
	// Both ends of the IPv6 one are on the VIP, and the first destroyed
	// resets the other, which may be gone by the time its turn comes.
	n, err := d.DropOn([]netip.Addr{vip4, vip6})
	if err != nil {
		t.Fatalf("DropOn: %v", err)
	}
	if n < 2 {
		t.Errorf("DropOn destroyed %d sockets, want at least 2", n)
	}
	for _, line := range strings.Split(a.Run("ss", "-tanH"), "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[0] != "LISTEN" &&
			(strings.Contains(f[3], vip4.String()+"]:") || strings.Contains(f[3], vip6.String()+"]:")) {
			t.Errorf("a socket on a VIP is left: %s", line)
		}
	}
	for name, c := range map[string]net.Conn{"IPv4 VIP": c4, "IPv6 VIP": c6} {
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the connection on the %s: read %v, want it destroyed", name, err)
		}
	}
	echo(t, "the connection to a's own address", own, ownSrv)
	dial(vip4) // the listener still accepts
}
