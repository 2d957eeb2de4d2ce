package supervisor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Cgroup is a cgroup v2 directory of the child's own. Each run of the
// child is started inside a fresh sub-cgroup of it (clone3 with
// CLONE_INTO_CGROUP, so not one instruction of it runs elsewhere), and
// everything it forks stays there: nginx's workers, a double-forked
// helper, one that called setsid. A process group can be left with
// setsid; a cgroup cannot be left without privileges the child does not
// use. Kill ends every member at once (cgroup.kill), and Empty tells when
// none remains, so a restart never races a dying worker for port 80.
//
// Why a fresh sub-cgroup per run: on the kernels tried here (6.18), a
// process cloned into a cgroup that was ever the target of cgroup.kill is
// killed at birth (the kill sequence number the fork carries is the
// parent's, and it differs from the target's). A new cgroup has never
// been killed.
type Cgroup struct {
	dir  string
	fd   int // the directory, kept open
	runs int // sub-cgroups made so far
}

// cgroupPollEvery is how often WaitEmpty looks at cgroup.events: killed
// processes leave in well under a millisecond each.
const cgroupPollEvery = 2 * time.Millisecond

// NewCgroup makes (or takes over) the cgroup name below vipvisor's own
// cgroup v2 directory; one of that name left by an earlier run may still
// hold its processes, see KillAndWait. It fails where there is no cgroup
// v2 hierarchy, or it is not writable (a container whose /sys/fs/cgroup
// is read-only): the caller then does without.
func NewCgroup(name string) (*Cgroup, error) {
	mount, err := hierarchy()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroup("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(mount, own, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup: make %s: %w", dir, err)
	}
	return OpenCgroup(dir)
}

// OpenCgroup opens an existing cgroup directory, such as one an earlier
// run recorded.
func OpenCgroup(dir string) (*Cgroup, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.events")); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cgroup: %s is not a cgroup v2 directory: %w", dir, err)
	}
	return &Cgroup{dir: dir, fd: fd}, nil
}

// joinCgroup moves pid into the cgroup open as dirFD.
func joinCgroup(dirFD, pid int) error {
	fd, err := unix.Openat(dirFD, "cgroup.procs", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(strconv.Itoa(pid))); err != nil {
		return fmt.Errorf("cgroup: move %d: %w", pid, err)
	}
	return nil
}

// hierarchy returns where the cgroup v2 hierarchy is mounted in this mount
// namespace, mounting it under StateDir if it is not: `ip netns exec`
// mounts a fresh /sys without /sys/fs/cgroup, yet the hierarchy is there.
func hierarchy() (string, error) {
	if mount, err := cgroup2Mount("/proc/self/mountinfo"); err == nil {
		return mount, nil
	}
	return mountCgroup2(filepath.Join(StateDir, "cgroup2"))
}

// cgroup2Roots are where a run may have seen the hierarchy mounted; a
// recorded directory lies below one of them (the unified one of a hybrid
// host first, as it lies below /sys/fs/cgroup).
var cgroup2Roots = []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup", filepath.Join(StateDir, "cgroup2")}

// openRecordedCgroup opens a cgroup directory an earlier run recorded,
// which it may have seen through another mount of the hierarchy: the run
// lived in a mount namespace of its own, and this process is in another.
func openRecordedCgroup(dir string) (*Cgroup, error) {
	cg, err := OpenCgroup(dir)
	if err == nil {
		return cg, nil
	}
	for _, root := range cgroup2Roots {
		if rel, err2 := filepath.Rel(root, dir); err2 == nil && !strings.HasPrefix(rel, "..") {
			mount, err2 := hierarchy()
			if err2 != nil {
				return nil, err
			}
			return OpenCgroup(filepath.Join(mount, rel))
		}
	}
	return nil, err
}

// NewRun makes the sub-cgroup for one run of the child and returns it
// open, for SysProcAttr.CgroupFD; the caller closes it once the child is
// started. Runs that have ended are removed by KillAndWait.
func (c *Cgroup) NewRun() (fd int, err error) {
	for {
		c.runs++
		dir := filepath.Join(c.dir, "run-"+strconv.Itoa(c.runs))
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue // left by an earlier run of vipvisor
		}
		if err != nil {
			return -1, fmt.Errorf("cgroup: make %s: %w", dir, err)
		}
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("cgroup: open %s: %w", dir, err)
		}
		return fd, nil
	}
}

// Dir is the cgroup's directory.
func (c *Cgroup) Dir() string { return c.dir }

// Kill sends SIGKILL to every process in the cgroup. Kernels without
// cgroup.kill (before 5.14) get a signal per listed process, repeated by
// WaitEmpty until none is left.
func (c *Cgroup) Kill() error {
	err := os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0)
	if err == nil {
		return nil
	}
	pids, perr := c.Procs()
	if perr != nil {
		return fmt.Errorf("cgroup: kill %s: %w", c.dir, errors.Join(err, perr))
	}
	for _, pid := range pids {
		unix.Kill(pid, unix.SIGKILL)
	}
	return nil
}

// Procs lists the processes in the cgroup and below it.
func (c *Cgroup) Procs() ([]int, error) {
	var pids []int
	err := filepath.WalkDir(c.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for f := range strings.FieldsSeq(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids, err
}

// Empty reports whether no process is left in the cgroup. A zombie that
// is not yet reaped has left it already.
func (c *Cgroup) Empty() (bool, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	return bytes.Contains(b, []byte("populated 0")), nil
}

// KillAndWait kills every member and waits, at most timeout, until none is
// left; then it removes the runs' sub-cgroups. It reports whether the
// cgroup is empty.
func (c *Cgroup) KillAndWait(timeout time.Duration) bool {
	if c.waitKilled(timeout) {
		c.removeRuns()
		return true
	}
	return false
}

func (c *Cgroup) waitKilled(timeout time.Duration) bool {
	if empty, err := c.Empty(); err == nil && empty {
		return true
	}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(cgroupPollEvery)
	defer tick.Stop()
	for {
		c.Kill()
		if empty, err := c.Empty(); err != nil || empty {
			return err == nil
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

// removeRuns removes the empty sub-cgroups below the cgroup, deepest
// first (a child may make cgroups of its own).
func (c *Cgroup) removeRuns() {
	var dirs []string
	filepath.WalkDir(c.dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && path != c.dir {
			dirs = append(dirs, path)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		unix.Rmdir(dirs[i])
	}
}

// Remove closes the directory and removes it with its sub-cgroups; it
// must be empty.
func (c *Cgroup) Remove() error {
	c.Close()
	c.removeRuns()
	if err := unix.Rmdir(c.dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("cgroup: remove %s: %w", c.dir, err)
	}
	return nil
}

// Close releases the open directory.
func (c *Cgroup) Close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted: at
// /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount(mountinfo string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", fmt.Errorf("cgroup: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, fs := strings.Fields(pre), strings.Fields(post)
		if len(fields) >= 5 && len(fs) >= 1 && fs[0] == "cgroup2" && fields[3] == "/" {
			return fields[4], nil
		}
	}
	return "", errors.New("cgroup: no cgroup v2 hierarchy is mounted")
}

// mountCgroup2 mounts the cgroup v2 hierarchy at dir.
func mountCgroup2(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cgroup: no cgroup v2 hierarchy is mounted, and %w", err)
	}
	if err := unix.Mount("cgroup2", dir, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return "", fmt.Errorf("cgroup: no cgroup v2 hierarchy is mounted, and mounting one at %s: %w", dir, err)
	}
	return dir, nil
}

// ownCgroup returns this process's path in the cgroup v2 hierarchy, from
// the "0::" line of /proc/self/cgroup.
func ownCgroup(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cgroup: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("cgroup: this process is in no cgroup v2 group")
}
