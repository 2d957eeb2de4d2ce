package e2e

import (
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// These tests pair one vipvisor node with one real keepalived 2.2 node (the
// Debian package) in each mode users run, in both roles, and check that
// they form one virtual router: one master at a time, and takeover both
// ways on a planned stop and on a cut link.

type interopMode struct {
	name     string
	opts     kaOpts   // keepalived's side (prio and peers filled in per test)
	env      []string // vipvisor's side
	unicast  bool
	interval time.Duration
}

var interopModes = []interopMode{
	{name: "v2 multicast with password", opts: kaOpts{version: 2, interval: "1", pass: "secret12"},
		env: []string{"VIPVISOR_VERSION=2", "VIPVISOR_ADVERT_INTERVAL=1s", "VIPVISOR_AUTH_PASS=secret12"}, interval: time.Second},
	{name: "v3 multicast", opts: kaOpts{version: 3, interval: "0.1"},
		env: []string{"VIPVISOR_VERSION=3", "VIPVISOR_ADVERT_INTERVAL=100ms"}, interval: 100 * time.Millisecond},
	{name: "v3 unicast", opts: kaOpts{version: 3, interval: "0.1"},
		env: []string{"VIPVISOR_VERSION=3", "VIPVISOR_ADVERT_INTERVAL=100ms"}, unicast: true, interval: 100 * time.Millisecond},
}

// pair starts vipvisor on v and keepalived on k, the one named master with
// priority 150, the other 100, and waits until the master serves the VIP.
func pair(t *testing.T, m interopMode, vipvisorMaster bool) (c *cluster, v *node, k *node, ka *keepalived) {
	c = newCluster(t)
	v, k = c.node("vv", 11), c.node("ka", 12)
	vp, kp := 100, 150
	if vipvisorMaster {
		vp, kp = 150, 100
	}
	opts := m.opts
	opts.prio = kp
	env := append([]string{}, m.env...)
	if m.unicast {
		opts.peers = []*node{v}
		env = append(env, "VIPVISOR_UNICAST_PEERS="+k.Addr.Addr().String())
	}
	ka = k.startKeepalived(opts)
	v.startVipvisor(vp, env...)
	master := k
	if vipvisorMaster {
		master = v
	}
	c.waitServedBy(master, 20*time.Second)
	return c, v, k, ka
}

func TestInteropVipvisorMaster(t *testing.T) {
	for _, m := range interopModes {
		t.Run(m.name+"/planned stop", func(t *testing.T) {
			c, v, k, ka := pair(t, m, true)
			lab.WaitFor(t, 10*time.Second, "keepalived to settle as backup", func() bool { return ka.kaState() == "BACKUP" })
			c.waitSoleHolder(v, k)
			v.stop()
			c.waitServedBy(k, 10*time.Second)
			// keepalived runs its notify script a moment after the change.
			lab.WaitFor(t, 5*time.Second, "keepalived to report MASTER", func() bool { return ka.kaState() == "MASTER" })
		})
		t.Run(m.name+"/link cut", func(t *testing.T) {
			c, v, k, _ := pair(t, m, true)
			v.LinkDown()
			c.waitServedBy(k, 10*time.Second)
			v.LinkUp()
			// vipvisor has the higher priority and preempts back.
			c.waitServedBy(v, 10*time.Second)
			c.waitSoleHolder(v, k)
		})
	}
}

func TestInteropKeepalivedMaster(t *testing.T) {
	for _, m := range interopModes {
		t.Run(m.name+"/planned stop", func(t *testing.T) {
			c, v, k, ka := pair(t, m, false)
			lab.WaitFor(t, 10*time.Second, "vipvisor to follow keepalived", func() bool { return v.state() == "BACKUP" })
			c.waitSoleHolder(k, v)
			if s, _ := v.status(); s.VRRP.Master != k.Addr.Addr().String() {
				t.Errorf("vipvisor sees master %q, want keepalived at %s", s.VRRP.Master, k.Addr.Addr())
			}
			ka.stop()
			c.waitServedBy(v, 10*time.Second)
		})
		t.Run(m.name+"/link cut", func(t *testing.T) {
			c, v, k, ka := pair(t, m, false)
			k.LinkDown()
			c.waitServedBy(v, 10*time.Second)
			k.LinkUp()
			c.waitServedBy(k, 10*time.Second)
			c.waitSoleHolder(k, v)
			lab.WaitFor(t, 5*time.Second, "keepalived master again", func() bool { return ka.kaState() == "MASTER" })
		})
	}
}
