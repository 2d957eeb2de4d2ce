package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDir is where ip netns keeps its named namespaces.
const netnsDir = "/run/netns"

// errGoexit is what do returns when f ended its goroutine, as t.FailNow
// does; the thread, still in the namespace, is then ended by the runtime.
var errGoexit = errors.New("function ended its goroutine inside the namespace")

// killWait bounds how long removing a namespace waits for the processes
// left in it to die.
const killWait = 5 * time.Second

// switchSysctls quiet the switch namespace: no IPv6 means no router
// solicitations, MLD reports or DAD probes on the segment.
var switchSysctls = [][2]string{
	{"ipv6.conf.all.disable_ipv6", "1"},
	{"ipv6.conf.default.disable_ipv6", "1"},
}

// nodeSysctls make every node a plain IPv4 host with the kernel's default
// ARP and reverse-path behaviour. A new namespace inherits IPv4 settings
// from the host (net.core.devconf_inherit_init_net=0), so without these a
// host with rp_filter or arp_ignore set would change what the tests see.
var nodeSysctls = [][2]string{
	{"ipv6.conf.all.disable_ipv6", "1"},
	{"ipv6.conf.default.disable_ipv6", "1"},
	{"ipv4.ip_forward", "0"},
	{"ipv4.conf.all.rp_filter", "0"},
	{"ipv4.conf.default.rp_filter", "0"},
	{"ipv4.conf.all.arp_ignore", "0"},
	{"ipv4.conf.default.arp_ignore", "0"},
	{"ipv4.conf.all.arp_announce", "0"},
	{"ipv4.conf.default.arp_announce", "0"},
	{"ipv4.conf.all.arp_filter", "0"},
	{"ipv4.conf.default.arp_filter", "0"},
	{"ipv4.conf.all.arp_accept", "0"},
	{"ipv4.conf.default.arp_accept", "0"},
}

// do runs f on an OS thread moved into the named namespace and moves the
// thread back afterwards. It runs f on a goroutine of its own, so the
// caller's thread is never touched. Goroutines that f starts run outside
// the namespace; sockets that f opens stay in it.
func do(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		err := errGoexit
		// Deferred, so that a Goexit in f (t.FailNow) still answers.
		defer func() { errc <- err }()
		err = doLocked(ns, f)
	}()
	return <-errc
}

func doLocked(ns string, f func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own network namespace: %w", err)
	}
	defer unix.Close(orig)
	target, err := unix.Open(filepath.Join(netnsDir, ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter namespace %s: %w", ns, err)
	}
	ferr := f()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so the runtime ends it with this
		// goroutine instead of reusing it in the wrong namespace.
		return fmt.Errorf("leave namespace %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// writeSysctl writes a net sysctl of the calling thread's namespace; key is
// dotted and relative to /proc/sys/net. A missing IPv6 key is ignored, as
// on a kernel without IPv6 there is nothing to turn off.
func writeSysctl(key, value string) error {
	p := filepath.Join("/proc/sys/net", strings.ReplaceAll(key, ".", "/"))
	err := os.WriteFile(p, []byte(value), 0o644)
	if errors.Is(err, os.ErrNotExist) && strings.HasPrefix(key, "ipv6.") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sysctl net.%s=%s: %w", key, value, err)
	}
	return nil
}

// nsCommand returns ip netns exec ns name args..., with name looked up in
// PATH and the sbin directories.
func nsCommand(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	if p, err := lookPath(name); err == nil {
		name = p
	}
	argv := append([]string{"netns", "exec", ns, name}, args...)
	return exec.CommandContext(ctx, ipPath(), argv...)
}

// removeNamespace kills what still runs in a namespace, then deletes it.
// The namespace, and with it every interface inside, goes away once its
// last process has died.
func removeNamespace(ns string) error {
	deadline := time.Now().Add(killWait)
	for {
		pids, err := namespacePIDs(ns)
		if err != nil || len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s: processes %v survived SIGKILL", ns, pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		// Waiting on real time: the kernel tears killed processes down
		// asynchronously and there is nothing to block on.
		time.Sleep(20 * time.Millisecond)
	}
	removeRunLeftovers(ns)
	if _, err := runIP("netns", "del", ns); err != nil {
		return fmt.Errorf("delete namespace: %w", err)
	}
	return nil
}

// removeRunLeftovers removes what a vipvisor in the namespace leaves on
// the host when the lab kills it with everything else there: its state
// and lock files under /run/vipvisor and its child's cgroup, all named
// vipvisor-<netns inode>-… (supervisor.RunIdentity). Its processes are
// gone by now.
func removeRunLeftovers(ns string) {
	var st syscall.Stat_t
	if syscall.Stat(filepath.Join(netnsDir, ns), &st) != nil {
		return
	}
	prefix := fmt.Sprintf("vipvisor-%d-", st.Ino)
	files, _ := filepath.Glob(filepath.Join("/run/vipvisor", prefix+"*"))
	for _, f := range files {
		os.Remove(f)
	}
	own := "/"
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				own = p
			}
		}
	}
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		dirs, _ := filepath.Glob(filepath.Join(root, own, prefix+"*"))
		for _, d := range dirs {
			RemoveCgroupTree(d, time.Second)
		}
	}
}

// namespacePIDs lists the processes in a namespace, leaving out this one,
// whose threads only visit namespaces.
func namespacePIDs(ns string) ([]int, error) {
	out, err := runIP("netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
