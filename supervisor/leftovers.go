package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A run of vipvisor records, in a state file of its own, what a later run
// must end should this one and its guard both be killed (`pkill -9
// vipvisor` takes both): the child's cgroup, the guard's pid and the
// child's process group, each pid with its start time so a reused pid is
// never mistaken for ours. The file is named after what makes a vipvisor
// unique on a host: its network namespace, interface and VRID.

// StateDir holds the state files; /run is a tmpfs, so a reboot empties it.
const StateDir = "/run/vipvisor"

// RunIdentity names this vipvisor among all on the host: two that share a
// network namespace, an interface and a VRID would fight over one VIP.
func RunIdentity(iface string, vrid int) string {
	ns := "0"
	if st, err := os.Stat("/proc/self/ns/net"); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			ns = strconv.FormatUint(sys.Ino, 10)
		}
	}
	return fmt.Sprintf("vipvisor-%s-%s-%d", ns, iface, vrid)
}

// ErrAlreadyRunning is returned by Lock when another vipvisor runs for the
// same network namespace, interface and VRID.
var ErrAlreadyRunning = errors.New("another vipvisor runs for this interface and VRID")

// Lock takes the run's lock file next to its state file, so that a second
// vipvisor started by mistake for the same VRID fails at once instead of
// taking the first one's leftovers for its own and ending its child. The
// lock is released when the process ends, however it ends.
func Lock(statePath string) error {
	if err := os.MkdirAll(filepath.Dir(statePath), 0o755); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	path := strings.TrimSuffix(statePath, ".json") + ".lock"
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("%w (lock file %s)", ErrAlreadyRunning, path)
		}
		return fmt.Errorf("lock %s: %w", path, err)
	}
	return nil // fd stays open, and locked, for the life of the process
}

// proc is a process as the state file records it.
type proc struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"` // clock ticks after boot, /proc/PID/stat field 22
}

// RunState is the state file of the running vipvisor.
type RunState struct {
	path string
	mu   sync.Mutex
	rec  stateRecord
}

type stateRecord struct {
	Cgroup string `json:"cgroup,omitempty"`
	Guard  *proc  `json:"guard,omitempty"`
	Child  *proc  `json:"child,omitempty"` // the leader of the child's process group
}

// NewRunState starts a state file at path recording cgroup (may be "").
func NewRunState(path, cgroup string) (*RunState, error) {
	s := &RunState{path: path, rec: stateRecord{Cgroup: cgroup}}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return s, s.write()
}

// Path is the state file.
func (s *RunState) Path() string { return s.path }

// SetGuard records the guard's pid.
func (s *RunState) SetGuard(pid int) { s.set(func(r *stateRecord) { r.Guard = procOf(pid) }) }

// SetChild records the child's process group.
func (s *RunState) SetChild(pgid int) { s.set(func(r *stateRecord) { r.Child = procOf(pgid) }) }

// Remove deletes the file after a clean stop.
func (s *RunState) Remove() { os.Remove(s.path) }

func (s *RunState) set(f func(*stateRecord)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.rec)
	s.write()
}

// write replaces the file atomically, so a kill in the middle leaves the
// old record or the new, never half of one.
func (s *RunState) write() error {
	b, _ := json.Marshal(s.rec)
	tmp := s.path + ".new"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

func procOf(pid int) *proc {
	start, err := startTime(pid)
	if err != nil {
		return nil
	}
	return &proc{PID: pid, Start: start}
}

// EndLeftovers ends what an earlier run recorded in the state file at
// path and left behind: its guard, then every process of its child's
// cgroup, or failing a cgroup, of its child's process group. It removes
// the file and the earlier cgroup, unless that is keep, the cgroup this
// run uses. A missing file is nothing to do.
func EndLeftovers(path, keep string, log *slog.Logger) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	var rec stateRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		log.Warn("ignoring an unreadable state file of an earlier run", "path", path, "err", err)
		return os.Remove(path)
	}
	if rec.Guard != nil && rec.Guard.alive() {
		// Still cleaning up after its vipvisor, or stuck: this run does
		// the work itself.
		unix.Kill(rec.Guard.PID, unix.SIGKILL)
		log.Warn("ended the guard of an earlier run", "pid", rec.Guard.PID)
	}
	if rec.Cgroup != "" {
		endCgroup(rec.Cgroup, rec.Cgroup != keep, log)
	}
	if rec.Child != nil {
		endGroup(*rec.Child, log)
	}
	return os.Remove(path)
}

func endCgroup(dir string, remove bool, log *slog.Logger) {
	cg, err := openRecordedCgroup(dir)
	if err != nil {
		return // gone already
	}
	if pids, _ := cg.Procs(); len(pids) > 0 {
		log.Warn("ending processes an earlier run left behind", "cgroup", dir, "pids", fmt.Sprint(pids))
	}
	if !cg.KillAndWait(5 * time.Second) {
		log.Error("processes an earlier run left behind did not end", "cgroup", dir)
	}
	if remove {
		cg.Remove()
	} else {
		cg.Close()
	}
}

// endGroup kills the members of the earlier child's process group that
// started after its leader did: a process of some other program that got
// a reused pid as its group id is older than nothing of ours.
func endGroup(leader proc, log *slog.Logger) {
	var ended []int
	for _, pid := range groupMembers(leader.PID) {
		if st, err := startTime(pid); err == nil && st >= leader.Start {
			unix.Kill(pid, unix.SIGKILL)
			ended = append(ended, pid)
		}
	}
	if len(ended) > 0 {
		log.Warn("ended processes an earlier run left behind", "pgid", leader.PID, "pids", fmt.Sprint(ended))
		waitGroupGone(leader.PID, 5*time.Second)
	}
}

// groupAlive reports whether a process of group pgid is alive, not a
// zombie.
func groupAlive(pgid int) bool {
	for _, pid := range groupMembers(pgid) {
		if st, _ := procStat(pid); st.state != "Z" && st.state != "" {
			return true
		}
	}
	return false
}

// groupMembers lists the processes whose process group is pgid.
func groupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := unix.Getpgid(pid); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (p proc) alive() bool {
	st, err := startTime(p.PID)
	return err == nil && st == p.Start
}

// startTime reads a process's start time from /proc/PID/stat.
func startTime(pid int) (uint64, error) {
	st, err := procStat(pid)
	return st.start, err
}

// stat is what vipvisor reads of /proc/PID/stat.
type stat struct {
	state string // R, S, D, Z, ...
	start uint64 // clock ticks after boot
}

func procStat(pid int) (stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, err
	}
	s := string(b)
	// Fields after the command name, which is in parentheses and may
	// itself hold blanks: state is field 3, starttime field 22.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return stat{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return stat{state: f[0], start: start}, err
}
