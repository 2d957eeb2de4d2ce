package vrrp

import (
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/lab"
)

func TestListenRejects(t *testing.T) {
	good := connConfig{Interface: "lo", VRID: 1, Version: 3, Interval: time.Second}
	tests := []struct {
		name string
		edit func(*connConfig)
	}{
		{"version 4", func(c *connConfig) { c.Version = 4 }},
		{"VRID 0", func(c *connConfig) { c.VRID = 0 }},
		{"v2 interval 1.5s", func(c *connConfig) { c.Version, c.Interval = 2, 1500*time.Millisecond }},
		{"v3 interval 0", func(c *connConfig) { c.Interval = 0 }},
		{"password with v3", func(c *connConfig) { c.AuthPass = "secret" }},
		{"password of 9", func(c *connConfig) { c.Version, c.AuthPass = 2, "123456789" }},
		{"unicast group", func(c *connConfig) { c.Group = netip.MustParseAddr("10.0.0.1") }},
		{"multicast peer", func(c *connConfig) { c.Peers = []netip.Addr{defaultGroup} }},
		{"IPv6 VIP, IPv4 group", func(c *connConfig) {
			c.VIPs, c.Group = []netip.Addr{netip.MustParseAddr("fd00::1")}, defaultGroup
		}},
		{"IPv4 VIP, IPv6 peer", func(c *connConfig) {
			c.VIPs, c.Peers = []netip.Addr{netip.MustParseAddr("10.0.0.100")}, []netip.Addr{netip.MustParseAddr("fe80::2")}
		}},
		{"no such interface", func(c *connConfig) { c.Interface = "vvnosuch0" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			if c, err := listenConn(cfg); err == nil {
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
	cfg := connConfig{VRID: 51, Version: 3, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{vip}}
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
		rxb.waitDrop(t, otherVRID)
	})
	t.Run("TTL 1", func(t *testing.T) {
		bad := want
		bad.Src = c.Addr.Addr()
		for range 20 {
			connSendRaw(t, c, 1, nil, bad)
		}
		lab.WaitFor(t, 5*time.Second, "20 bad_ttl drops", func() bool { return cb.drops.Get(badTTL) >= 20 })
		if n := blog.count("reason=bad_ttl"); n != 1 {
			t.Errorf("%d log lines for 20 bad_ttl drops, want 1:\n%s", n, blog)
		}
		clock.Store(int64(dropLogPeriod))
		connSendRaw(t, c, 1, nil, bad)
		lab.WaitFor(t, 5*time.Second, "the 21st bad_ttl drop", func() bool { return cb.drops.Get(badTTL) >= 21 })
		if n := blog.count("reason=bad_ttl"); n != 2 || blog.count("suppressed=19") != 1 {
			t.Errorf("after a period, want a second line with suppressed=19:\n%s", blog)
		}
	})
	t.Run("unicast to a multicast router", func(t *testing.T) {
		uni := cfg
		uni.Peers = []netip.Addr{b.Addr.Addr()}
		connMust(t, connOpen(t, c, uni).Send(100))
		rxb.waitDrop(t, wrongDestination)
	})
	t.Run("no own packets", func(t *testing.T) {
		connMust(t, cb.Send(90))
		rxa.from(t, b.Addr.Addr())
		if n := cb.drops.Get(ownPacket) + ca.drops.Get(ownPacket); n != 0 {
			t.Errorf("%d own packets came back", n)
		}
	})
	// The twin sends every advert, so it carries the same options; it
	// is out of the poller and keeps nothing of what it is sent (the
	// unicast above reached b's sockets, multicast of a group it has not
	// joined would not).
	t.Run("send twin", func(t *testing.T) {
		tx := cb.sock.(*socket4).tx
		var dev string
		var tos, ttl, mttl, loop, queued, flags int
		connMust(t, tx.rc.Control(func(fd uintptr) {
			ip := unix.IPPROTO_IP
			dev, _ = unix.GetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
			tos, _ = unix.GetsockoptInt(int(fd), ip, unix.IP_TOS)
			ttl, _ = unix.GetsockoptInt(int(fd), ip, unix.IP_TTL)
			mttl, _ = unix.GetsockoptInt(int(fd), ip, unix.IP_MULTICAST_TTL)
			loop, _ = unix.GetsockoptInt(int(fd), ip, unix.IP_MULTICAST_LOOP)
			queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
			flags, _ = unix.FcntlInt(fd, unix.F_GETFL, 0)
		}))
		if dev != lab.Iface || tos != 0xc0 || ttl != 255 || mttl != 255 || loop != 0 {
			t.Errorf("twin bound to %q, IP_TOS %#x, IP_TTL %d, IP_MULTICAST_TTL %d, IP_MULTICAST_LOOP %d; want %s, 0xc0, 255, 255, 0",
				dev, tos, ttl, mttl, loop, lab.Iface)
		}
		if flags&unix.O_NONBLOCK != 0 {
			t.Error("twin is non-blocking, so the runtime's poller watches it")
		}
		if queued != 0 {
			t.Errorf("twin holds %d bytes it was sent; its filter should drop them", queued)
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
	cfg := connConfig{VRID: 61, Version: 2, Interval: time.Second, AuthPass: "secret12",
		VIPs: []netip.Addr{l.Host(100).Addr()}}
	rxb := connReceive(t, connOpen(t, b, cfg))
	connMust(t, connOpen(t, a, cfg).Send(120))
	got := rxb.from(t, a.Addr.Addr())
	if got.Version != 2 || got.AuthType != 1 || got.AuthData != authPassword("secret12") || got.Priority != 120 {
		t.Errorf("b received %+v", got)
	}
	wrong := cfg
	wrong.AuthPass = "secret13"
	connMust(t, connOpen(t, c, wrong).Send(120))
	rxb.waitDrop(t, badAuth)
	slow := cfg
	slow.Interval = 2 * time.Second
	connMust(t, connOpen(t, c, slow).Send(120))
	rxb.waitDrop(t, intervalMismatch)
}

// TestConnUnicast: adverts go to each peer with its own pseudo-header
// destination, our own address in the list is skipped, and a sender that
// is not listed is counted.
func TestConnUnicast(t *testing.T) {
	lab.RequireRoot(t)
	l := lab.New(t, netip.MustParsePrefix("10.77.12.0/24"))
	a, b, c := l.AddNode("a", l.Host(11)), l.AddNode("b", l.Host(12)), l.AddNode("c", l.Host(13))
	both := []netip.Addr{a.Addr.Addr(), b.Addr.Addr()}
	cfg := connConfig{VRID: 71, Version: 3, Interval: time.Second, Peers: both,
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
	rxb.waitDrop(t, notPeer)
	if n := ca.drops.Get(ownPacket) + cb.drops.Get(ownPacket); n != 0 {
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
	base := connConfig{VRID: 81, Version: 3, Interval: time.Second, VIPs: []netip.Addr{vip}}
	uni, v2 := base, base
	uni.Peers = []netip.Addr{b.Addr.Addr()}
	v2.Version, v2.AuthPass = 2, "secret12"
	for _, cfg := range []connConfig{base, uni, v2} {
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
