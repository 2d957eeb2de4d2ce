package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// web is nginx under vipvisor on a lab node, and a client node to ask it.
type web struct {
	v      *vipvisor
	node   *lab.Node
	client *lab.Node
	dir    string // nginx's directory: config, pid file, error log
	conf   string
	url    string
}

// startWeb builds a lab with a web node and a client node, and runs
// `vipvisor -- nginx -c CONF` on the web node with extra environment.
func startWeb(t *testing.T, body string, extra ...string) *web {
	t.Helper()
	l := lab.New(t, netip.Prefix{})
	w := &web{node: l.AddNode("web", l.Host(11)), client: l.AddNode("client", l.Host(50)), dir: t.TempDir()}
	listen := netip.AddrPortFrom(w.node.Addr.Addr(), 80)
	w.conf = lab.NginxConf(t, w.dir, listen, body)
	w.url = fmt.Sprintf("http://%s/", listen)
	w.v = start(t, w.node.Command(binary, "--", "nginx", "-c", w.conf), baseEnv(extra...))
	w.waitBody(t, body)
	return w
}

// waitBody waits until the client gets body from nginx: the time nginx
// takes to start or reload is nginx's, so the test polls.
func (w *web) waitBody(t *testing.T, body string) {
	t.Helper()
	lab.WaitFor(t, 10*time.Second, "nginx to answer "+body, func() bool {
		_, got, err := w.client.HTTPGet(w.url, 200*time.Millisecond)
		return err == nil && got == body
	})
}

// masterPID reads nginx's pid file.
func (w *web) masterPID(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, "nginx.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// nginxProcs lists the nginx processes, master and workers, on the web
// node.
func (w *web) nginxProcs(t *testing.T) []int { return nginxProcsIn(t, w.node.NS) }

// nginxProcsIn lists the live nginx processes in a network namespace (a
// worker's command line does not name the config, but it cannot leave
// the namespace).
func nginxProcsIn(t *testing.T, ns string) []int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v", ns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(f)
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasPrefix(string(cmdline), "nginx") && !lab.Gone(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (w *web) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(w.dir, "error.log"))
	return string(b)
}

func TestNginxRunsInTheForegroundAndStopsGracefully(t *testing.T) {
	w := startWeb(t, "web1")
	master := w.masterPID(t)
	if _, ppid := lab.ProcState(master); ppid != w.v.cmd.Process.Pid {
		t.Errorf("nginx master %d has parent %d, want vipvisor %d: it daemonized", master, ppid, w.v.cmd.Process.Pid)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", master))
	if !strings.Contains(string(cmdline), "daemon off;") {
		t.Errorf("nginx command line %q lacks -g 'daemon off;'", cmdline)
	}

	w.v.signal(syscall.SIGTERM)
	if code := w.v.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	log := w.errorLog()
	for _, want := range []string{"signal 3 (SIGQUIT) received", "gracefully shutting down", "exit"} {
		if !strings.Contains(log, want) {
			t.Errorf("nginx's error log lacks %q: it was not stopped gracefully\n%s", want, log)
		}
	}
	if left := w.nginxProcs(t); len(left) > 0 {
		t.Errorf("nginx processes %v outlived vipvisor", left)
	}
	if !strings.Contains(w.v.log(), `msg=stopped child_status="exit status 0"`) {
		t.Errorf("vipvisor did not wait for nginx's exit:\n%s", w.v.log())
	}
}

func TestNginxReloadsOnSIGHUP(t *testing.T) {
	w := startWeb(t, "before")
	master := w.masterPID(t)
	lab.NginxConf(t, w.dir, netip.AddrPortFrom(w.node.Addr.Addr(), 80), "after")
	w.v.signal(syscall.SIGHUP)
	w.waitBody(t, "after")
	if got := w.masterPID(t); got != master {
		t.Errorf("nginx master changed from %d to %d: restarted, not reloaded", master, got)
	}
	if !strings.Contains(w.errorLog(), "signal 1 (SIGHUP) received") {
		t.Errorf("nginx did not get SIGHUP:\n%s", w.errorLog())
	}
}

// TestNginxDiesWithVipvisor kills vipvisor with SIGKILL: nginx's master
// must die with it. Its workers are orphans the kernel does not end; under
// systemd the unit's cgroup and in a container the PID namespace end them.
func TestNginxDiesWithVipvisor(t *testing.T) {
	w := startWeb(t, "web1")
	master := w.masterPID(t)
	w.v.signal(syscall.SIGKILL)
	w.v.wait(5 * time.Second)
	lab.WaitFor(t, 5*time.Second, "nginx's master to die with vipvisor", func() bool { return lab.Gone(master) })
}
