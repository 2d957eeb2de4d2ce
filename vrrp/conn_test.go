package vrrp

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/lab"
)

func TestListenRejects(t *testing.T) {
	good := ConnConfig{Interface: "lo", VRID: 1, Version: 3, Interval: time.Second}
	tests := []struct {
		name string
		edit func(*ConnConfig)
	}{
		{"version 4", func(c *ConnConfig) { c.Version = 4 }},
		{"VRID 0", func(c *ConnConfig) { c.VRID = 0 }},
		{"v2 interval 1.5s", func(c *ConnConfig) { c.Version, c.Interval = 2, 1500*time.Millisecond }},
		{"v3 interval 0", func(c *ConnConfig) { c.Interval = 0 }},
		{"password with v3", func(c *ConnConfig) { c.AuthPass = "secret" }},
		{"password of 9", func(c *ConnConfig) { c.Version, c.AuthPass = 2, "123456789" }},
		{"unicast group", func(c *ConnConfig) { c.Group = netip.MustParseAddr("10.0.0.1") }},
		{"multicast peer", func(c *ConnConfig) { c.Peers = []netip.Addr{defaultGroup} }},
		{"IPv6 VIP, IPv4 group", func(c *ConnConfig) {
			c.VIPs, c.Group = []netip.Addr{netip.MustParseAddr("fd00::1")}, defaultGroup
		}},
		{"IPv4 VIP, IPv6 peer", func(c *ConnConfig) {
			c.VIPs, c.Peers = []netip.Addr{netip.MustParseAddr("10.0.0.100")}, []netip.Addr{netip.MustParseAddr("fe80::2")}
		}},
		{"no such interface", func(c *ConnConfig) { c.Interface = "vvnosuch0" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			if c, err := Listen(cfg); err == nil {
				c.Close()
				t.Fatalf("Listen(%+v) succeeded", cfg)
			} else if !strings.HasPrefix(err.Error(), "vrrp: ") {
				t.Errorf("error %q lacks context", err)
			}
		})
	}
}

// TestConnMulticast: two Conns on a segment exchange v3 adverts, the
// source is the primary even when a VIP comes first on the interface, and
// the drops a socket test can provoke are counted, and logged once.
func TestConnMulticast(t *testing.T) {
	lab.RequireRoot(t)
	l := lab.New(t, netip.MustParsePrefix("10.77.10.0/24"))
	a, b, c := l.AddNode("a", l.Host(11)), l.AddNode("b", l.Host(12)), l.AddNode("c", l.Host(13))
	vip := l.Host(100).Addr()
	// The kernel lists a VIP /32 first once the own address is re-added
	// after it, and would then send multicast from the VIP.
	a.Run("ip", "addr", "add", vip.String()+"/32", "dev", lab.Iface)
	a.Run("ip", "addr", "del", a.Addr.String(), "dev", lab.Iface)
	a.Run("ip", "addr", "add", a.Addr.String(), "dev", lab.Iface)
	if got := a.Addrs(); len(got) != 2 || got[0].Addr() != vip {
		t.Fatalf("a's addresses %v: want the VIP first", got)
	}
	cfg := ConnConfig{VRID: 51, Version: 3, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{vip}}
	ca := connOpen(t, a, cfg)
	blog := &connLog{}
	cfgB := cfg
	cfgB.Log = blog.logger()
	cb := connOpen(t, b, cfgB)
	var clock atomic.Int64 // b's rate limiter's time, since t0
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cb.now = func() time.Time { return t0.Add(time.Duration(clock.Load())) }
	rxa, rxb := connReceive(t, ca), connReceive(t, cb)

	if ca.Primary() != a.Addr.Addr() {
		t.Fatalf("a's Primary = %v, want %v", ca.Primary(), a.Addr.Addr())
	}
	connMust(t, ca.Send(150))
	got := rxb.from(t, a.Addr.Addr())
	want := Advert{Version: 3, VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
		Addrs: []netip.Addr{vip}, Src: a.Addr.Addr(), Dst: defaultGroup}
	if d := pktDiff(want, *got); d != "" {
		t.Errorf("b received (-want +got):\n%s", d)
	}

	t.Run("socket options", func(t *testing.T) {
		rc, err := cb.sock.(*socket4).ipc.SyscallConn()
		connMust(t, err)
		var dev string
		var all, loop, tos, ttl, mttl, pktinfo int
		connMust(t, rc.Control(func(fd uintptr) {
			ip := unix.IPPROTO_IP
			dev, _ = unix.GetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
			all, _ = unix.GetsockoptInt(int(fd), ip, unix.IP_MULTICAST_ALL)
			loop, _ = unix.GetsockoptInt(int(fd), ip, unix.IP_MULTICAST_LOOP)
			tos, _ = unix.GetsockoptInt(int(fd), ip, unix.IP_TOS)
			ttl, _ = unix.GetsockoptInt(int(fd), ip, unix.IP_TTL)
			mttl, _ = unix.GetsockoptInt(int(fd), ip, unix.IP_MULTICAST_TTL)
			pktinfo, _ = unix.GetsockoptInt(int(fd), ip, unix.IP_PKTINFO)
		}))
		if dev != lab.Iface || all != 0 || loop != 0 || tos != 0xc0 {
			t.Errorf("bound to %q, IP_MULTICAST_ALL %d, IP_MULTICAST_LOOP %d, IP_TOS %#x; want %s, 0, 0, 0xc0",
				dev, all, loop, tos, lab.Iface)
		}
		if ttl != 255 || mttl != 255 || pktinfo != 1 {
			t.Errorf("IP_TTL %d, IP_MULTICAST_TTL %d, IP_PKTINFO %d; want 255, 255, 1", ttl, mttl, pktinfo)
		}
	})
	t.Run("other VRID", func(t *testing.T) {
		other := cfg
		other.VRID = 52
		connMust(t, connOpen(t, c, other).Send(100))
		rxb.waitDrop(t, OtherVRID)
	})
	t.Run("TTL 1", func(t *testing.T) {
		bad := want
		bad.Src = c.Addr.Addr()
		for range 20 {
			connSendRaw(t, c, 1, nil, bad)
		}
		lab.WaitFor(t, 5*time.Second, "20 bad_ttl drops", func() bool { return cb.drops.Get(BadTTL) >= 20 })
		if n := blog.count("reason=bad_ttl"); n != 1 {
			t.Errorf("%d log lines for 20 bad_ttl drops, want 1:\n%s", n, blog)
		}
		clock.Store(int64(dropLogPeriod))
		connSendRaw(t, c, 1, nil, bad)
		lab.WaitFor(t, 5*time.Second, "the 21st bad_ttl drop", func() bool { return cb.drops.Get(BadTTL) >= 21 })
		if n := blog.count("reason=bad_ttl"); n != 2 || blog.count("suppressed=19") != 1 {
			t.Errorf("after a period, want a second line with suppressed=19:\n%s", blog)
		}
	})
	t.Run("unicast to a multicast router", func(t *testing.T) {
		uni := cfg
		uni.Peers = []netip.Addr{b.Addr.Addr()}
		connMust(t, connOpen(t, c, uni).Send(100))
		rxb.waitDrop(t, WrongDestination)
	})
	t.Run("no own packets", func(t *testing.T) {
		connMust(t, cb.Send(90))
		rxa.from(t, b.Addr.Addr())
		if n := cb.drops.Get(OwnPacket) + ca.drops.Get(OwnPacket); n != 0 {
			t.Errorf("%d own packets came back", n)
		}
	})
	t.Run("no primary", func(t *testing.T) {
		ca.SetPrimary(netip.Addr{})
		if err := ca.Send(150); err == nil {
			t.Error("Send without an address succeeded")
		}
		connPrimary(t, a, ca, []netip.Addr{vip})
		connMust(t, ca.Send(151))
		if got := rxb.from(t, a.Addr.Addr()); got.Priority != 151 {
			t.Errorf("after SetPrimary, b received priority %d, want 151", got.Priority)
		}
	})
	t.Run("close", func(t *testing.T) {
		connMust(t, cb.Close())
		if err := rxb.wait(t); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Receive after Close = %v, want net.ErrClosed", err)
		}
	})
}

// TestConnPassword: v2 with a password; a wrong password and another
// interval are counted.
func TestConnPassword(t *testing.T) {
	lab.RequireRoot(t)
	l := lab.New(t, netip.MustParsePrefix("10.77.11.0/24"))
	a, b, c := l.AddNode("a", l.Host(11)), l.AddNode("b", l.Host(12)), l.AddNode("c", l.Host(13))
	cfg := ConnConfig{VRID: 61, Version: 2, Interval: time.Second, AuthPass: "secret12",
		VIPs: []netip.Addr{l.Host(100).Addr()}}
	rxb := connReceive(t, connOpen(t, b, cfg))
	connMust(t, connOpen(t, a, cfg).Send(120))
	got := rxb.from(t, a.Addr.Addr())
	if got.Version != 2 || got.AuthType != 1 || got.AuthData != Password("secret12") || got.Priority != 120 {
		t.Errorf("b received %+v", got)
	}
	wrong := cfg
	wrong.AuthPass = "secret13"
	connMust(t, connOpen(t, c, wrong).Send(120))
	rxb.waitDrop(t, BadAuth)
	slow := cfg
	slow.Interval = 2 * time.Second
	connMust(t, connOpen(t, c, slow).Send(120))
	rxb.waitDrop(t, IntervalMismatch)
}

// TestConnUnicast: adverts go to each peer with its own pseudo-header
// destination, our own address in the list is skipped, and a sender that
// is not listed is counted.
func TestConnUnicast(t *testing.T) {
	lab.RequireRoot(t)
	l := lab.New(t, netip.MustParsePrefix("10.77.12.0/24"))
	a, b, c := l.AddNode("a", l.Host(11)), l.AddNode("b", l.Host(12)), l.AddNode("c", l.Host(13))
	both := []netip.Addr{a.Addr.Addr(), b.Addr.Addr()}
	cfg := ConnConfig{VRID: 71, Version: 3, Interval: time.Second, Peers: both,
		VIPs: []netip.Addr{l.Host(100).Addr()}}
	ca, cb := connOpen(t, a, cfg), connOpen(t, b, cfg)
	rxa, rxb := connReceive(t, ca), connReceive(t, cb)
	connMust(t, ca.Send(130))
	if got := rxb.from(t, a.Addr.Addr()); got.Dst != b.Addr.Addr() || got.Priority != 130 {
		t.Errorf("b received %+v, want priority 130 with Dst %v", got, b.Addr.Addr())
	}
	connMust(t, cb.Send(110))
	if got := rxa.from(t, b.Addr.Addr()); got.Dst != a.Addr.Addr() {
		t.Errorf("a received %+v, want Dst %v", got, a.Addr.Addr())
	}
	stray := cfg
	stray.Peers = both[1:]
	connMust(t, connOpen(t, c, stray).Send(140))
	rxb.waitDrop(t, NotPeer)
	if n := ca.drops.Get(OwnPacket) + cb.drops.Get(OwnPacket); n != 0 {
		t.Errorf("%d own packets: a listed peer equal to our address was sent to", n)
	}
}

// TestConnWire captures our adverts on the bridge and has Wireshark's
// dissector check them: VRRP, checksum good, TTL 255, TOS 0xc0, source the
// primary address, for v3 multicast, v3 unicast and v2 with a password.
func TestConnWire(t *testing.T) {
	lab.RequireRoot(t)
	tshark := connNeed(t, "tshark")
	l := lab.New(t, netip.MustParsePrefix("10.77.13.0/24"))
	a, b := l.AddNode("a", l.Host(11)), l.AddNode("b", l.Host(12))
	vip := l.Host(100).Addr()
	a.Run("ip", "addr", "add", vip.String()+"/24", "dev", lab.Iface)
	stop := connCapture(t, l)
	base := ConnConfig{VRID: 81, Version: 3, Interval: time.Second, VIPs: []netip.Addr{vip}}
	uni, v2 := base, base
	uni.Peers = []netip.Addr{b.Addr.Addr()}
	v2.Version, v2.AuthPass = 2, "secret12"
	for _, cfg := range []ConnConfig{base, uni, v2} {
		c := connOpen(t, a, cfg)
		connMust(t, c.Send(200))
		connMust(t, c.Send(0))
	}
	// Real time: the packets cross a real bridge to a real tcpdump.
	lab.WaitFor(t, 5*time.Second, "tcpdump to write 6 packets", func() bool {
		out, _ := exec.Command(tshark, "-r", stop(false), "-T", "fields", "-e", "vrrp.version").Output()
		return strings.Count(string(out), "\n") >= 6
	})
	out, err := exec.Command(tshark, "-r", stop(true), "-V", "-Y", "vrrp").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	frames := strings.Split(string(out), "\nFrame ")
	if len(frames) != 6 {
		t.Fatalf("tshark decoded %d VRRP frames, want 6:\n%s", len(frames), out)
	}
	for i, f := range frames {
		for _, want := range []string{"Virtual Router Redundancy Protocol", "[Checksum Status: Good]",
			"Time to Live: 255", "Differentiated Services Field: 0xc0",
			"Source Address: " + a.Addr.Addr().String(), "IP Address: " + vip.String()} {
			if !strings.Contains(f, want) {
				t.Errorf("frame %d lacks %q:\n%s", i+1, want, f)
			}
		}
	}
}

// connOpen opens a Conn on eth0 of node n, its source the primary address
// as VIPs finds it; its socket stays in n's namespace. It is closed when
// the test ends.
func connOpen(t *testing.T, n *lab.Node, cfg ConnConfig) *Conn {
	t.Helper()
	cfg.Interface = lab.Iface
	var c *Conn
	err := n.Do(func() (err error) {
		c, err = Listen(cfg)
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
func connPrimary(t *testing.T, n *lab.Node, c *Conn, vips []netip.Addr) {
	t.Helper()
	var p netip.Prefix
	err := n.Do(func() error {
		var ps []netip.Prefix
		for _, a := range vips {
			ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
		}
		v, err := NewVIPs(lab.Iface, ps, nil)
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
	c    *Conn
	ads  chan *Advert
	done chan struct{}
	err  error // Receive's final error, once done is closed
}

// connReceive starts receiving on c until c is closed; the test's cleanup
// closes c and waits, so nothing logs after the test.
func connReceive(t *testing.T, c *Conn) *connRx {
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

func (r *connRx) waitDrop(t *testing.T, reason DropReason) {
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
