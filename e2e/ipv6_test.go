package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// IPv6: an instance whose VIPs are IPv6 speaks VRRPv3 over IPv6 (RFC
// 5798): adverts to ff02::12 or unicast peers with hop limit 255 from the
// link-local address, VIPs added without DAD and announced by unsolicited
// neighbour advertisements.

// v6Host is the address of host number n in the lab's IPv6 subnet,
// fd00:77::/64, written with n's digits: host 100 is fd00:77::100.
func v6Host(n int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("fd00:77::%d/64", n))
}

// v6Cluster is a cluster whose nodes also speak IPv6, with an IPv6 VIP.
type v6Cluster struct {
	*cluster
	vip6 netip.Prefix
}

func newV6Cluster(t *testing.T) *v6Cluster {
	c := &v6Cluster{cluster: newCluster(t), vip6: v6Host(100)}
	c.client.EnableIPv6(v6Host(50))
	return c
}

// node6 is a web node with IPv6 on, nginx on both families.
func (c *v6Cluster) node6(name string, host int) *node {
	n := &node{Node: c.lab.AddNode(name, c.lab.Host(host)), c: c.cluster, dir: c.t.TempDir()}
	n.EnableIPv6(v6Host(host))
	lab.NginxConf(c.t, n.dir, netip.AddrPortFrom(netip.IPv6Unspecified(), 80), name)
	return n
}

// v6Env is the environment of a one-instance IPv6 vipvisor node.
func (c *v6Cluster) v6Env(extra ...string) []string {
	return append([]string{"VIPVISOR_VIPS=" + c.vip6.String(), "VIPVISOR_VRID=61"}, extra...)
}

// start6 runs vipvisor with nginx on n, an IPv6 instance at prio.
func (c *v6Cluster) start6(n *node, prio int, extra ...string) {
	c.t.Helper()
	n.startVipvisor(prio, c.v6Env(extra...)...)
}

// served6 waits until the client gets n's page at the IPv6 VIP and n
// holds it, usable (not tentative).
func (c *v6Cluster) served6(n *node, within time.Duration) {
	c.t.Helper()
	url := fmt.Sprintf("http://[%s]/", c.vip6.Addr())
	lab.WaitFor(c.t, within, n.Name+" to serve "+c.vip6.Addr().String(), func() bool {
		_, body, err := c.client.HTTPGet(url, 100*time.Millisecond)
		return err == nil && body == n.Name && n.HasAddr(c.vip6.Addr()) && !n.Tentative(c.vip6.Addr())
	})
}

// soleHolder6 waits until want alone holds the IPv6 VIP.
func (c *v6Cluster) soleHolder6(want *node, others ...*node) {
	c.t.Helper()
	lab.WaitFor(c.t, 2*time.Second, want.Name+" alone to hold "+c.vip6.Addr().String(), func() bool {
		if !want.HasAddr(c.vip6.Addr()) {
			return false
		}
		for _, o := range others {
			if o.HasAddr(c.vip6.Addr()) {
				return false
			}
		}
		return true
	})
}

func TestIPv6TwoVipvisors(t *testing.T) {
	c := newV6Cluster(t)
	a, b := c.node6("a", 11), c.node6("b", 12)
	capture := a.Command("tcpdump", "-i", "eth0", "-w", filepath.Join(a.dir, "vrrp6.pcap"), "-U", "ip6 proto 112")
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	c.start6(a, 150)
	c.start6(b, 100)
	c.served6(a, 10*time.Second)
	c.soleHolder6(a, b)
	lab.WaitFor(t, 5*time.Second, "b to follow a", func() bool { return b.state() == "BACKUP" })
	if s, _ := b.status(); s.VRRP.Master != a.LinkLocal().String() {
		t.Errorf("b sees master %q, want a's link-local %s", s.VRRP.Master, a.LinkLocal())
	}
	// a's link cut: b takes over, a preempts back once it returns.
	a.LinkDown()
	c.served6(b, 5*time.Second)
	a.LinkUp()
	c.served6(a, 10*time.Second)
	c.soleHolder6(a, b)
	time.Sleep(time.Second) // ten adverts of a's at least
	capture.Process.Signal(syscall.SIGTERM)
	capture.Wait()
	checkV6Capture(t, filepath.Join(a.dir, "vrrp6.pcap"), c.vip6.Addr(), a, b)
}

// checkV6Capture decodes a capture with tshark and checks what every
// advert must be: VRRPv3 over IPv6, to ff02::12, hop limit 255, from a
// link-local address, a good checksum, our VIP in the list.
func checkV6Capture(t *testing.T, pcap string, vip netip.Addr, from ...*node) {
	t.Helper()
	out := runTshark(t, pcap, "ipv6.src", "ipv6.dst", "ipv6.hlim", "vrrp.version", "vrrp.checksum.status", "vrrp.ipv6_addr")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 10 {
		t.Fatalf("only %d adverts captured:\n%s", len(lines), out)
	}
	var sources []string
	for _, n := range from {
		sources = append(sources, n.LinkLocal().String())
	}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 6 || !slices.Contains(sources, f[0]) || f[1] != "ff02::12" || f[2] != "255" || f[3] != "3" || f[4] != "1" {
			t.Errorf("advert %q: want a link-local source of %v, ff02::12, hop limit 255, version 3, checksum good (1)", l, sources)
			return
		}
		if f[5] != vip.String() {
			t.Errorf("advert %q lists %q, want %s", l, f[5], vip)
		}
	}
}

// runTshark decodes pcap with tshark and returns the fields, tab
// separated, one line per packet.
func runTshark(t *testing.T, pcap string, fields ...string) string {
	t.Helper()
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		lab.Skip(t, "tshark not installed")
	}
	args := []string{"-r", pcap, "-T", "fields"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command(tshark, args...).Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// v6Pair starts vipvisor on v and keepalived on k over IPv6, VRID 61, v3 at
// 100ms, multicast or unicast between link-local addresses; the one named
// master has priority 150, the other 100.
func (c *v6Cluster) v6Pair(unicast, vipvisorMaster bool) (v, k *node, ka *keepalived) {
	v, k = c.node6("vv", 11), c.node6("ka", 12)
	vp, kp := 100, 150
	if vipvisorMaster {
		vp, kp = 150, 100
	}
	opts := kaOpts{version: 3, interval: "0.1", instances: []kaInstance{{name: "VI_61", vrid: 61, prio: kp, vip: c.vip6}}}
	var env []string
	if unicast {
		opts.peers = []*node{v}
		env = append(env, "VIPVISOR_UNICAST_PEERS="+k.LinkLocal().String())
	}
	ka = k.startKeepalived(opts)
	c.start6(v, vp, env...)
	return v, k, ka
}

func TestIPv6Interop(t *testing.T) {
	for _, unicast := range []bool{false, true} {
		mode := "multicast"
		if unicast {
			mode = "unicast"
		}
		t.Run(mode+"/vipvisor master", func(t *testing.T) {
			c := newV6Cluster(t)
			v, k, ka := c.v6Pair(unicast, true)
			c.served6(v, 10*time.Second)
			lab.WaitFor(t, 5*time.Second, "keepalived to settle as backup", func() bool { return ka.stateOf("VI_61") == "BACKUP" })
			c.soleHolder6(v, k)
			// Link cut: keepalived takes over; back: vipvisor preempts.
			v.LinkDown()
			c.served6(k, 5*time.Second)
			v.LinkUp()
			c.served6(v, 10*time.Second)
			c.soleHolder6(v, k)
			checkClean(t, v, ka)
			// Planned stop: keepalived takes over at once.
			v.stop()
			c.served6(k, 5*time.Second)
		})
		t.Run(mode+"/keepalived master", func(t *testing.T) {
			c := newV6Cluster(t)
			v, k, ka := c.v6Pair(unicast, false)
			c.served6(k, 10*time.Second)
			lab.WaitFor(t, 5*time.Second, "vipvisor to follow keepalived", func() bool { return v.state() == "BACKUP" })
			c.soleHolder6(k, v)
			if s, _ := v.status(); s.VRRP.Master != k.LinkLocal().String() {
				t.Errorf("vipvisor sees master %q, want keepalived at %s", s.VRRP.Master, k.LinkLocal())
			}
			k.LinkDown()
			c.served6(v, 5*time.Second)
			k.LinkUp()
			c.served6(k, 10*time.Second)
			c.soleHolder6(k, v)
			checkClean(t, v, ka)
			ka.stop()
			c.served6(v, 5*time.Second)
		})
	}
}

// checkClean checks that neither side found fault with the other's
// adverts: vipvisor dropped none, keepalived logged no complaint.
func checkClean(t *testing.T, v *node, ka *keepalived) {
	t.Helper()
	s, err := v.status()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range s.Instances {
		for reason, n := range in.Drops {
			if n > 0 {
				t.Errorf("vipvisor's %s dropped %d of keepalived's adverts as %s", in.Name, n, reason)
			}
		}
	}
	if len(s.Instances) == 0 {
		t.Error("vipvisor's /status lists no instance")
	}
	b, _ := os.ReadFile(filepath.Join(ka.n.dir, "keepalived.log"))
	for _, line := range strings.Split(string(b), "\n") {
		l := strings.ToLower(line)
		for _, word := range []string{"invalid", "bad ", "error", "mismatch", "ttl", "hop", "checksum", "ip address associated"} {
			if strings.Contains(l, word) {
				t.Errorf("keepalived complained: %s", line)
				break
			}
		}
	}
}
