package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// A cluster is a lab with a client node and web nodes that each run nginx
// answering its own name, under vipvisor or keepalived, sharing one VIP.

// cluster is the lab of one test.
type cluster struct {
	t      *testing.T
	lab    *lab.Lab
	client *lab.Node
	vip    netip.Prefix
}

func newCluster(t *testing.T) *cluster {
	l := lab.New(t, netip.Prefix{})
	return &cluster{t: t, lab: l, client: l.AddNode("client", l.Host(50)), vip: l.Host(100)}
}

// url is the VIP's web address.
func (c *cluster) url() string { return fmt.Sprintf("http://%s/", c.vip.Addr()) }

// node is one web node: nginx on all addresses, port 80, answering name.
type node struct {
	*lab.Node
	c   *cluster
	dir string
	v   *vipvisor // while vipvisor runs here
}

func (c *cluster) node(name string, host int) *node {
	n := &node{Node: c.lab.AddNode(name, c.lab.Host(host)), c: c, dir: c.t.TempDir()}
	lab.NginxConf(c.t, n.dir, netip.AddrPortFrom(netip.IPv4Unspecified(), 80), name)
	return n
}

// vipvisorEnv is the environment of a vipvisor node of the cluster: VRRPv3
// at 100ms unless extra says otherwise.
func (n *node) vipvisorEnv(prio int, extra ...string) []string {
	env := baseEnv("VIPVISOR_VIPS="+n.c.vip.String(), fmt.Sprintf("VIPVISOR_PRIORITY=%d", prio),
		"VIPVISOR_ADVERT_INTERVAL=100ms", "VIPVISOR_STATUS_ADDR=127.0.0.1:9797", "VIPVISOR_STOP_TIMEOUT=5s")
	return append(env, extra...)
}

// startVipvisor runs vipvisor with nginx on n.
func (n *node) startVipvisor(prio int, extra ...string) *vipvisor {
	n.c.t.Helper()
	n.v = start(n.c.t, n.Command(binary, "--", "nginx", "-c", filepath.Join(n.dir, "nginx.conf")), n.vipvisorEnv(prio, extra...))
	return n.v
}

// stop sends SIGTERM to vipvisor and waits for exit 0.
func (n *node) stop() {
	n.c.t.Helper()
	n.v.signal(syscall.SIGTERM)
	if code := n.v.wait(20 * time.Second); code != 0 {
		n.c.t.Errorf("%s: vipvisor exit code %d after SIGTERM, want 0", n.Name, code)
	}
}

// nodeStatus is the part of /status the tests read.
type nodeStatus struct {
	VRRP struct {
		State    string            `json:"state"`
		Priority int               `json:"priority"`
		Master   string            `json:"master"`
		Drops    map[string]uint64 `json:"drops"`
	} `json:"vrrp"`
	Instances []struct {
		Name   string            `json:"name"`
		State  string            `json:"state"`
		Master string            `json:"master"`
		Drops  map[string]uint64 `json:"drops"`
	} `json:"instances"`
}

// status asks vipvisor on n for its state, from inside n's namespace.
func (n *node) status() (nodeStatus, error) {
	var s nodeStatus
	code, body, err := n.HTTPGet("http://127.0.0.1:9797/status", time.Second)
	if err != nil {
		return s, err
	}
	if code != 200 {
		return s, fmt.Errorf("status %d", code)
	}
	return s, json.Unmarshal([]byte(body), &s)
}

func (n *node) state() string {
	s, err := n.status()
	if err != nil {
		return "unreachable: " + err.Error()
	}
	return s.VRRP.State
}

func (n *node) hasVIP() bool { return n.HasAddr(n.c.vip.Addr()) }

// waitMaster waits until n holds the VIP and the client gets n's page
// through it. VRRP takes real time; the bound only guards a hang.
func (c *cluster) waitServedBy(n *node, within time.Duration) {
	c.t.Helper()
	lab.WaitFor(c.t, within, n.Name+" to serve the VIP", func() bool {
		_, body, err := c.client.HTTPGet(c.url(), 100*time.Millisecond)
		return err == nil && body == n.Name && n.hasVIP()
	})
}

// exactlyOneHolds checks that the VIP is on want and on none of the others.
func (c *cluster) exactlyOneHolds(want *node, others ...*node) {
	c.t.Helper()
	if !want.hasVIP() {
		c.t.Errorf("%s does not hold the VIP", want.Name)
	}
	for _, o := range others {
		if o.hasVIP() {
			c.t.Errorf("%s holds the VIP too", o.Name)
		}
	}
}

// waitSoleHolder waits until want is the only node with the VIP: after a
// preemption the old master lets go when it hears the new one, a few
// milliseconds later. The bound is two seconds.
func (c *cluster) waitSoleHolder(want *node, others ...*node) {
	c.t.Helper()
	lab.WaitFor(c.t, 2*time.Second, want.Name+" alone to hold the VIP", func() bool {
		if !want.hasVIP() {
			return false
		}
		for _, o := range others {
			if o.hasVIP() {
				return false
			}
		}
		return true
	})
}

// keepalived is a keepalived 2.2 peer on a node, with nginx beside it.
type keepalived struct {
	n    *node
	cmd  *exec.Cmd
	done chan struct{}
}

// kaOpts are the settings a keepalived peer shares with vipvisor.
type kaOpts struct {
	version   int
	interval  string // advert_int, in seconds: "1", "0.1"
	pass      string // v2 password
	peers     []*node
	prio      int
	instances []kaInstance // empty: VI_51 with the cluster's VIP and prio
}

// kaInstance is one vrrp_instance block of a keepalived peer.
type kaInstance struct {
	name string
	vrid int
	prio int
	vip  netip.Prefix
}

// startKeepalived runs keepalived in the foreground on n, VRRP only.
func (n *node) startKeepalived(o kaOpts) *keepalived {
	t := n.c.t
	t.Helper()
	conf := filepath.Join(n.dir, "keepalived.conf")
	k := &keepalived{n: n, done: make(chan struct{})}
	writeFile(t, conf, n.keepalivedConf(o), 0o644)
	k.cmd = n.Command("keepalived", "-n", "-l", "-D", "-P", "-f", conf,
		"-p", filepath.Join(n.dir, "ka.pid"), "-r", filepath.Join(n.dir, "vrrp.pid"), "-c", filepath.Join(n.dir, "chk.pid"))
	out, err := os.Create(filepath.Join(n.dir, "keepalived.log"))
	if err != nil {
		t.Fatal(err)
	}
	k.cmd.Stdout, k.cmd.Stderr = out, out
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	go func() { k.cmd.Wait(); close(k.done) }()
	t.Cleanup(func() {
		k.cmd.Process.Signal(syscall.SIGKILL)
		<-k.done
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(n.dir, "keepalived.log"))
			t.Logf("%s keepalived log:\n%s", n.Name, b)
		}
	})
	// nginx runs beside keepalived, as in the guides.
	nginx := n.Command("nginx", "-c", filepath.Join(n.dir, "nginx.conf"), "-g", "daemon off;")
	if err := nginx.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nginx.Process.Signal(syscall.SIGQUIT); nginx.Wait() })
	return k
}

func (n *node) keepalivedConf(o kaOpts) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n\trouter_id %s\n\tscript_user root\n\tenable_script_security\n}\n", n.Name)
	instances := o.instances
	if len(instances) == 0 {
		instances = []kaInstance{{name: "VI_51", vrid: 51, prio: o.prio, vip: n.c.vip}}
	}
	for _, in := range instances {
		fmt.Fprintf(&b, "vrrp_instance %s {\n\tversion %d\n\tstate BACKUP\n\tinterface eth0\n\tvirtual_router_id %d\n", in.name, o.version, in.vrid)
		fmt.Fprintf(&b, "\tpriority %d\n\tadvert_int %s\n", in.prio, o.interval)
		if o.pass != "" {
			fmt.Fprintf(&b, "\tauthentication {\n\t\tauth_type PASS\n\t\tauth_pass %s\n\t}\n", o.pass)
		}
		if len(o.peers) > 0 {
			// IPv6 adverts travel between link-local addresses (RFC 5798
			// §5.1.2.1), unicast ones too.
			own := func(p *node) netip.Addr { return p.Addr.Addr() }
			if in.vip.Addr().Is6() {
				own = func(p *node) netip.Addr { return p.LinkLocal() }
			}
			fmt.Fprintf(&b, "\tunicast_src_ip %s\n\tunicast_peer {\n", own(n))
			for _, p := range o.peers {
				fmt.Fprintf(&b, "\t\t%s\n", own(p))
			}
			b.WriteString("\t}\n")
		}
		fmt.Fprintf(&b, "\tvirtual_ipaddress {\n\t\t%s\n\t}\n}\n", in.vip)
	}
	return b.String()
}

// kaState is the state keepalived last entered for VI_51, the instance of
// a one-instance peer.
func (k *keepalived) kaState() string { return k.stateOf("VI_51") }

// stateOf is the state keepalived last entered for the instance name, as
// its own log says (see lab.KeepalivedStates).
func (k *keepalived) stateOf(name string) string {
	b, _ := os.ReadFile(filepath.Join(k.n.dir, "keepalived.log"))
	return lab.KeepalivedStates(string(b))[name]
}

// stop sends keepalived SIGTERM (it then sends priority 0) and waits.
func (k *keepalived) stop() {
	k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(10 * time.Second):
		k.n.c.t.Fatal("keepalived did not stop")
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
