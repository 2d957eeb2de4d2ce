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
