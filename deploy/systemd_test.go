package deploy

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// The shipped unit, installed from the package, under Debian's systemd 252 as PID 1 in a container of
// the test's own, in a lab node's network namespace: node a runs the unit,
// node b a plain vipvisor at a lower priority, and a client polls the VIP.

const (
	unitName        = "vipvisor-nginx.service"
	unitVRID        = "51"
	watchdogTimeout = 10 * time.Second // the shipped unit's WatchdogSec
	restartDelay    = 2 * time.Second  // and its RestartSec
)

// unitCluster is the lab of the unit tests.
type unitCluster struct {
	t      *testing.T
	lab    *lab.Lab
	client *lab.Node
	a      *lab.Node
	m      *lab.Machine
	b      *lab.Node
	vip    netip.Prefix
}

func (c *unitCluster) url() string { return fmt.Sprintf("http://%s/", c.vip.Addr()) }

// newUnitCluster boots node a's container with the package installed and
// configured, and starts b.
func newUnitCluster(t *testing.T) *unitCluster {
	lab.RequireRoot(t)
	root := lab.Rootfs(t)
	l := lab.New(t, netip.Prefix{})
	c := &unitCluster{t: t, lab: l, client: l.AddNode("client", l.Host(50)), vip: l.Host(100)}
	c.a = l.AddNode("a", l.Host(11))
	c.b = l.AddNode("b", l.Host(12))

	files := t.TempDir()
	copyFile(t, debPackage(t), filepath.Join(files, "vipvisor.deb"))
	os.WriteFile(filepath.Join(files, "nginx.env"), []byte(strings.Join([]string{
		"VIPVISOR_INTERFACE=eth0",
		"VIPVISOR_VRID=" + unitVRID,
		"VIPVISOR_PRIORITY=150",
		"VIPVISOR_VIPS=" + c.vip.String(),
		"VIPVISOR_ADVERT_INTERVAL=100ms",
		"VIPVISOR_CHECK_HTTP=http://127.0.0.1/",
		"VIPVISOR_CHECK_INTERVAL=500ms",
		"VIPVISOR_STOP_TIMEOUT=5s",
	}, "\n")+"\n"), 0o644)
	os.WriteFile(filepath.Join(files, "index.html"), []byte("a"), 0o644)

	c.m = c.a.Boot(root, files+":/mnt/vipvisor")
	c.m.Run("dpkg", "-i", "/mnt/vipvisor/vipvisor.deb")
	if s := c.prop("UnitFileState"); s != "disabled" {
		t.Errorf("after dpkg -i the unit is %s, want disabled: it needs configuring first", s)
	}
	c.m.Run("cp", "/mnt/vipvisor/nginx.env", "/etc/vipvisor/nginx.env")
	c.m.Run("cp", "/mnt/vipvisor/index.html", "/var/www/html/index.html")

	dir := t.TempDir()
	lab.NginxConf(t, dir, netip.AddrPortFrom(netip.IPv4Unspecified(), 80), "b")
	b := exec.Command("ip", "netns", "exec", c.b.NS, imageVipvisor(t, t.TempDir()), "--", "nginx", "-c", filepath.Join(dir, "nginx.conf"))
	b.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "VIPVISOR_INTERFACE=eth0", "VIPVISOR_VRID=" + unitVRID,
		"VIPVISOR_PRIORITY=100", "VIPVISOR_VIPS=" + c.vip.String(), "VIPVISOR_ADVERT_INTERVAL=100ms"}
	blog, _ := os.Create(filepath.Join(dir, "vipvisor.log"))
	b.Stdout, b.Stderr = blog, blog
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Process.Signal(os.Interrupt)
		b.Wait()
		blog.Close()
		if t.Failed() {
			out, _ := os.ReadFile(blog.Name())
			t.Logf("b's vipvisor:\n%s", out)
		}
	})
	return c
}

// systemctl runs systemctl in a's container.
func (c *unitCluster) systemctl(args ...string) string {
	c.t.Helper()
	return c.m.Run("systemctl", args...)
}

// prop is one property of the unit, from systemctl show.
func (c *unitCluster) prop(name string) string {
	c.t.Helper()
	return strings.TrimSpace(c.m.Run("systemctl", "show", "--value", "-p", name, unitName))
}

// mainPID is vipvisor's pid as the container sees it.
func (c *unitCluster) mainPID() int {
	c.t.Helper()
	pid, _ := strconv.Atoi(c.prop("MainPID"))
	return pid
}

// signal sends sig to pid in the container, with the shell's own kill.
func (c *unitCluster) signal(sig string, pid int) {
	c.t.Helper()
	c.m.Run("sh", "-c", fmt.Sprintf("kill -%s %d", sig, pid))
}

// journal is the unit's journal since the boot.
func (c *unitCluster) journal() string {
	out, _ := c.m.TryRun("journalctl", "--no-pager", "-o", "cat", "-u", unitName)
	return out
}

// aHasVIP tells whether a's interface holds the VIP.
func (c *unitCluster) aHasVIP() bool {
	out, _ := c.a.TryRun("ip", "-br", "addr", "show", "dev", c.a.Iface)
	return strings.Contains(out, " "+c.vip.String())
}

// processes lists the host pids of a's processes whose command line
// starts with prefix.
func (c *unitCluster) processes(prefix string) []int {
	var pids []int
	for _, pid := range c.m.HostPIDs() {
		if strings.HasPrefix(lab.Cmdline(pid), prefix) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// nginxLeft lists the nginx processes in a's container.
func (c *unitCluster) nginxLeft() []string {
	var left []string
	for _, pid := range c.m.HostPIDs() {
		if s := lab.Cmdline(pid); strings.HasPrefix(s, "nginx") || strings.Contains(s, "vipvisor") {
			left = append(left, fmt.Sprintf("%d %s", pid, s))
		}
	}
	return left
}

// waitServedBy waits until the client is answered by name.
func (c *unitCluster) waitServedBy(name string, within time.Duration) {
	c.t.Helper()
	lab.WaitFor(c.t, within, name+" to serve the VIP", func() bool {
		_, body, err := c.client.HTTPGet(c.url(), 100*time.Millisecond)
		return err == nil && strings.TrimSpace(body) == name
	})
}

func TestUnitUnderSystemd(t *testing.T) {
	c := newUnitCluster(t)
	c.waitServedBy("b", 10*time.Second)

	// start: active only once vipvisor said READY=1, which it says once
	// nginx is healthy and VRRP runs.
	c.systemctl("start", unitName)
	if s := c.prop("ActiveState"); s != "active" {
		t.Fatalf("after systemctl start the unit is %s, want active:\n%s", s, c.journal())
	}
	j := c.journal()
	healthy, started := strings.Index(j, `msg="child healthy"`), strings.LastIndex(j, "Started ")
	if healthy < 0 || started < healthy {
		t.Errorf("systemd reported the unit started before nginx was healthy:\n%s", j)
	}
	c.waitServedBy("a", 5*time.Second)

	t.Run("status shows vipvisor's line", func(t *testing.T) {
		out, _ := c.m.TryRun("systemctl", "status", "--no-pager", unitName)
		if !regexp.MustCompile(`Status: "MASTER prio 150; nginx healthy \(pid \d+\)`).MatchString(out) {
			t.Errorf("systemctl status does not show vipvisor's STATUS= line:\n%s", out)
		}
	})

	t.Run("reload reloads nginx", func(t *testing.T) {
		before, workers := c.journal(), c.processes("nginx: worker")
		if len(workers) == 0 {
			t.Fatal("no nginx workers before the reload")
		}
		c.systemctl("reload", unitName)
		// nginx starts new workers and lets the old ones go.
		lab.WaitFor(t, 5*time.Second, "nginx's workers to be replaced", func() bool {
			now := c.processes("nginx: worker")
			return len(now) > 0 && !slices.ContainsFunc(now, func(p int) bool { return slices.Contains(workers, p) })
		})
		after := strings.TrimPrefix(c.journal(), before)
		for _, want := range []string{`msg="reload signal sent"`, "Reloaded "} {
			if !strings.Contains(after, want) {
				t.Errorf("the journal after systemctl reload does not say %q:\n%s", want, after)
			}
		}
		if s := c.prop("SubState"); s != "running" {
			t.Errorf("after the reload the unit is %s, want running", s)
		}
		c.waitServedBy("a", time.Second)
	})

	t.Run("a stopped vipvisor is restarted by the watchdog", func(t *testing.T) {
		old := c.mainPID()
		stopped := time.Now()
		c.signal("STOP", old)
		c.waitServedBy("b", 5*time.Second) // a sends no adverts
		lab.WaitFor(t, watchdogTimeout+restartDelay+10*time.Second, "systemd to restart vipvisor", func() bool {
			pid := c.mainPID()
			return pid != 0 && pid != old && c.prop("ActiveState") == "active"
		})
		took := time.Since(stopped)
		t.Logf("restarted %v after SIGSTOP (WatchdogSec %v, RestartSec %v)", took.Round(10*time.Millisecond), watchdogTimeout, restartDelay)
		if took > watchdogTimeout+restartDelay+5*time.Second {
			t.Errorf("restart took %v, want about WatchdogSec + RestartSec", took)
		}
		j := c.journal()
		for _, want := range []string{"Watchdog timeout", "SIGABRT: exiting at once"} {
			if !strings.Contains(j, want) {
				t.Errorf("the journal does not say %q:\n%s", want, j)
			}
		}
		if strings.Contains(j, "goroutine ") {
			t.Errorf("the watchdog abort filled the journal with goroutine dumps:\n%s", j)
		}
		c.waitServedBy("a", 5*time.Second)
	})

	t.Run("stop hands over and leaves nothing", func(t *testing.T) {
		client := lab.NewClient(c.client, c.url())
		client.Start()
		time.Sleep(300 * time.Millisecond) // a serves for a while
		c.systemctl("stop", unitName)
		c.waitServedBy("b", 2*time.Second)
		time.Sleep(300 * time.Millisecond) // and b for a while
		client.Stop()
		ss, lost := client.Samples().HandOverLosses()
		if lost > 0 {
			t.Logf("%d request in flight at the hand-over reset by the new master: %s", lost, client)
		}
		if n := ss.Failures(); n > 0 {
			t.Errorf("%d requests failed during systemctl stop: %s", n, client)
		}
		if r, code := c.prop("Result"), c.prop("ExecMainStatus"); r != "success" || code != "0" {
			t.Errorf("after systemctl stop: result %s, exit status %s; want success, 0", r, code)
		}
		if c.aHasVIP() {
			t.Errorf("a holds the VIP after systemctl stop")
		}
		if left := c.nginxLeft(); len(left) > 0 {
			t.Errorf("left after systemctl stop:\n%s", strings.Join(left, "\n"))
		}
	})

	t.Run("kill -9 leaves nothing", func(t *testing.T) {
		c.systemctl("start", unitName)
		c.waitServedBy("a", 5*time.Second)
		killed := time.Now()
		c.signal("KILL", c.mainPID())
		for time.Since(killed) < time.Second && (c.aHasVIP() || len(c.nginxLeft()) > 0) {
			time.Sleep(10 * time.Millisecond)
		}
		if c.aHasVIP() || len(c.nginxLeft()) > 0 {
			t.Errorf("1s after kill -9 of vipvisor under systemd: VIP held %v; left:\n%s\n%s", c.aHasVIP(), strings.Join(c.nginxLeft(), "\n"), c.journal())
		}
		c.waitServedBy("b", 2*time.Second)
		// Restart=on-failure brings it back.
		c.waitServedBy("a", restartDelay+10*time.Second)
	})

	t.Run("systemd-analyze security", func(t *testing.T) {
		out, _ := c.m.TryRun("systemd-analyze", "security", "--no-pager", unitName)
		m := regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unitName) + `: (\d+\.\d)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no exposure level in systemd-analyze security:\n%s", out)
		}
		if v, _ := strconv.ParseFloat(m[1], 64); v > 3.5 {
			t.Errorf("exposure level %s, want at most 3.5:\n%s", m[1], out)
		}
		t.Logf("systemd-analyze security: exposure %s", m[1])
	})

	t.Run("purge of the running package stops it and leaves nothing", func(t *testing.T) {
		c.systemctl("enable", unitName)
		c.waitServedBy("a", 5*time.Second)
		c.m.Run("dpkg", "--purge", "vipvisor")
		c.waitServedBy("b", 2*time.Second)
		if c.aHasVIP() {
			t.Errorf("a holds the VIP after dpkg --purge")
		}
		if left := c.nginxLeft(); len(left) > 0 {
			t.Errorf("left after dpkg --purge:\n%s", strings.Join(left, "\n"))
		}
		out, _ := c.m.TryRun("sh", "-c", "ls -d /usr/bin/vipvisor /etc/vipvisor /usr/lib/systemd/system/"+unitName+
			" /etc/systemd/system/multi-user.target.wants/"+unitName+" 2>/dev/null; true")
		if strings.TrimSpace(out) != "" {
			t.Errorf("left by dpkg --purge:\n%s", out)
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
