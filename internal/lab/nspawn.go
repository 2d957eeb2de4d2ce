package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine is a container booted by systemd-nspawn with a real systemd as
// its PID 1, whose network is a lab node's namespace: what runs in it is
// tested under systemd as it runs on a server.
//
// Booting one on a machine without systemd as PID 1 takes what the field
// found: nspawn runs in a mount namespace of its own with a tmpfs on
// /run/systemd (else it refuses to set up /run/systemd/nspawn/propagate on
// a /run that is not tmpfs), in cgroups of its own that are removed after
// (--keep-unit: there is no system bus to ask for a scope), on the root
// file system read-only with a volatile overlay, so that the shared root
// is never changed.
type Machine struct {
	// Name is the machine's name and host name.
	Name string

	node    *Node
	cmd     *exec.Cmd
	console *os.File
	leader  int // the container's systemd, as the host sees it
	cgroups []string
	done    chan struct{}
}

// sigPoweroff is SIGRTMIN+4, which tells systemd to power off.
const sigPoweroff = syscall.Signal(34 + 4)

// machineCgroupRoots are the hierarchies a machine's cgroups are made in:
// systemd's own (name=systemd on a hybrid host) and the unified one.
var machineCgroupRoots = []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"}

// Boot boots root as a container in the node's network namespace and waits
// until its systemd is up. binds are nspawn --bind-ro= values
// (HOSTPATH[:CONTAINERPATH]). The container has the capabilities nspawn
// gives by default and CAP_NET_ADMIN, which VIPs need. It is powered off
// and everything made for it is removed when the test ends.
func (n *Node) Boot(root string, binds ...string) *Machine {
	n.t.Helper()
	nspawn, err := lookPath("systemd-nspawn")
	if err != nil {
		n.t.Fatalf("lab: systemd-nspawn is not installed (apt-get install --no-install-recommends systemd-container): %v", err)
	}
	m := &Machine{Name: Prefix + n.lab.ID + n.Name, node: n, done: make(chan struct{})}
	m.makeCgroups()
	n.t.Cleanup(m.removeCgroups)
	console, err := os.CreateTemp("", m.Name+"-console-")
	if err != nil {
		n.t.Fatalf("lab: %v", err)
	}
	m.console = console
	n.t.Cleanup(func() {
		console.Close()
		os.Remove(console.Name())
	})
	args := []string{nspawn, "--quiet", "-D", root, "--volatile=overlay", "--machine=" + m.Name,
		"--register=no", "--keep-unit", "--capability=CAP_NET_ADMIN",
		"--network-namespace-path=" + filepath.Join(netnsDir, n.NS), "--console=passive", "--boot"}
	for _, b := range binds {
		args = append(args, "--bind-ro="+b)
	}
	// The launching shell joins the machine's cgroups, then nspawn runs in
	// a mount namespace of its own, where /run/systemd is a tmpfs.
	var join strings.Builder
	for _, cg := range m.cgroups {
		fmt.Fprintf(&join, "echo $$ > %s/cgroup.procs && ", cg)
	}
	script := join.String() + "exec unshare --mount --propagation private sh -c " +
		shellQuote("mount -t tmpfs tmpfs /run/systemd && exec "+shellJoin(args))
	m.cmd = exec.Command("sh", "-c", script)
	m.cmd.Stdout, m.cmd.Stderr = console, console
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		n.t.Fatalf("lab: boot %s: %v", m.Name, err)
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	n.t.Cleanup(m.powerOff)
	m.waitBooted(30 * time.Second)
	return m
}

// waitBooted waits for the container's systemd to finish starting up.
func (m *Machine) waitBooted(within time.Duration) {
	t := m.node.t
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			t.Fatalf("lab: machine %s ended while booting:\n%s", m.Name, m.Console())
		default:
		}
		if m.leader == 0 {
			m.leader = m.findLeader()
		}
		if m.leader != 0 {
			out, _ := m.TryRun("systemctl", "is-system-running")
			if s := strings.TrimSpace(out); s == "running" || s == "degraded" {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("lab: machine %s did not boot within %v:\n%s", m.Name, within, m.Console())
}

// findLeader returns the host pid of the container's init: the process
// in the machine's cgroup whose parent is nspawn and whose name is systemd.
func (m *Machine) findLeader() int {
	for _, cg := range m.cgroups {
		for _, pid := range cgroupPIDs(cg) {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if strings.TrimSpace(string(comm)) != "systemd" {
				continue
			}
			status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			for line := range strings.SplitSeq(string(status), "\n") {
				// pid 1 in the container's own PID namespace
				if f := strings.Fields(line); len(f) >= 3 && f[0] == "NSpid:" && f[len(f)-1] == "1" {
					return pid
				}
			}
		}
	}
	return 0
}

// cgroupPIDs lists the processes of dir and every cgroup below it.
func cgroupPIDs(dir string) []int {
	var pids []int
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// Leader is the host pid of the container's systemd.
func (m *Machine) Leader() int { return m.leader }

// Command runs name in the container: in all its namespaces, as root.
func (m *Machine) Command(name string, args ...string) *exec.Cmd {
	nsargs := []string{"-t", strconv.Itoa(m.leader), "-m", "-u", "-i", "-n", "-p", "-C", "--", name}
	cmd := exec.Command("nsenter", append(nsargs, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	return cmd
}

// TryRun runs a command in the container and returns its combined output.
func (m *Machine) TryRun(name string, args ...string) (string, error) {
	out, err := m.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), m.Name, err, out)
	}
	return string(out), nil
}

// Run runs a command in the container and fails the test if it fails.
func (m *Machine) Run(name string, args ...string) string {
	m.node.t.Helper()
	out, err := m.TryRun(name, args...)
	if err != nil {
		m.node.t.Fatalf("lab: %v", err)
	}
	return out
}

// Console is what the container printed on its console so far.
func (m *Machine) Console() string {
	b, _ := os.ReadFile(m.console.Name())
	return tail(b, 60)
}

// HostPIDs lists, as the host sees them, the processes of the container
// other than its systemd and nspawn's own.
func (m *Machine) HostPIDs() []int {
	var pids []int
	for _, pid := range cgroupPIDs(m.cgroups[0]) { // every process is in each hierarchy
		if pid != m.leader && pid != m.cmd.Process.Pid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// powerOff shuts the container down as its systemd would on poweroff,
// and kills it if it takes too long.
func (m *Machine) powerOff() {
	if m.node.t.Failed() {
		out, _ := m.TryRun("journalctl", "--no-pager", "-n", "150")
		m.node.t.Logf("lab: machine %s journal:\n%s", m.Name, out)
	}
	select {
	case <-m.done:
		return
	default:
	}
	if m.leader != 0 {
		syscall.Kill(m.leader, sigPoweroff)
	} else {
		m.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		m.node.t.Errorf("lab: machine %s did not power off within 20s; killed", m.Name)
		m.cmd.Process.Kill()
		for _, cg := range m.cgroups {
			for _, pid := range cgroupPIDs(cg) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		<-m.done
	}
}

func (m *Machine) makeCgroups() {
	t := m.node.t
	seen := map[string]bool{}
	for _, root := range machineCgroupRoots {
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			continue
		}
		real, _ := filepath.EvalSymlinks(root)
		if seen[real] {
			continue
		}
		seen[real] = true
		dir := filepath.Join(root, m.Name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("lab: machine cgroup: %v", err)
		}
		m.cgroups = append(m.cgroups, dir)
	}
	if len(m.cgroups) == 0 {
		t.Fatalf("lab: no cgroup hierarchy for a machine below %v", machineCgroupRoots)
	}
}

// removeCgroups removes the machine's cgroups once its processes are gone.
func (m *Machine) removeCgroups() {
	for _, cg := range m.cgroups {
		if err := RemoveCgroupTree(cg, 5*time.Second); err != nil {
			m.node.t.Errorf("lab: machine %s: remove cgroup: %v", m.Name, err)
		}
	}
}

// RemoveCgroupTree removes a cgroup directory and every cgroup below it,
// deepest first, each retried while it is busy: it is, until the kernel
// has reaped its last process. It returns the first error.
func RemoveCgroupTree(top string, within time.Duration) error {
	var dirs []string
	filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	var first error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := rmdirCgroup(dirs[i], within); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// rmdirCgroup removes one empty cgroup directory, retrying while it is busy.
func rmdirCgroup(dir string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := syscall.Rmdir(dir)
		if err == nil || os.IsNotExist(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rmdir %s: %w", dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
