package deploy

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// The image of packaging/container/Dockerfile, built on a stand-in for the
// official nginx image, run as users run it, under a Docker daemon of the
// test's own. Node a is a container: a holder container with no network
// owns the network namespace, which the lab joins to its bridge, and a's
// vipvisor container joins the holder's namespace (--network container:),
// so it can be stopped, started and killed while eth0 stays. Node b runs a
// plain vipvisor at a lower priority; a client polls the VIP.

const (
	imageVRID = "51"
	holder    = "holder-a"
	nodeA     = "node-a"
)

// imageCaps are all the capabilities a's container gets (--cap-drop ALL,
// then these); each is needed, for the reason given, by nginx or vipvisor.
// Docker lets any process bind low ports in a network namespace of its own
// making, but not in the host's (--network host), so AttachNode puts the
// kernel's default back and NET_BIND_SERVICE is needed here as there.
var imageCaps = map[string]int{
	"NET_ADMIN":        unix.CAP_NET_ADMIN,        // add and remove the VIPs
	"NET_RAW":          unix.CAP_NET_RAW,          // VRRP's raw socket, gratuitous ARP
	"NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE, // nginx binds port 80
	"SETUID":           unix.CAP_SETUID,           // nginx's workers drop to their user
	"SETGID":           unix.CAP_SETGID,           // and group
	"CHOWN":            unix.CAP_CHOWN,            // nginx hands its temp directories to that user
	"KILL":             unix.CAP_KILL,             // vipvisor ends a crashed nginx's workers, which run as that user
}

// imageNginxConf is a's nginx configuration, mounted over the image's as
// users mount theirs: it answers with the node's name, writes nothing but
// its pid file and temp directories (on tmpfs, as the root file system is
// read-only) and logs to stderr.
const imageNginxConf = `user nobody nogroup;
worker_processes 2;
pid /run/nginx.pid;
error_log stderr notice;
events {
	worker_connections 256;
}
http {
	access_log off;
	default_type text/plain;
	client_body_temp_path /tmp/client_body;
	proxy_temp_path /tmp/proxy;
	fastcgi_temp_path /tmp/fastcgi;
	uwsgi_temp_path /tmp/uwsgi;
	scgi_temp_path /tmp/scgi;
	server {
		listen 80;
		location / {
			return 200 "a";
		}
	}
}
`

// imageCluster is the lab of the image test.
type imageCluster struct {
	t      *testing.T
	d      *dockerd
	image  string
	client *lab.Node
	a      *lab.Node // the holder's network namespace
	b      *lab.Node
	vip    netip.Prefix
	conf   string // a's nginx.conf on the host
}

func (c *imageCluster) url() string { return fmt.Sprintf("http://%s/", c.vip.Addr()) }

func TestContainerImage(t *testing.T) {
	lab.RequireRoot(t)
	requireDocker(t)
	began := time.Now()
	root := lab.Rootfs(t)
	t.Logf("root file system ready after %v", time.Since(began).Round(100*time.Millisecond))
	bin := imageVipvisor(t, t.TempDir())
	d := startDockerd(t)
	built := time.Now()
	base := d.importBase(root)
	c := &imageCluster{t: t, d: d, image: d.buildImage(base, bin)}
	t.Logf("base image and vipvisor's image built in %v", time.Since(built).Round(100*time.Millisecond))
	if cfg := d.inspect(c.image, "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.StopSignal}}"); cfg != `["vipvisor","--"] ["nginx","-g","daemon off;"] SIGTERM` {
		t.Errorf("image entrypoint, command and stop signal: %s", cfg)
	}
	c.startLab(bin)

	if !t.Run("vipvisor is PID 1 and nginx its child", c.testPID1) {
		t.FailNow()
	}
	t.Run("a crashed nginx is restarted without its workers", c.testCrash)
	t.Run("docker stop hands over, exit 0, no request lost", c.testStop)
	t.Run("docker kill leaves no VIP once the container is gone", c.testKill)
	t.Run("the docker run line of the contract", c.testContractLine)
	t.Logf("whole test: %v", time.Since(began).Round(100*time.Millisecond))
}

// startLab builds the lab, starts b, then a's holder and a's container.
func (c *imageCluster) startLab(bin string) {
	t := c.t
	l := lab.New(t, netip.Prefix{})
	c.vip = l.Host(100)
	c.client = l.AddNode("client", l.Host(50))
	c.b = l.AddNode("b", l.Host(12))
	c.startPeer(bin)

	c.d.mustDocker("run", "--detach", "--name", holder, "--network", "none", "--cap-drop", "ALL",
		"--security-opt", "no-new-privileges", "--entrypoint", "sleep", c.image, "infinity")
	c.a = l.AttachNode("a", c.d.pid(holder), l.Host(11))
	c.waitServedBy("b", 10*time.Second)

	c.conf = filepath.Join(t.TempDir(), "nginx.conf")
	if err := os.WriteFile(c.conf, []byte(imageNginxConf), 0o644); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	c.d.mustDocker(c.runArgs()...)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.d.docker("logs", "--tail", "80", nodeA)
			t.Logf("%s's log:\n%s", nodeA, out)
		}
	})
	c.waitServedBy("a", 15*time.Second)
	t.Logf("a served the VIP %v after docker run", time.Since(started).Round(10*time.Millisecond))
}

// runArgs is how a is run: every capability dropped but imageCaps, no new
// privileges, a read-only root with tmpfs where nginx writes, the
// configuration by environment alone.
func (c *imageCluster) runArgs() []string {
	args := []string{"run", "--detach", "--name", nodeA, "--network", "container:" + holder,
		"--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--read-only", "--tmpfs", "/run", "--tmpfs", "/tmp",
		"--volume", c.conf + ":/etc/nginx/nginx.conf:ro"}
	for _, name := range slices.Sorted(maps.Keys(imageCaps)) {
		args = append(args, "--cap-add", name)
	}
	for _, kv := range []string{
		"VIPVISOR_INTERFACE=eth0",
		"VIPVISOR_VRID=" + imageVRID,
		"VIPVISOR_VIPS=" + c.vip.String(),
		"VIPVISOR_PRIORITY=150",
		"VIPVISOR_ADVERT_INTERVAL=100ms",
		"VIPVISOR_CHECK_HTTP=http://127.0.0.1/",
		"VIPVISOR_CHECK_INTERVAL=500ms",
		"VIPVISOR_STOP_TIMEOUT=5s",
	} {
		args = append(args, "--env", kv)
	}
	return append(args, c.image)
}

// startPeer runs a plain vipvisor with the host's nginx on b.
func (c *imageCluster) startPeer(bin string) {
	t := c.t
	dir := t.TempDir()
	conf := lab.NginxConf(t, dir, netip.AddrPortFrom(netip.IPv4Unspecified(), 80), "b")
	cmd := c.b.Command(bin, "--", "nginx", "-c", conf)
	cmd.Env = []string{dockerPath, "VIPVISOR_INTERFACE=eth0", "VIPVISOR_VRID=" + imageVRID,
		"VIPVISOR_PRIORITY=100", "VIPVISOR_VIPS=" + c.vip.String(), "VIPVISOR_ADVERT_INTERVAL=100ms"}
	logf, err := os.Create(filepath.Join(dir, "vipvisor.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("b's vipvisor did not stop within 15s of SIGINT; killed")
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("b's vipvisor:\n%s", out)
		}
	})
}

func (c *imageCluster) testPID1(t *testing.T) {
	pid := c.d.pid(nodeA)
	st := procStatus(pid)
	// NSpid: the pid in each namespace from the host's down to the
	// container's own.
	nspid := strings.Fields(st["NSpid"])
	if comm := procStatus(pid)["Name"]; comm != "vipvisor" || len(nspid) < 2 || nspid[len(nspid)-1] != "1" {
		t.Errorf("the container's first process is %q, pid %q in its namespace; want vipvisor, 1", comm, st["NSpid"])
	}
	var want uint64
	for _, bit := range imageCaps {
		want |= 1 << bit
	}
	if got, _ := strconv.ParseUint(st["CapEff"], 16, 64); got != want {
		t.Errorf("vipvisor's effective capabilities %#x, want %#x (%s only)", got, want, strings.Join(slices.Sorted(maps.Keys(imageCaps)), " "))
	}
	if st["NoNewPrivs"] != "1" {
		t.Errorf("vipvisor's NoNewPrivs is %q, want 1", st["NoNewPrivs"])
	}
	kids := lab.Children(pid)
	if len(kids) != 1 || !strings.HasPrefix(lab.Cmdline(kids[0]), "nginx: master process nginx -g daemon off;") {
		t.Fatalf("vipvisor's children are %v, want one nginx master", describe(kids))
	}
	workers := lab.Children(kids[0])
	if len(workers) != 2 {
		t.Errorf("nginx's children are %v, want its 2 workers", describe(workers))
	}
	t.Logf("vipvisor (host pid %d, pid 1 inside) > %s > %s", pid, describe(kids), describe(workers))
}

func (c *imageCluster) testCrash(t *testing.T) {
	pid := c.d.pid(nodeA)
	kids := lab.Children(pid)
	if len(kids) != 1 {
		t.Fatalf("vipvisor's children are %v, want one nginx", describe(kids))
	}
	master, workers := kids[0], lab.Children(kids[0])
	syscall.Kill(master, syscall.SIGKILL)
	// Without CAP_KILL, vipvisor could not end the workers, which run
	// as nobody: they would keep port 80 and the new nginx could not bind.
	lab.WaitFor(t, 10*time.Second, "a new nginx, and the old workers gone", func() bool {
		kids := lab.Children(pid)
		for _, w := range workers {
			if !lab.Gone(w) {
				return false
			}
		}
		return len(kids) == 1 && kids[0] != master && strings.HasPrefix(lab.Cmdline(kids[0]), "nginx: master")
	})
	c.waitServedBy("a", 5*time.Second)
}

func (c *imageCluster) testStop(t *testing.T) {
	client := lab.NewClient(c.client, c.url())
	client.Start()
	time.Sleep(300 * time.Millisecond) // a serves for a while
	began := time.Now()
	if _, err := c.d.docker("stop", "--time", "30", nodeA); err != nil {
		t.Error(err)
	}
	took := time.Since(began)
	c.waitServedBy("b", 2*time.Second)
	time.Sleep(300 * time.Millisecond) // and b for a while
	client.Stop()
	t.Logf("docker stop took %v; the client saw %s", took.Round(10*time.Millisecond), client)
	ss, lost := client.Samples().HandOverLosses()
	if lost > 0 {
		t.Logf("%d request in flight at the hand-over reset by the new master", lost)
	}
	if n := ss.Failures(); n > 0 {
		t.Errorf("%d requests failed during docker stop: %s", n, client)
	}
	if code := c.d.inspect(nodeA, "{{.State.ExitCode}}"); code != "0" {
		t.Errorf("exit code after docker stop: %s, want 0", code)
	}
	if c.a.HasAddr(c.vip.Addr()) {
		t.Errorf("a's eth0 still holds the VIP after docker stop")
	}
}

func (c *imageCluster) testKill(t *testing.T) {
	c.d.mustDocker("start", nodeA)
	c.waitServedBy("a", 10*time.Second)
	pid := c.d.pid(nodeA)
	procs := append([]int{pid}, descendants(pid)...)
	client := lab.NewClient(c.client, c.url())
	client.Start()
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	c.d.mustDocker("kill", nodeA)
	lab.WaitFor(t, 10*time.Second, "the killed container to be gone", func() bool {
		for _, p := range procs {
			if !lab.Gone(p) {
				return false
			}
		}
		return c.d.inspect(nodeA, "{{.State.Running}}") == "false"
	})
	gone := time.Since(killed)
	// The VIP was added with a 1s lifetime, renewed while vipvisor ran:
	// the kernel removes it itself, within about 1.25s of the kill.
	lab.WaitFor(t, 2*time.Second, "the VIP to leave a's eth0 after the container was gone", func() bool {
		return !c.a.HasAddr(c.vip.Addr())
	})
	vipGone := time.Since(killed)
	c.waitServedBy("b", 3*time.Second)
	time.Sleep(300 * time.Millisecond)
	client.Stop()
	t.Logf("docker kill: container gone %v after, VIP off a's eth0 %v after; the client saw %s (longest outage %v)",
		gone.Round(10*time.Millisecond), vipGone.Round(10*time.Millisecond), client, client.Outages().Round(10*time.Millisecond))
	if code := c.d.inspect(nodeA, "{{.State.ExitCode}}"); code != "137" {
		t.Errorf("exit code after docker kill: %s, want 137 (SIGKILL)", code)
	}
}

// testContractLine runs the image as interface.md's docker run line says,
// with the lab's interface and addresses and a priority above b's: the
// default capabilities plus NET_ADMIN, and the base image's own nginx
// configuration.
func (c *imageCluster) testContractLine(t *testing.T) {
	c.d.mustDocker("rm", "--force", nodeA)
	c.d.mustDocker("run", "--detach", "--name", nodeA, "--network", "container:"+holder, "--cap-add", "NET_ADMIN",
		"-e", "VIPVISOR_INTERFACE=eth0", "-e", "VIPVISOR_VRID="+imageVRID, "-e", "VIPVISOR_VIPS="+c.vip.String(),
		"-e", "VIPVISOR_PRIORITY=150", "-e", "VIPVISOR_ADVERT_INTERVAL=100ms", c.image)
	lab.WaitFor(t, 15*time.Second, "a to serve the VIP with the base's own nginx.conf", func() bool {
		status, body, err := c.client.HTTPGet(c.url(), 100*time.Millisecond)
		return err == nil && status == 200 && strings.Contains(body, "Welcome to nginx")
	})
	if _, err := c.d.docker("stop", "--time", "30", nodeA); err != nil {
		t.Error(err)
	}
	if code := c.d.inspect(nodeA, "{{.State.ExitCode}}"); code != "0" {
		t.Errorf("exit code after docker stop: %s, want 0", code)
	}
	c.waitServedBy("b", 2*time.Second)
}

// waitServedBy waits until the client is answered by name.
func (c *imageCluster) waitServedBy(name string, within time.Duration) {
	c.t.Helper()
	lab.WaitFor(c.t, within, name+" to serve the VIP", func() bool {
		_, body, err := c.client.HTTPGet(c.url(), 100*time.Millisecond)
		return err == nil && strings.TrimSpace(body) == name
	})
}

// procStatus reads /proc/PID/status into a map of its fields.
func procStatus(pid int) map[string]string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	st := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			st[k] = strings.TrimSpace(v)
		}
	}
	return st
}

func descendants(pid int) []int {
	var all []int
	for _, k := range lab.Children(pid) {
		all = append(all, k)
		all = append(all, descendants(k)...)
	}
	return all
}

// describe names processes for a message: "123 nginx: worker process".
func describe(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = fmt.Sprintf("[%d %s]", p, lab.Cmdline(p))
	}
	return strings.Join(s, " ")
}
