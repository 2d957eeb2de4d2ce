package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
	"github.com/vipvisor/vipvisor/internal/progrun"
)

// statusAddr is where every vipvisor of the demo serves /status, inside
// its own node.
const statusAddr = "127.0.0.1:9797"

// settings are what every vipvisor of the demo shares: VRRPv3 adverts
// every 100ms, and nginx's /health asked every 200ms, two failures in a
// row making it sick, so that each step of the story takes well under a
// second. RESTART_WINDOW (60s), RESTARTS (1) and ON_YIELD (retry) keep
// their defaults.
var settings = []string{
	"VIPVISOR_INTERFACE=" + lab.Iface, "VIPVISOR_VRID=51", "VIPVISOR_VERSION=3",
	"VIPVISOR_ADVERT_INTERVAL=100ms",
	"VIPVISOR_CHECK_HTTP=http://127.0.0.1/health", "VIPVISOR_CHECK_INTERVAL=200ms",
	"VIPVISOR_CHECK_TIMEOUT=200ms", "VIPVISOR_CHECK_FALL=2", "VIPVISOR_CHECK_RISE=1",
	"VIPVISOR_START_TIMEOUT=3s", "VIPVISOR_STOP_TIMEOUT=2s",
	"VIPVISOR_STATUS_ADDR=" + statusAddr,
}

// cluster is the demo's lab: a client node polling the VIP and two web
// nodes, each running nginx under vipvisor.
type cluster struct {
	r      *progrun.Runner
	lab    *lab.Lab
	client *lab.Node
	poll   *lab.Client
	vip    netip.Prefix
	a, b   *webNode
	// vipvisor and nginx are the programs' paths.
	vipvisor, nginx string
	dir             string    // the nodes' files, removed at the end
	step            string    // the step under way, for failure messages
	stepStart       time.Time // when it began
}

// webNode is a node with nginx answering its own name, under vipvisor.
type webNode struct {
	*lab.Node
	prio  int
	dir   string // nginx's configuration and files, vipvisor's log
	proc  *progrun.Process
	watch *watcher
}

// newCluster builds the lab: the nodes, their nginx configurations and
// the client, not yet polling.
func newCluster(r *progrun.Runner, vipvisor, nginx string) *cluster {
	dir, err := os.MkdirTemp("", "vipvisor-demo-")
	if err != nil {
		r.Fatalf("temporary directory: %v", err)
	}
	r.Cleanup(func() { os.RemoveAll(dir) })
	l := lab.New(r, netip.Prefix{})
	c := &cluster{r: r, lab: l, client: l.AddNode("client", l.Host(50)), vip: l.Host(100),
		vipvisor: vipvisor, nginx: nginx, dir: dir}
	c.a = c.webNode("a", 11, 150, dir)
	c.b = c.webNode("b", 12, 100, dir)
	c.poll = lab.NewClient(c.client, "http://"+c.vip.Addr().String()+"/")
	// Registered before any vipvisor starts, so it runs after they stopped.
	r.Cleanup(c.printLogs)
	return c
}

func (c *cluster) webNode(name string, host, prio int, dir string) *webNode {
	n := &webNode{Node: c.lab.AddNode(name, c.lab.Host(host)), prio: prio, dir: filepath.Join(dir, name)}
	if err := os.Mkdir(n.dir, 0o700); err != nil {
		c.r.Fatalf("%v", err)
	}
	lab.NginxConf(c.r, n.dir, netip.AddrPortFrom(netip.IPv4Unspecified(), 80), name)
	n.watch = newWatcher(c.r, n.Node)
	return n
}

// env is vipvisor's environment on n: this process's own, cleaned, and
// the demo's settings.
func (c *cluster) env(n *webNode) []string {
	env := progrun.CleanEnv()
	env = append(env, settings...)
	return append(env, "VIPVISOR_VIPS="+c.vip.String(), "VIPVISOR_PRIORITY="+strconv.Itoa(n.prio))
}

// start runs vipvisor with nginx on n and watches its /status. A cleanup
// stops it, and prints its log if the demo failed.
func (c *cluster) start(n *webNode) {
	cmd := n.Command(c.vipvisor, "--", c.nginx, "-c", filepath.Join(n.dir, "nginx.conf"))
	cmd.Env = c.env(n)
	p, err := progrun.StartProcess(cmd, filepath.Join(n.dir, "vipvisor.log"))
	if err != nil {
		c.r.Fatalf("start vipvisor on %s: %v", n.Name, err)
	}
	n.proc = p
	c.r.Cleanup(func() { p.Stop(10 * time.Second) })
	n.watch.start()
}

// printLogs prints what each vipvisor logged, if the demo failed.
func (c *cluster) printLogs() {
	if !c.r.Failed() {
		return
	}
	for _, n := range []*webNode{c.a, c.b} {
		if n != nil && n.proc != nil {
			c.r.Print("vipvisor on %s logged:\n%s", n.Name, n.proc.LogTail(60))
		}
	}
}

// hasVIP reports whether n holds the VIP now.
func (c *cluster) hasVIP(n *webNode) bool { return n.HasAddr(c.vip.Addr()) }

// nginxMaster returns the pid of the running nginx master on n, from its
// pid file, or 0. After a kill -9 the file names the dead master until the
// new one writes it.
func (n *webNode) nginxMaster() int {
	b, err := os.ReadFile(filepath.Join(n.dir, "nginx.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "nginx" || lab.Gone(pid) {
		return 0
	}
	return pid
}

// crash kills nginx's master on n with SIGKILL, as a crash would, and
// returns its pid and when.
func (c *cluster) crash(n *webNode) (int, time.Time) {
	pid := n.nginxMaster()
	if pid == 0 {
		c.r.Fatalf("%s: no nginx master runs on %s", c.step, n.Name)
	}
	at := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		c.r.Fatalf("%s: kill -9 %d: %v", c.step, pid, err)
	}
	return pid, at
}

// await checks cond every 5ms until it holds and returns when it did, or
// ends the demo naming the step and what did not happen within timeout.
func (c *cluster) await(timeout time.Duration, what string, cond func() bool) time.Time {
	deadline := time.Now().Add(timeout)
	for !cond() {
		c.r.Checkpoint()
		if time.Now().After(deadline) {
			c.r.Errorf("%s: waited %v for %s", c.step, timeout, what)
			c.explain()
			c.r.Abort()
		}
		// Polling real time: VRRP, nginx and the client run on their own.
		time.Sleep(5 * time.Millisecond)
	}
	return time.Now()
}

// explain prints what each web node went through during the step, and
// how its vipvisor ended if it did.
func (c *cluster) explain() {
	for _, n := range []*webNode{c.a, c.b} {
		if n.proc == nil {
			continue
		}
		line := fmt.Sprintf("%s: %s", n.Name, n.watch.trail(c.stepStart))
		if st, ok := n.watch.current(); ok {
			line += "; now " + st.String()
		}
		if code, ok := n.proc.ExitCode(); ok {
			line += fmt.Sprintf("; vipvisor exited %d", code)
		}
		c.r.Print("%s", line)
	}
}

// answer waits for the first answer from who that the client got at or
// after since, and returns that sample.
func (c *cluster) answer(timeout time.Duration, who string, since time.Time) lab.Sample {
	var found lab.Sample
	c.await(timeout, who+" to answer the client at the VIP", func() bool {
		for _, s := range c.poll.Samples().Between(since, time.Time{}) {
			if s.Who() == who {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

// settle lets the client poll on for d, so the timeline of a step shows
// what followed the event too.
func (c *cluster) settle(d time.Duration) {
	// Real time on purpose: the client records what users would see.
	time.Sleep(d)
	c.r.Checkpoint()
}
