package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

// A Docker daemon of the test's own, which leaves the host alone: not the
// host's daemon or its socket, not the host's containerd, not the host's
// network. dockerd runs in a mount namespace and a network namespace of
// its own:
//
//   - its /run is a tmpfs of that mount namespace, so what Docker and
//     containerd make there whatever the flags say (/run/containerd/s for
//     the shims' sockets, /run/docker/plugins) goes away with it, and a
//     containerd the host may run at /run/containerd/containerd.sock is
//     not found and used;
//   - its data root, exec root, socket, pid file and configuration are in
//     one temporary directory; what it mounts there stays in its mount
//     namespace and goes when its last process ends;
//   - its network namespace is empty, so even --network host would be that
//     namespace, not the machine's; it makes no bridge and no iptables
//     rules and leaves ip_forward alone;
//   - its containers' cgroups are below a --cgroup-parent of its own.
//
// Its removal takes every container down, stops the daemon (and with it
// its containerd), kills whatever still names its directory, and removes
// its cgroups and its directory, then checks that nothing of Docker's
// appeared in the host's /run.
type dockerd struct {
	t      *testing.T
	dir    string // everything of the daemon's: data and exec roots, socket, log
	sock   string
	cgroup string // --cgroup-parent: a directory of that name in every hierarchy
	cli    string // the docker client
	cmd    *exec.Cmd
	log    string
	done   chan struct{}
	before map[string]bool // which of dockerHostRun existed before the daemon
	net    string          // the host's forwarding and firewall before the daemon
}

// dockerPrograms are the client, the daemon and what the daemon runs.
var dockerPrograms = []string{"docker", "dockerd", "containerd", "containerd-shim-runc-v2", "runc"}

// dockerHostRun are what a Docker daemon makes in /run by default; none of
// them may appear on the host because of this one.
var dockerHostRun = []string{"/run/docker", "/run/docker.sock", "/run/docker.pid", "/run/containerd"}

// dockerTimeout bounds each docker command, an image build included.
const dockerTimeout = 2 * time.Minute

// dockerPath is the PATH of the daemon and the client: Debian puts dockerd
// and runc in sbin, which a non-login root shell may leave out.
const dockerPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// requireDocker skips the test unless Docker's programs are installed;
// with CI=true it fails instead, so the image is never left untested in CI.
func requireDocker(t *testing.T) {
	t.Helper()
	var missing []string
	for _, p := range dockerPrograms {
		if _, err := exec.LookPath(p); err != nil {
			if _, err := os.Stat(filepath.Join("/usr/sbin", p)); err != nil {
				missing = append(missing, p)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	lab.Skip(t, "%s not installed (apt-get install --no-install-recommends docker.io)", strings.Join(missing, ", "))
}

// startDockerd starts a private Docker daemon and waits until it answers.
// It is removed when the test ends, whether or not the start worked.
func startDockerd(t *testing.T) *dockerd {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	// Short, not t.TempDir(): the daemon's and containerd's sockets live
	// below it, and a socket's path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "vvdocker-")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerd{t: t, dir: dir, sock: filepath.Join(dir, "docker.sock"), cgroup: "vvdocker-" + id,
		cli: "docker", log: filepath.Join(dir, "dockerd.log"), done: make(chan struct{}), before: map[string]bool{}}
	if p, err := exec.LookPath("docker"); err == nil {
		d.cli = p
	}
	for _, p := range dockerHostRun {
		_, err := os.Lstat(p)
		d.before[p] = err == nil
	}
	d.net = hostNetState()
	t.Cleanup(d.remove)

	// An empty configuration, so the host's /etc/docker/daemon.json,
	// whatever it says, is not read.
	conf := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(conf, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--data-root=" + filepath.Join(dir, "data"),
		"--exec-root=" + filepath.Join(dir, "exec"),
		"--host=unix://" + d.sock,
		"--pidfile=" + filepath.Join(dir, "docker.pid"),
		"--config-file=" + conf,
		"--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
		"--cgroup-parent=" + d.cgroup,
		// Not systemd: there is no system bus to ask for scopes, and the
		// cgroups stay where removeCgroups finds them.
		"--exec-opt=native.cgroupdriver=cgroupfs",
		// No --storage-driver: dockerd takes overlay2 where the data
		// root's file system allows it, and vfs where not.
	}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command("/bin/sh", append([]string{"-c",
		`mount -t tmpfs -o mode=0755,size=64m vvdocker-run /run && exec "$0" "$@"`, "dockerd"}, args...)...)
	d.cmd.Env = []string{dockerPath, "LANG=C.UTF-8"}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{
		// Go makes the new mount namespace's mounts private before the
		// shell runs, so the tmpfs on /run is never seen by the host.
		Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET,
		// Should the test binary die, the daemon stops its containers.
		Pdeathsig: syscall.SIGTERM,
	}
	began := time.Now()
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	d.waitReady(30 * time.Second)
	t.Logf("private dockerd ready in %v: %s", time.Since(began).Round(10*time.Millisecond), d.sock)
	return d
}

// waitReady waits until the daemon answers, failing at once if it ends.
func (d *dockerd) waitReady(within time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		select {
		case <-d.done:
			d.t.Fatalf("dockerd ended while starting: %v\n%s", d.cmd.ProcessState, d.logTail(30))
		default:
		}
		if _, err := d.docker("version", "--format", "{{.Server.Version}}"); err == nil {
			return
		} else if time.Now().After(deadline) {
			d.t.Fatalf("dockerd did not answer within %v: %v\n%s", within, err, d.logTail(30))
		}
		// Waiting on real time: the daemon offers nothing to block on
		// until its socket answers.
		time.Sleep(100 * time.Millisecond)
	}
}

// command returns a docker client command talking to this daemon alone:
// not DOCKER_HOST, not a context, not ~/.docker. The legacy builder is
// asked for, as the daemon (20.10) and a newer client agree on it.
func (d *dockerd) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.cli, append([]string{"--host", "unix://" + d.sock}, args...)...)
	cmd.Env = []string{dockerPath, "HOME=" + d.dir, "DOCKER_CONFIG=" + filepath.Join(d.dir, "cli"), "DOCKER_BUILDKIT=0"}
	return cmd
}

// docker runs a docker command and returns its combined output.
func (d *dockerd) docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	out, err := d.command(ctx, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// mustDocker is docker that fails the test on error.
func (d *dockerd) mustDocker(args ...string) string {
	d.t.Helper()
	out, err := d.docker(args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// inspect returns a field of docker inspect, such as "{{.State.Pid}}".
func (d *dockerd) inspect(name, format string) string {
	d.t.Helper()
	return strings.TrimSpace(d.mustDocker("inspect", "--format", format, name))
}

// pid is the host pid of a running container's first process.
func (d *dockerd) pid(name string) int {
	d.t.Helper()
	pid, err := strconv.Atoi(d.inspect(name, "{{.State.Pid}}"))
	if err != nil || pid <= 0 {
		d.t.Fatalf("container %s has no process (pid %q)", name, d.inspect(name, "{{.State.Pid}}"))
	}
	return pid
}

// baseExcludes are left out of the base image: documentation and apt's
// caches, a third of the root file system, which nothing here reads.
var baseExcludes = []string{"./usr/share/doc", "./usr/share/man", "./usr/share/locale", "./usr/share/info",
	"./var/cache/apt", "./var/lib/apt/lists"}

// baseDockerfile makes the imported Debian root file system look, where
// vipvisor's image relies on it, like the official nginx image: nginx at
// /usr/sbin/nginx with /etc/nginx/nginx.conf, logs to stdout and stderr,
// port 80, STOPSIGNAL SIGQUIT and its CMD.
const baseDockerfile = `FROM vipvisor-test-root
RUN ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
`

// importBase makes the stand-in for the official nginx image out of a
// Debian root file system with nginx (lab.Rootfs), as no image can be
// pulled here, and returns its name.
func (d *dockerd) importBase(root string) string {
	t := d.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	args := []string{"-C", root, "-c"}
	for _, x := range baseExcludes {
		args = append(args, "--exclude="+x)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var tarErr, impOut strings.Builder
	tar := exec.CommandContext(ctx, "tar", append(args, ".")...)
	tar.Stdout, tar.Stderr = w, &tarErr
	imp := d.command(ctx, "import", "-", "vipvisor-test-root")
	imp.Stdin, imp.Stdout, imp.Stderr = r, &impOut, &impOut
	tarStart, impStart := tar.Start(), imp.Start()
	// The two ends now belong to tar and the import alone, so that either
	// one ending ends the other's pipe instead of leaving it blocked.
	r.Close()
	w.Close()
	if tarStart != nil || impStart != nil {
		t.Fatalf("tar the root file system into docker import: %v, %v", tarStart, impStart)
	}
	impErr, tarWait := imp.Wait(), tar.Wait()
	if tarWait != nil {
		t.Fatalf("tar the root file system: %v\n%s", tarWait, tarErr.String())
	}
	if impErr != nil {
		t.Fatalf("docker import: %v\n%s", impErr, impOut.String())
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(baseDockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	// RUN needs no network, and the daemon has none to give.
	d.mustDocker("build", "--network", "none", "--tag", "vipvisor-test-base", dir)
	return "vipvisor-test-base"
}

// buildImage builds packaging/container/Dockerfile on base with binary in
// the build context, as make image does, and returns the image's name.
func (d *dockerd) buildImage(base, binary string) string {
	t := d.t
	t.Helper()
	dockerfile, err := filepath.Abs("../packaging/container/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	context := t.TempDir()
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(context, "vipvisor"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	const image = "vipvisor-nginx:test"
	d.mustDocker("build", "--file", dockerfile, "--build-arg", "BASE="+base, "--tag", image, context)
	return image
}

func (d *dockerd) logTail(n int) string {
	b, _ := os.ReadFile(d.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// imageVipvisor builds vipvisor as make build does (static, version
// stamped) into dir, for the image and for the plain peer alike.
func imageVipvisor(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "vipvisor")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "nethttpomithttp2", "-ldflags", "-s -w -X main.version=deploy-test", "-o", bin, "../cmd/vipvisor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
