package vrrp

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// vipTestLog returns a logger that writes into the test's log.
func vipTestLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(vipTestWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type vipTestWriter struct{ t testing.TB }

func (w vipTestWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// vipLab builds a lab with one node, a, at 10.77.0.11/24.
func vipLab(t *testing.T) (*lab.Lab, *lab.Node) {
	t.Helper()
	lab.RequireRoot(t)
	l := lab.New(t, netip.Prefix{})
	return l, l.AddNode("a", l.Host(11))
}

// vipNew makes a VIPs for the node's eth0 inside the node's namespace;
// the VIPs then works from any goroutine.
func vipNew(t testing.TB, n *lab.Node, vips ...netip.Prefix) *vipSet {
	t.Helper()
	var v *vipSet
	err := n.Do(func() (err error) {
		v, err = newVIPSet(n.Iface, vips, vipTestLog(t))
		return err
	})
	if err != nil {
		t.Fatalf("NewVIPs in %s: %v", n, err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// vipPrefixes parses prefixes for a test table.
func vipPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// vipMany returns n /32 VIPs in 10.99.0.0/16, away from the lab's subnet.
func vipMany(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, byte(i / 250), byte(1 + i%250)}), 32)
	}
	return out
}

func vipDiff(want, got []netip.Prefix) string {
	return fmt.Sprintf("(-want +got):\n-%v\n+%v", want, got)
}

func TestNewVIPsMissingInterface(t *testing.T) {
	// Looking a link up needs no privilege and changes nothing.
	_, err := newVIPSet("vvnosuch0", vipPrefixes("10.77.0.100/32"), nil)
	if err == nil || !strings.Contains(err.Error(), "vvnosuch0") {
		t.Fatalf("NewVIPs on a missing interface: error %v, want one naming vvnosuch0", err)
	}
}

func TestNewVIPsRejectsMixedFamilies(t *testing.T) {
	_, err := newVIPSet("lo", vipPrefixes("10.0.0.1/32", "fd00::1/128"), nil)
	if err == nil || !strings.Contains(err.Error(), "fd00::1/128") {
		t.Fatalf("NewVIPs with an IPv4 and an IPv6 VIP: error %v, want one naming the IPv6 one", err)
	}
}

// IPv6 VIPs are usable at once: added without duplicate address
// detection, which would hold them tentative for a second, and would
// find the old master's copy after a takeover. Stale copies of other
// families are not touched.
func TestVIPsIPv6AddedWithoutDAD(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)
	a.EnableIPv6(netip.MustParsePrefix("fd00:77::11/64"))
	vips := vipPrefixes("fd00:77::100/64", "fd00:78::1/128")
	v := vipNew(t, a, vips...)
	if err := v.Add(); err != nil {
		t.Fatal(err)
	}
	for _, p := range vips {
		if !a.HasAddr(p.Addr()) || a.Tentative(p.Addr()) {
			t.Errorf("%s: present %v, tentative %v; want present and usable", p, a.HasAddr(p.Addr()), a.Tentative(p.Addr()))
		}
	}
	if p, err := v.Primary(); err != nil || !p.Addr().IsLinkLocalUnicast() {
		t.Errorf("primary %v (%v), want the link-local address", p, err)
	}
	if err := v.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, p := range vips {
		if a.HasAddr(p.Addr()) {
			t.Errorf("%s left after Remove", p)
		}
	}
	if !a.HasAddr(netip.MustParseAddr("fd00:77::11")) || !a.HasAddr(a.Addr.Addr()) {
		t.Errorf("Remove took the node's own addresses: %v %v", a.Addrs(), a.Addrs6())
	}
}

func TestVIPsAddRemove(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)
	vips := vipPrefixes("10.77.0.100/32", "10.77.0.101/24", "10.98.0.1/32", "10.98.1.1/24")
	v := vipNew(t, a, vips...)
	own := a.Addrs()

	check := func(step string, want []netip.Prefix) {
		t.Helper()
		got, err := v.Present()
		if err != nil {
			t.Fatalf("%s: Present: %v", step, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: Present %s", step, vipDiff(want, got))
		}
		wantAddrs := append(slices.Clone(own), want...)
		gotAddrs := a.Addrs()
		slices.SortFunc(wantAddrs, netip.Prefix.Compare)
		slices.SortFunc(gotAddrs, netip.Prefix.Compare)
		if !slices.Equal(gotAddrs, wantAddrs) {
			t.Errorf("%s: addresses on eth0 %s", step, vipDiff(wantAddrs, gotAddrs))
		}
	}
	check("at start", nil)
	for i := range 2 {
		if err := v.Add(); err != nil {
			t.Fatalf("Add #%d: %v", i+1, err)
		}
		check(fmt.Sprintf("after Add #%d", i+1), vips)
	}
	for i := range 2 {
		if err := v.Remove(); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
		check(fmt.Sprintf("after Remove #%d", i+1), nil)
	}
}

func TestVIPsPresentComparesAddresses(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)
	v := vipNew(t, a, vipPrefixes("10.77.0.100/32", "10.77.0.101/32")...)
	a.Run("ip", "addr", "add", "10.77.0.100/24", "dev", "eth0")
	got, err := v.Present()
	if err != nil {
		t.Fatal(err)
	}
	// Found with another prefix length, reported as configured.
	if want := vipPrefixes("10.77.0.100/32"); !slices.Equal(got, want) {
		t.Errorf("Present %s", vipDiff(want, got))
	}
}

func TestVIPsMany(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)
	vips := vipMany(200)
	v := vipNew(t, a, vips...)
	start := time.Now()
	if err := v.Add(); err != nil {
		t.Fatal(err)
	}
	added := time.Since(start)
	got, err := v.Present()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, vips) {
		t.Errorf("Present after Add: %d of %d VIPs", len(got), len(vips))
	}
	start = time.Now()
	if err := v.Remove(); err != nil {
		t.Fatal(err)
	}
	removed := time.Since(start)
	if got, err := v.Present(); err != nil || len(got) != 0 {
		t.Errorf("Present after Remove: %d VIPs, %v", len(got), err)
	}
	t.Logf("200 VIPs: Add %v, Remove %v", added, removed)
}

func TestVIPsRemoveStale(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)
	// As a run killed with -9 would leave them: one VIP as configured, one
	// with another prefix length, and an operator's address that is no VIP.
	a.Run("ip", "addr", "add", "10.77.0.100/32", "dev", "eth0")
	a.Run("ip", "addr", "add", "10.77.0.101/24", "dev", "eth0")
	a.Run("ip", "addr", "add", "10.77.0.50/32", "dev", "eth0")
	v := vipNew(t, a, vipPrefixes("10.77.0.100/32", "10.77.0.101/32", "10.77.0.102/32")...)

	removed, err := v.RemoveStale()
	if err != nil {
		t.Fatal(err)
	}
	if want := vipPrefixes("10.77.0.100/32", "10.77.0.101/24"); !slices.Equal(removed, want) {
		t.Errorf("RemoveStale removed %s", vipDiff(want, removed))
	}
	if want, got := []netip.Prefix{a.Addr, netip.MustParsePrefix("10.77.0.50/32")}, a.Addrs(); !slices.Equal(got, want) {
		t.Errorf("addresses left %s", vipDiff(want, got))
	}
	if removed, err := v.RemoveStale(); err != nil || len(removed) != 0 {
		t.Errorf("second RemoveStale: removed %v, %v; want nothing", removed, err)
	}
}

func TestVIPsPrimary(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)
	// A VIP added before the node's own address comes first in the
	// kernel's list; it must not be taken for the primary.
	vip := netip.MustParsePrefix("10.98.0.1/24")
	a.Run("ip", "addr", "flush", "dev", "eth0")
	a.Run("ip", "addr", "add", vip.String(), "dev", "eth0")
	a.Run("ip", "addr", "add", a.Addr.String(), "dev", "eth0")
	a.Run("ip", "addr", "add", "10.77.0.30/24", "dev", "eth0") // secondary
	v := vipNew(t, a, vip)
	if p, err := v.Primary(); err != nil || p != a.Addr {
		t.Errorf("Primary = %v, %v; want %v", p, err, a.Addr)
	}
	a.Run("ip", "addr", "flush", "dev", "eth0")
	if p, err := v.Primary(); err != nil || p.IsValid() {
		t.Errorf("Primary with no address = %v, %v; want the zero Prefix", p, err)
	}
}

func TestVIPsLinkUp(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)
	v := vipNew(t, a)
	steps := []struct {
		name string
		do   func()
		want bool
	}{
		{"at start", func() {}, true},
		{"carrier lost", a.LinkDown, false},
		{"carrier back", a.LinkUp, true},
		{"admin down", a.IfaceDown, false},
		{"admin up", a.IfaceUp, true},
	}
	for _, s := range steps {
		s.do()
		// The carrier of a veth follows its peer at once, but the
		// operational state is set by the kernel's linkwatch work,
		// asynchronously: wait for it on real time.
		lab.WaitFor(t, 5*time.Second, fmt.Sprintf("LinkUp %v %s", s.want, s.name), func() bool {
			up, err := v.LinkUp()
			if err != nil {
				t.Fatal(err)
			}
			return up == s.want
		})
	}
}

func TestChoosePrimary(t *testing.T) {
	p := netip.MustParsePrefix
	own, vip, other := p("10.0.0.11/24"), p("10.0.0.100/24"), p("10.0.1.5/24")
	sec := func(a netip.Prefix) vipIfAddr { return vipIfAddr{prefix: a, flags: unix.IFA_F_SECONDARY} }
	pri := func(a netip.Prefix) vipIfAddr { return vipIfAddr{prefix: a} }
	ll, ula, vip6 := p("fe80::11/64"), p("fd00::11/64"), p("fd00::100/128")
	tests := []struct {
		name  string
		v6    bool
		addrs []vipIfAddr // in the kernel's order
		want  netip.Prefix
	}{
		{"own address only", false, []vipIfAddr{pri(own)}, own},
		{"own, then the VIP as its secondary", false, []vipIfAddr{pri(own), sec(vip)}, own},
		{"VIP /32 first, as the kernel lists it after a re-add", false, []vipIfAddr{pri(p("10.0.0.100/32")), pri(own)}, own},
		{"first primary wins", false, []vipIfAddr{pri(other), pri(own)}, other},
		{"a secondary before a primary", false, []vipIfAddr{sec(other), pri(own)}, own},
		{"the VIP promoted, own address now secondary", false, []vipIfAddr{pri(vip), sec(own)}, own},
		{"only VIPs", false, []vipIfAddr{pri(vip)}, netip.Prefix{}},
		{"nothing", false, nil, netip.Prefix{}},
		{"IPv6: the link-local address", true, []vipIfAddr{pri(ula), pri(ll)}, ll},
		{"IPv6: the VIP skipped", true, []vipIfAddr{pri(vip6), pri(ll)}, ll},
		{"IPv6: no link-local address", true, []vipIfAddr{pri(ula), pri(vip6)}, netip.Prefix{}},
	}
	isVIP := map[netip.Addr]bool{vip.Addr(): true, vip6.Addr(): true}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := choosePrimary(tc.addrs, isVIP, tc.v6); got != tc.want {
				t.Errorf("choosePrimary = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestNewInstanceNeedsAnAddressOfItsOwn: an instance must have a source
// for its adverts, which VIPs decides: an IPv4 address that is not a VIP,
// or for IPv6 a link-local address.
func TestNewInstanceNeedsAnAddressOfItsOwn(t *testing.T) {
	_, a := vipLab(t)
	a.Run("ip", "addr", "flush", "dev", a.Iface)
	a.Run("ip", "addr", "add", "10.77.0.100/24", "dev", a.Iface) // the VIP, left over
	for _, tc := range []struct {
		vip, want string
	}{
		{"10.77.0.100/24", "no IPv4 address of its own"},
		{"fd00::100/64", "no IPv6 link-local address"}, // the lab's nodes start without IPv6
	} {
		cfg := validConfig()
		cfg.Interface, cfg.VIPS = a.Iface, vipPrefixes(tc.vip)
		if cfg.IPv6() {
			cfg.McastGroup = netip.Addr{} // ff02::12
		}
		err := a.Do(func() error {
			i, err := openInstance(&cfg, vipTestLog(t))
			if err == nil {
				i.conn.Close()
			}
			return err
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), a.Iface) {
			t.Errorf("NewInstance with VIPs %s: %v, want an error naming %s: %s", tc.vip, err, a.Iface, tc.want)
		}
	}
}

// A VIP the kernel refuses is named in Add's error; the others of its
// batch and of the batches after it are added and announced all the same.
func TestVIPsAddNamesTheOneRefusedAndAddsTheRest(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)
	a.EnableIPv6(netip.MustParsePrefix("fd00:77::11/64"))
	var vips []netip.Prefix
	for i := range 2*addrBatch + 3 {
		vips = append(vips, netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x78, 14: byte(i >> 8), 15: byte(i)}), 128))
	}
	bad := netip.MustParsePrefix("ff0e::1/128") // the kernel adds no multicast address
	vips = slices.Insert(vips, addrBatch+5, bad)
	v := vipNew(t, a, vips...)
	var announced []netip.Prefix
	v.added = func(p netip.Addr) { announced = append(announced, netip.PrefixFrom(p, 128)) }
	err := v.Add()
	if err == nil || !strings.Contains(err.Error(), bad.String()) || strings.Count(err.Error(), "\n") > 0 {
		t.Errorf("Add: %v; want one error naming %s", err, bad)
	}
	want := slices.DeleteFunc(slices.Clone(vips), func(p netip.Prefix) bool { return p == bad })
	got, perr := v.Present()
	if perr != nil {
		t.Fatal(perr)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Present after Add %s", vipDiff(want, got))
	}
	if !slices.Equal(announced, want) {
		t.Errorf("announced as added %s", vipDiff(want, announced))
	}
	if err := v.Remove(); err != nil {
		t.Errorf("Remove with one VIP never added: %v", err)
	}
	if got, _ := v.Present(); len(got) != 0 {
		t.Errorf("left after Remove: %v", got)
	}
}

// The VIPs go on as ip addr add puts them: an IPv4 prefix shorter than
// /31 with its broadcast address, a /32 without one.
func TestVIPsAddedWithBroadcast(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)
	v := vipNew(t, a, vipPrefixes("10.98.1.1/24", "10.98.2.1/30", "10.98.3.1/32")...)
	if err := v.Add(); err != nil {
		t.Fatal(err)
	}
	out := a.Run("ip", "-4", "-o", "addr", "show", "dev", "eth0")
	for _, want := range []string{"10.98.1.1/24 brd 10.98.1.255 ", "10.98.2.1/30 brd 10.98.2.3 ", "10.98.3.1/32 scope global"} {
		if !strings.Contains(out, want) {
			t.Errorf("ip addr does not show %q:\n%s", want, out)
		}
	}
}
