package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
	"github.com/vipvisor/vipvisor/vrrp"
)

// A dual-stack node runs one virtual router per family (RFC 5798 §4.1 on
// IPv4 and IPv6 being separate): here both on VRID 51, as the contract's
// example writes them, against keepalived with one vrrp_instance of each.

// startDualStack runs vipvisor with nginx on n: web4 holds the IPv4 VIP at
// prio4, web6 the IPv6 VIP at prio6, both VRID 51.
func (c *v6Cluster) startDualStack(n *node, prio4, prio6 int) {
	c.t.Helper()
	env := append(slices.Clone(probeEnv),
		"VIPVISOR_INSTANCES=web4,web6",
		"VIPVISOR_WEB4_VIPS="+c.vip.String(), fmt.Sprintf("VIPVISOR_WEB4_PRIORITY=%d", prio4),
		"VIPVISOR_WEB6_VIPS="+c.vip6.String(), fmt.Sprintf("VIPVISOR_WEB6_PRIORITY=%d", prio6))
	n.startVipvisor(100, env...)
}

func TestDualStackWithKeepalived(t *testing.T) {
	c := newV6Cluster(t)
	aa := &aaCluster{cluster: c.cluster}
	v, k := c.node6("vv", 11), c.node6("ka", 12)
	ka := k.startKeepalived(kaOpts{version: 3, interval: "0.1", instances: []kaInstance{
		{name: "VI_4", vrid: 51, prio: 100, vip: c.vip},
		{name: "VI_6", vrid: 51, prio: 150, vip: c.vip6},
	}})
	// vipvisor is master of IPv4, keepalived of IPv6.
	c.startDualStack(v, 150, 100)
	aa.servedAt(c.vip, v, 10*time.Second)
	c.served6(k, 10*time.Second)
	lab.WaitFor(t, 5*time.Second, "vv: web4 MASTER, web6 BACKUP", func() bool {
		return slices.Equal(v.instanceStates(), []string{"web4 MASTER", "web6 BACKUP"})
	})
	lab.WaitFor(t, 5*time.Second, "keepalived: VI_4 BACKUP, VI_6 MASTER", func() bool {
		return ka.stateOf("VI_4") == "BACKUP" && ka.stateOf("VI_6") == "MASTER"
	})
	if s, _ := v.status(); len(s.Instances) != 2 || s.Instances[0].Master != v.Addr.Addr().String() || s.Instances[1].Master != k.LinkLocal().String() {
		t.Errorf("vv's instances %+v: want web4's master vv (%s), web6's keepalived's link-local %s", s.Instances, v.Addr.Addr(), k.LinkLocal())
	}
	c.soleHolder6(k, v)

	// vv's nginx crash-loops: keepalived takes the IPv4 VIP too.
	v.crashLoop()
	aa.servedAt(c.vip, k, 5*time.Second)
	lab.WaitFor(t, 2*time.Second, "vv: both instances in FAULT", func() bool {
		return slices.Equal(v.instanceStates(), []string{"web4 FAULT", "web6 FAULT"})
	})
	c.served6(k, time.Second)

	// Healed: vv takes IPv4 back, keepalived keeps IPv6.
	aa.servedAt(c.vip, v, 10*time.Second)
	lab.WaitFor(t, 5*time.Second, "keepalived to give VI_4 back", func() bool { return ka.stateOf("VI_4") == "BACKUP" })
	c.served6(k, time.Second)

	// keepalived's link cut: vv holds both families; back, keepalived
	// preempts IPv6 again.
	k.LinkDown()
	c.served6(v, 5*time.Second)
	aa.servedAt(c.vip, v, time.Second)
	k.LinkUp()
	c.served6(k, 10*time.Second)
	c.soleHolder6(k, v)
	aa.servedAt(c.vip, v, time.Second)
	checkClean(t, v, ka)

	// keepalived stops: vv holds both.
	ka.stop()
	c.served6(v, 5*time.Second)
	if got := v.instanceStates(); !slices.Equal(got, []string{"web4 MASTER", "web6 MASTER"}) {
		t.Errorf("vv after keepalived stopped: %q", got)
	}
}

// TestIPv6TakeoverReachable asks the IPv6 VIP over HTTP every 10 ms while
// the master's link is cut: the client must get vipvisor's page within
// Master_Down_Interval + 100 ms of the cut. The backup's down timer was
// last reset by an advert before the cut, so it fires within
// Master_Down_Interval of it; the 100 ms are for adding the VIP, the
// neighbour advertisement that points the client's neighbour cache at the
// new MAC address, and the request itself.
func TestIPv6TakeoverReachable(t *testing.T) {
	const interval, prio = 100 * time.Millisecond, 100
	bound := vrrp.MasterDownInterval(3, prio, interval) + 100*time.Millisecond
	for _, master := range []string{"vipvisor", "keepalived"} {
		t.Run("from "+master, func(t *testing.T) {
			c := newV6Cluster(t)
			m, b := c.node6("m", 11), c.node6("b", 12)
			if master == "keepalived" {
				m.startKeepalived(kaOpts{version: 3, interval: "0.1", instances: []kaInstance{{name: "VI_61", vrid: 61, prio: 150, vip: c.vip6}}})
			} else {
				c.start6(m, 150)
			}
			c.start6(b, prio)
			c.served6(m, 10*time.Second)
			lab.WaitFor(t, 5*time.Second, "b to follow m", func() bool { return b.state() == "BACKUP" })

			client := lab.NewClient(c.client, fmt.Sprintf("http://[%s]/", c.vip6.Addr()))
			client.Timeout = 30 * time.Millisecond // a lost SYN costs at most this
			client.Start()
			time.Sleep(500 * time.Millisecond)
			cut := time.Now()
			m.LinkDown()
			c.served6(b, 5*time.Second)
			client.Stop()

			i := slices.IndexFunc(client.Samples(), func(s lab.Sample) bool { return s.At.After(cut) && s.Who() == b.Name })
			if i < 0 {
				t.Fatalf("no answer from b after the cut: %s", client)
			}
			s := client.Samples()[i]
			took := s.At.Add(s.Took).Sub(cut)
			t.Logf("b answered %v after the cut (bound %v): %s", took.Round(time.Millisecond), bound, client.Samples().Between(cut, s.At.Add(time.Second)))
			if took > bound {
				t.Errorf("b answered %v after the cut, want within Master_Down_Interval + 100ms = %v", took.Round(time.Millisecond), bound)
			}
		})
	}
}
