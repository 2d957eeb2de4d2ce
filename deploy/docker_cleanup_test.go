package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
	"golang.org/x/sys/unix"
)

// remove takes the daemon and everything it made down; see dockerd.
func (d *dockerd) remove() {
	t := d.t
	if t.Failed() {
		t.Logf("dockerd log:\n%s", d.logTail(40))
	}
	if d.cmd != nil && d.cmd.Process != nil {
		select {
		case <-d.done:
		default:
			d.removeContainers()
			d.stopDaemon()
		}
	}
	d.killStragglers()
	d.unmountLeftovers()
	d.removeCgroups()
	if err := os.RemoveAll(d.dir); err != nil {
		t.Errorf("remove the daemon's directory: %v", err)
	}
	for _, p := range dockerHostRun {
		if _, err := os.Lstat(p); err == nil && !d.before[p] {
			t.Errorf("%s appeared in the host's /run while the private dockerd ran", p)
		}
	}
	if now := hostNetState(); now != d.net {
		t.Errorf("the host's forwarding or firewall changed while the private dockerd ran:\nbefore:\n%s\nafter:\n%s", d.net, now)
	}
}

// hostNetState is what a Docker daemon changes on a host's network by
// default: IPv4 forwarding and the filter and nat tables (where iptables
// is installed).
func hostNetState() string {
	b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	state := "ip_forward=" + strings.TrimSpace(string(b)) + "\n"
	if _, err := exec.LookPath("iptables"); err == nil {
		for _, table := range []string{"filter", "nat"} {
			out, err := exec.Command("iptables", "-w", "-t", table, "-S").CombinedOutput()
			if err != nil {
				out = []byte(err.Error())
			}
			state += string(out)
		}
	}
	return state
}

func (d *dockerd) removeContainers() {
	out, err := d.docker("ps", "--all", "--quiet", "--no-trunc")
	if err != nil {
		d.t.Errorf("list containers: %v", err)
		return
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		if _, err := d.docker(append([]string{"rm", "--force", "--volumes"}, ids...)...); err != nil {
			d.t.Errorf("remove containers: %v", err)
		}
	}
}

// stopDaemon stops dockerd, which stops its containerd; it is killed if it
// takes longer than its own shutdown timeout (15s) and some.
func (d *dockerd) stopDaemon() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.t.Errorf("dockerd did not stop within 20s of SIGTERM; killed")
		d.cmd.Process.Kill()
		<-d.done
	}
}

// killStragglers kills what is left of the daemon's: processes that name
// its directory (containerd, a shim) and processes in its cgroups.
func (d *dockerd) killStragglers() {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := d.stragglers()
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			d.t.Errorf("processes of the private dockerd survived SIGKILL: %v", pids)
			return
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		// Waiting on real time: killed processes are torn down
		// asynchronously and there is nothing to block on.
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *dockerd) stragglers() []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if pid == os.Getpid() || lab.Gone(pid) {
			continue
		}
		if cmdline, _ := os.ReadFile(p + "/cmdline"); strings.Contains(string(cmdline), d.dir) {
			pids = append(pids, pid)
		}
	}
	for _, dir := range d.cgroupDirs() {
		filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
			if err != nil || e.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !lab.Gone(pid) && !slices.Contains(pids, pid) {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// unmountLeftovers unmounts what is mounted below the daemon's directory
// in the host's mount namespace. Nothing should be: the daemon mounts in
// a namespace of its own, which ends with it.
func (d *dockerd) unmountLeftovers() {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		d.t.Errorf("read mounts: %v", err)
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 {
			p := unescapeMount(fields[4])
			if p == d.dir || strings.HasPrefix(p, d.dir+"/") {
				points = append(points, p)
			}
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		d.t.Logf("unmounting %s, left by the private dockerd", points[i])
		if err := unix.Unmount(points[i], unix.MNT_DETACH); err != nil {
			d.t.Errorf("unmount %s: %v", points[i], err)
		}
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupDirs are the daemon's --cgroup-parent directories that exist: one
// per hierarchy on a cgroup v1 or hybrid host, one on a v2 host.
func (d *dockerd) cgroupDirs() []string {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", d.cgroup))
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", d.cgroup)); err == nil {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", d.cgroup))
	}
	return dirs
}

// removeCgroups removes the daemon's cgroups once their processes are gone.
func (d *dockerd) removeCgroups() {
	for _, top := range d.cgroupDirs() {
		if err := lab.RemoveCgroupTree(top, 5*time.Second); err != nil {
			d.t.Errorf("remove the private dockerd's cgroup: %v", err)
		}
	}
}
