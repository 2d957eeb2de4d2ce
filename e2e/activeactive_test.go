package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// Active/active (master/master): two VIPs behind DNS round robin, each
// node master of one and backup of the other; when a node fails, the
// other holds both, and it gives one back once healed. vipvisor holds
// both virtual routers in one process (VIPVISOR_INSTANCES), tied to its
// one nginx.

// aaCluster is the cluster with its second VIP.
type aaCluster struct {
	*cluster
	vip2 netip.Prefix
}

func newAACluster(t *testing.T) *aaCluster {
	c := newCluster(t)
	return &aaCluster{cluster: c, vip2: c.lab.Host(101)}
}

// servedAt waits until the client gets n's page at vip and n holds it.
func (c *aaCluster) servedAt(vip netip.Prefix, n *node, within time.Duration) {
	c.t.Helper()
	url := fmt.Sprintf("http://%s/", vip.Addr())
	lab.WaitFor(c.t, within, fmt.Sprintf("%s to serve %s", n.Name, vip.Addr()), func() bool {
		_, body, err := c.client.HTTPGet(url, 100*time.Millisecond)
		return err == nil && body == n.Name && n.HasAddr(vip.Addr())
	})
}

// startActiveActive runs vipvisor with nginx on n, master of web1 (VRID
// 51, the first VIP) with prio1 and of web2 (VRID 52, the second) with
// prio2, as the contract's example writes it.
func (c *aaCluster) startActiveActive(n *node, prio1, prio2 int, extra ...string) {
	c.t.Helper()
	env := append(slices.Clone(probeEnv),
		"VIPVISOR_INSTANCES=web1,web2",
		"VIPVISOR_WEB1_VRID=51", "VIPVISOR_WEB1_VIPS="+c.vip.String(), fmt.Sprintf("VIPVISOR_WEB1_PRIORITY=%d", prio1),
		"VIPVISOR_WEB2_VRID=52", "VIPVISOR_WEB2_VIPS="+c.vip2.String(), fmt.Sprintf("VIPVISOR_WEB2_PRIORITY=%d", prio2))
	n.v = start(c.t, n.Command(binary, "--", "nginx", "-c", filepath.Join(n.dir, "nginx.conf")),
		n.vipvisorEnv(100, append(env, extra...)...))
}

// instanceStates is each instance's state on n, as "web1 MASTER".
func (n *node) instanceStates() []string {
	s, err := n.status()
	if err != nil {
		return []string{"unreachable: " + err.Error()}
	}
	var out []string
	for _, in := range s.Instances {
		out = append(out, in.Name+" "+in.State)
	}
	return out
}

// notifyLog makes a NOTIFY command that appends "name state" to a file.
func notifyLog(t *testing.T, n *node) (env, log string) {
	log = filepath.Join(n.dir, "notify.log")
	script := filepath.Join(n.dir, "notify.sh")
	writeFile(t, script, fmt.Sprintf("#!/bin/sh\necho \"$2 $3\" >> %s\n", log), 0o755)
	return "VIPVISOR_NOTIFY=" + script, log
}

// crashLoop kills n's nginx twice within its restart window, so vipvisor
// yields every instance.
func (n *node) crashLoop() {
	n.c.t.Helper()
	master, _ := n.killMaster()
	n.waitNewMaster(master)
	n.killMaster()
}

func TestActiveActiveTwoVipvisors(t *testing.T) {
	c := newAACluster(t)
	a, b := c.node("a", 11), c.node("b", 12)
	notify, log := notifyLog(t, a)
	c.startActiveActive(a, 150, 100, notify)
	c.startActiveActive(b, 100, 150)
	c.servedAt(c.vip, a, 10*time.Second)
	c.servedAt(c.vip2, b, 10*time.Second)
	lab.WaitFor(t, 5*time.Second, "a: web1 MASTER, web2 BACKUP", func() bool {
		return slices.Equal(a.instanceStates(), []string{"web1 MASTER", "web2 BACKUP"})
	})

	// /metrics labels every series with the instance and its VRID.
	_, body, err := a.HTTPGet("http://127.0.0.1:9797/metrics", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`vipvisor_vrrp_master{instance="web1",vrid="51"} 1`,
		`vipvisor_vrrp_master{instance="web2",vrid="52"} 0`,
		`vipvisor_vrrp_state{instance="web2",vrid="52",state="BACKUP"} 1`,
	} {
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Errorf("a's /metrics lacks %q", line)
		}
	}

	// a's nginx crash-loops: a yields both, b holds both.
	a.crashLoop()
	c.servedAt(c.vip, b, 5*time.Second)
	c.servedAt(c.vip2, b, time.Second)
	lab.WaitFor(t, 2*time.Second, "a: every instance in FAULT", func() bool {
		return slices.Equal(a.instanceStates(), []string{"web1 FAULT", "web2 FAULT"})
	})
	if a.HasAddr(c.vip.Addr()) || a.HasAddr(c.vip2.Addr()) {
		t.Errorf("a in FAULT holds a VIP: %v", a.Addrs())
	}

	// Healed (the retry after its backoff): a takes web1 back, b keeps web2.
	c.servedAt(c.vip, a, 10*time.Second)
	c.servedAt(c.vip2, b, time.Second)
	lab.WaitFor(t, 2*time.Second, "b to let web1 go", func() bool { return !b.HasAddr(c.vip.Addr()) })
	lab.WaitFor(t, 5*time.Second, "a's NOTIFY to name each instance", func() bool {
		got, _ := os.ReadFile(log)
		lines := strings.Split(strings.TrimSpace(string(got)), "\n")
		// Each instance reports its own path: web1 MASTER, FAULT, BACKUP,
		// MASTER; web2 BACKUP, FAULT, BACKUP.
		return follows(lines, "web1 MASTER", "web1 FAULT", "web1 BACKUP", "web1 MASTER") &&
			follows(lines, "web2 BACKUP", "web2 FAULT", "web2 BACKUP")
	})

	// A planned stop of b hands web2 to a: a then holds both.
	b.stop()
	c.servedAt(c.vip2, a, 5*time.Second)
	c.servedAt(c.vip, a, time.Second)
}

// follows reports whether want appear in lines in this order, others
// between them allowed.
func follows(lines []string, want ...string) bool {
	for _, l := range lines {
		if len(want) > 0 && l == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

func TestActiveActiveWithKeepalived(t *testing.T) {
	c := newAACluster(t)
	a, k := c.node("a", 11), c.node("ka", 12)
	ka := k.startKeepalived(kaOpts{version: 3, interval: "0.1", instances: []kaInstance{
		{name: "VI_1", vrid: 51, prio: 100, vip: c.vip},
		{name: "VI_2", vrid: 52, prio: 150, vip: c.vip2},
	}})
	c.startActiveActive(a, 150, 100)
	c.servedAt(c.vip, a, 10*time.Second)
	c.servedAt(c.vip2, k, 10*time.Second)
	lab.WaitFor(t, 5*time.Second, "keepalived: VI_1 BACKUP, VI_2 MASTER", func() bool {
		return ka.stateOf("VI_1") == "BACKUP" && ka.stateOf("VI_2") == "MASTER"
	})
	if s, _ := a.status(); len(s.Instances) != 2 || s.Instances[1].Master != k.Addr.Addr().String() {
		t.Errorf("a's web2 does not see keepalived as its master: %+v", s.Instances)
	}

	// a's nginx crash-loops: keepalived takes web1 too.
	a.crashLoop()
	c.servedAt(c.vip, k, 5*time.Second)
	lab.WaitFor(t, 5*time.Second, "keepalived master of both", func() bool {
		return ka.stateOf("VI_1") == "MASTER" && ka.stateOf("VI_2") == "MASTER"
	})
	c.servedAt(c.vip2, k, time.Second)

	// Healed: a preempts web1 back.
	c.servedAt(c.vip, a, 10*time.Second)
	lab.WaitFor(t, 5*time.Second, "keepalived to give VI_1 back", func() bool { return ka.stateOf("VI_1") == "BACKUP" })
	c.servedAt(c.vip2, k, time.Second)

	// keepalived stops (priority 0 on both): a holds both.
	ka.stop()
	c.servedAt(c.vip2, a, 5*time.Second)
	c.servedAt(c.vip, a, time.Second)
	if got := a.instanceStates(); !slices.Equal(got, []string{"web1 MASTER", "web2 MASTER"}) {
		t.Errorf("a after keepalived stopped: %q", got)
	}
}
