package vrrp

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// connOpen opens a Conn on eth0 of node n, its source the primary address
// as VIPs finds it; its socket stays in n's namespace. It is closed when
// the test ends.
func connOpen(t *testing.T, n *lab.Node, cfg connConfig) *vrrpConn {
	t.Helper()
	cfg.Interface = lab.Iface
	var c *vrrpConn
	err := n.Do(func() (err error) {
		c, err = listenConn(cfg)
		return err
	})
	if err != nil {
		t.Fatalf("Listen on %s: %v", n, err)
	}
	t.Cleanup(func() { c.Close() })
	connPrimary(t, n, c, cfg.VIPs)
	return c
}

// connPrimary sets c's source to eth0's primary address on n, as an
// Instance does: from VIPs, which skips the addresses in vips.
func connPrimary(t *testing.T, n *lab.Node, c *vrrpConn, vips []netip.Addr) {
	t.Helper()
	var p netip.Prefix
	err := n.Do(func() error {
		var ps []netip.Prefix
		for _, a := range vips {
			ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
		}
		v, err := newVIPSet(lab.Iface, ps, nil)
		if err != nil {
			return err
		}
		defer v.Close()
		p, err = v.Primary()
		return err
	})
	if err != nil || !p.IsValid() {
		t.Fatalf("primary address of %s: %v, %v", n, p, err)
	}
	c.SetPrimary(p.Addr())
}

func connMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// connRx runs Receive in the background and keeps what it returns.
type connRx struct {
	c    *vrrpConn
	ads  chan *Advert
	done chan struct{}
	err  error // Receive's final error, once done is closed
}

// connReceive starts receiving on c until c is closed; the test's cleanup
// closes c and waits, so nothing logs after the test.
func connReceive(t *testing.T, c *vrrpConn) *connRx {
	r := &connRx{c: c, ads: make(chan *Advert, 1000), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			a, err := c.Receive()
			if err != nil {
				r.err = err
				return
			}
			select {
			case r.ads <- a:
			default: // nobody reads: keep the first 1000
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-r.done
	})
	return r
}

// from returns the next advert from src, skipping others, or fails the
// test after 5 seconds (real time: packets cross a real bridge).
func (r *connRx) from(t *testing.T, src netip.Addr) *Advert {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case a := <-r.ads:
			if a.Src == src {
				return a
			}
		case <-r.done:
			t.Fatalf("Receive ended: %v", r.err)
		case <-timeout:
			t.Fatalf("no advert from %s within 5s; drops %v", src, r.c.Drops())
		}
	}
}

func (r *connRx) waitDrop(t *testing.T, reason dropReason) {
	t.Helper()
	lab.WaitFor(t, 5*time.Second, "a "+reason.String()+" drop", func() bool { return r.c.drops.Get(reason) > 0 })
}

func (r *connRx) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(5 * time.Second):
		t.Fatal("Receive still blocked 5s after Close")
		return nil
	}
}

// connSendRaw sends a from node n through a plain raw socket with the given
// TTL and IP options (none if nil): what a Conn never sends.
func connSendRaw(t *testing.T, n *lab.Node, ttl int, ipOpts []byte, a Advert) {
	t.Helper()
	b := pktMarshal(t, a)
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(lab.Iface)
		if err != nil {
			return err
		}
		pc, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		defer pc.Close()
		rc, err := pc.(*net.IPConn).SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = rc.Control(func(fd uintptr) {
			serr = errors.Join(
				unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, ttl),
				unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)}))
			if ipOpts != nil {
				serr = errors.Join(serr, unix.SetsockoptString(int(fd), unix.IPPROTO_IP, unix.IP_OPTIONS, string(ipOpts)))
			}
		})
		if err = errors.Join(err, serr); err != nil {
			return err
		}
		_, err = pc.WriteTo(b, &net.IPAddr{IP: a.Dst.AsSlice()})
		return err
	})
	if err != nil {
		t.Fatalf("raw send from %s: %v", n, err)
	}
}

// connLog collects a Conn's log lines.
type connLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *connLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *connLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *connLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *connLog) count(substr string) int { return strings.Count(l.String(), substr) }

// connCapture starts tcpdump on the lab's bridge, where every frame passes,
// and returns a function that returns the pcap's path, after stopping
// tcpdump if end is true.
func connCapture(t *testing.T, l *lab.Lab) (stop func(end bool) string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vrrp.pcap")
	cmd := l.Command("tcpdump", "-i", lab.Bridge, "-n", "-U", "--immediate-mode", "-w", path, "ip proto 112")
	stderr, err := cmd.StderrPipe()
	connMust(t, err)
	connMust(t, cmd.Start())
	ready := make(chan bool, 1)
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			if strings.Contains(s.Text(), "listening on") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("tcpdump ended before it listened")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump not listening within 10s")
	}
	stopped := false
	stop = func(end bool) string {
		if end && !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGINT)
			_ = cmd.Wait()
		}
		return path
	}
	t.Cleanup(func() { stop(true) })
	return stop
}
