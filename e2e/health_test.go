package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// probeEnv makes the child's health the HTTP probe of nginx's /health,
// fast enough for tests: a round every 200ms, two failures to fall.
var probeEnv = []string{
	"VIPVISOR_CHECK_HTTP=http://127.0.0.1/health", "VIPVISOR_CHECK_INTERVAL=200ms",
	"VIPVISOR_CHECK_TIMEOUT=200ms", "VIPVISOR_CHECK_FALL=2", "VIPVISOR_CHECK_RISE=1",
	"VIPVISOR_STOP_TIMEOUT=1s", "VIPVISOR_START_TIMEOUT=3s",
}

// healthNodes starts a (150) and b (100) with probes and extra settings for
// a, and waits until a serves.
func healthNodes(t *testing.T, extraA ...string) (*cluster, *node, *node) {
	c := newCluster(t)
	a, b := c.node("a", 11), c.node("b", 12)
	a.startVipvisor(150, append(slices.Clone(probeEnv), extraA...)...)
	b.startVipvisor(100, probeEnv...)
	c.waitServedBy(a, 10*time.Second)
	lab.WaitFor(t, 5*time.Second, "b to follow a", func() bool { return b.state() == "BACKUP" })
	return c, a, b
}

// nginxMaster returns the pid of the nginx master under vipvisor on n.
func (n *node) nginxMaster() int {
	b, err := os.ReadFile(filepath.Join(n.dir, "nginx.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// killMaster kills nginx's master process alone with SIGKILL, as a crash
// would: its workers live on. It returns the master and worker pids.
func (n *node) killMaster() (master int, workers []int) {
	n.c.t.Helper()
	master = n.nginxMaster()
	if master == 0 {
		n.c.t.Fatal("no nginx master")
	}
	workers = lab.Children(master)
	if err := syscall.Kill(master, syscall.SIGKILL); err != nil {
		n.c.t.Fatal(err)
	}
	return master, workers
}

// waitNewMaster waits for a healthy nginx with another master pid.
func (n *node) waitNewMaster(old int) int {
	n.c.t.Helper()
	lab.WaitFor(n.c.t, 10*time.Second, "nginx restarted and healthy", func() bool {
		s, err := n.childStatus()
		return err == nil && s.Healthy && n.nginxMaster() != old && n.nginxMaster() != 0
	})
	return n.nginxMaster()
}

type childStatus struct {
	PID      int    `json:"pid"`
	Healthy  bool   `json:"healthy"`
	Health   string `json:"health"`
	Starts   int    `json:"starts"`
	Restarts int    `json:"restarts"`
}

func (n *node) childStatus() (childStatus, error) {
	var s struct {
		Child childStatus `json:"child"`
	}
	code, body, err := n.HTTPGet("http://127.0.0.1:9797/status", time.Second)
	if err == nil && code == 200 {
		err = json.Unmarshal([]byte(body), &s)
	}
	return s.Child, err
}

// neverHolds samples other's VIP every 10ms until stop is closed and
// counts the samples where other held it.
func neverHolds(other *node) (stop func() int) {
	var held atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
				if other.hasVIP() {
					held.Add(1)
				}
			}
		}
	}()
	return func() int { close(done); <-finished; return int(held.Load()) }
}

func TestCrashedNginxIsRestartedAndKeepsTheVIP(t *testing.T) {
	c, a, b := healthNodes(t)
	client := lab.NewClient(c.client, c.url())
	client.Start()
	watch := neverHolds(b)
	master, workers := a.killMaster()
	a.waitNewMaster(master)
	time.Sleep(time.Second)
	if n := watch(); n > 0 {
		t.Errorf("b held the VIP in %d samples: the VIP left a during a quick restart", n)
	}
	client.Stop()
	for _, w := range workers {
		if !lab.Gone(w) {
			t.Errorf("worker %d of the killed master lives on", w)
		}
	}
	if !a.hasVIP() || a.state() != "MASTER" {
		t.Errorf("a is %s, VIP %v after the restart", a.state(), a.hasVIP())
	}
	for _, s := range client.WhoAnswered() {
		if s.Who == "b" {
			t.Errorf("b answered the VIP: %s", client)
		}
	}
	t.Logf("client during the restart: %s, longest outage %v", client, client.Outages())
}

func TestCrashLoopYieldsThenRejoins(t *testing.T) {
	notify := "VIPVISOR_NOTIFY=" // filled below
	c := newCluster(t)
	a, b := c.node("a", 11), c.node("b", 12)
	log := filepath.Join(a.dir, "notify.log")
	script := filepath.Join(a.dir, "notify.sh")
	writeFile(t, script, fmt.Sprintf("#!/bin/sh\necho \"$3\" >> %s\n", log), 0o755)
	notify += script
	a.startVipvisor(150, append(slices.Clone(probeEnv), notify)...)
	b.startVipvisor(100, probeEnv...)
	c.waitServedBy(a, 10*time.Second)

	master, _ := a.killMaster()
	a.waitNewMaster(master)
	killed := time.Now()
	a.killMaster()
	lab.WaitFor(t, 5*time.Second, "b to take the VIP", b.hasVIP)
	if took := time.Since(killed); took > time.Second {
		t.Errorf("b took the VIP %v after the second crash", took)
	}
	c.waitServedBy(b, 2*time.Second)
	lab.WaitFor(t, 2*time.Second, "a in FAULT", func() bool { return a.state() == "FAULT" })
	// Retry: nginx comes back after the 1 s backoff, a rejoins as BACKUP
	// and, having the higher priority, preempts.
	c.waitServedBy(a, 10*time.Second)
	// NOTIFY runs beside the protocol: its last run may finish a moment
	// after a serves again.
	var states []string
	lab.WaitFor(t, 5*time.Second, "a's NOTIFY to report MASTER FAULT BACKUP MASTER", func() bool {
		got, _ := os.ReadFile(log)
		states = strings.Fields(string(got))
		i := slices.Index(states, "FAULT")
		return i >= 1 && states[i-1] == "MASTER" && len(states) >= i+3 && states[i+1] == "BACKUP" && states[i+2] == "MASTER"
	})
}

func TestHungNginxIsDetectedAndRestarted(t *testing.T) {
	_, a, _ := healthNodes(t)
	master := a.nginxMaster()
	group := append([]int{master}, lab.Children(master)...)
	stopped := time.Now()
	for _, pid := range group {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	lab.WaitFor(t, 5*time.Second, "the probe to see nginx hung", func() bool {
		s, err := a.childStatus()
		return err == nil && !s.Healthy
	})
	// CHECK_INTERVAL × CHECK_FALL + CHECK_TIMEOUT, plus the 10ms this test
	// polls at and scheduling.
	if took, limit := time.Since(stopped), 200*time.Millisecond*2+200*time.Millisecond; took > limit+150*time.Millisecond {
		t.Errorf("hung nginx detected after %v, want within %v", took, limit)
	}
	a.waitNewMaster(master)
	for _, pid := range group {
		if !lab.Gone(pid) {
			t.Errorf("process %d of the hung nginx lives on", pid)
		}
	}
}

func TestFailingHealthURLRestartsThenYields(t *testing.T) {
	c, a, b := healthNodes(t)
	master := a.nginxMaster()
	lab.SetNginxHealthy(t, a.dir, false) // /health answers 500, / still works
	a.waitRestarted(master)
	// Still 500 after the restart: no health within START_TIMEOUT (3s).
	c.waitServedBy(b, 10*time.Second)
	lab.WaitFor(t, 2*time.Second, "a in FAULT", func() bool { return a.state() == "FAULT" })
	lab.SetNginxHealthy(t, a.dir, true)
	c.waitServedBy(a, 15*time.Second)
}

// waitRestarted waits until nginx on n runs with a master other than old.
func (n *node) waitRestarted(old int) {
	n.c.t.Helper()
	lab.WaitFor(n.c.t, 10*time.Second, "nginx restarted", func() bool {
		m := n.nginxMaster()
		return m != 0 && m != old && !lab.Gone(m)
	})
}

func TestUnreachableGatewayYields(t *testing.T) {
	c := newCluster(t)
	gw := c.lab.AddNode("gw", c.lab.Host(1))
	a, b := c.node("a", 11), c.node("b", 12)
	track := "VIPVISOR_TRACK_GATEWAY=" + gw.Addr.Addr().String()
	a.startVipvisor(150, append(slices.Clone(probeEnv), track)...)
	b.startVipvisor(100, append(slices.Clone(probeEnv), track)...)
	c.waitServedBy(a, 10*time.Second)
	// Isolated bridge ports cannot reach each other but reach the rest:
	// a loses its gateway and nothing else.
	a.Isolate(true)
	gw.Isolate(true)
	c.waitServedBy(b, 5*time.Second)
	lab.WaitFor(t, 2*time.Second, "a in FAULT", func() bool { return a.state() == "FAULT" })
	a.Isolate(false)
	gw.Isolate(false)
	c.waitServedBy(a, 10*time.Second)
}

func TestGiveUpExits3AndLeavesNothing(t *testing.T) {
	c, a, b := healthNodes(t, "VIPVISOR_ON_YIELD=exit")
	master, _ := a.killMaster()
	a.waitNewMaster(master)
	a.killMaster()
	if code := a.v.wait(15 * time.Second); code != 3 {
		t.Errorf("exit code %d after giving up, want 3", code)
	}
	c.waitServedBy(b, 5*time.Second)
	if a.hasVIP() {
		t.Errorf("the VIP is left on a's interface")
	}
	if left := nginxProcsIn(t, a.NS); len(left) > 0 {
		t.Errorf("nginx processes %v left on a", left)
	}
}
