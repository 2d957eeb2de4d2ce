package supervisor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/vrrp"
)

// The guard is what makes "nothing survives a kill" hold when vipvisor
// itself is killed (kill -9, the OOM killer): a process that dies that way
// runs no clean-up, and Pdeathsig ends only the child's main process, not
// nginx's workers or anything that left its group with setsid, nor takes
// the VIPs off the interface.
//
// So vipvisor starts a small copy of itself, the guard, that outlives it
// by design: in a session of its own (no terminal signal reaches it), with
// no parent-death signal, ignoring the signals systemd sends a unit's
// leftovers. It holds the read end of a pipe whose only writer is
// vipvisor (the descriptor is close-on-exec, so the child never inherits
// it). When vipvisor ends, however it ends, the kernel closes its end and
// the guard reads EOF at once; it then kills the child's cgroup (and its
// last process group), removes the VIPs and the run's state file, and
// exits. After a clean stop all that is already done and the guard finds
// nothing to do.
//
// Alternatives weighed: a PID namespace for the child would make nginx
// write pid 1 in its pid file (`nginx -s reload` would signal the host's
// init); systemd's cgroup alone ends the processes only under systemd and
// never removes the VIPs; address lifetimes alone need a refresh several
// times a second per VIP. As a container's PID 1 the guard would die with
// the namespace, so there the kernel ends the processes and VIP leases end
// the addresses (see the lease in vrrp/lease.go).

// guardArg is the hidden first argument that makes vipvisor the guard.
const guardArg = "_guard"

// GuardArg is the argument cmd/vipvisor dispatches to GuardMain.
const GuardArg = guardArg

// GuardSpec is what the guard must undo when vipvisor is gone.
type GuardSpec struct {
	Cgroup  string   `json:"cgroup,omitempty"` // the child's cgroup directory
	VIPs    []VIPSet `json:"vips,omitempty"`   // one per instance but the address owner's
	State   string   `json:"state,omitempty"`  // the run's state file, removed last
	LogJSON bool     `json:"log_json,omitempty"`
}

// VIPSet is one instance's VIPs, removed from its interface.
type VIPSet struct {
	Interface string         `json:"interface"`
	VIPs      []netip.Prefix `json:"vips"`
}

// guardRestartAfter spaces out restarts of a guard that keeps dying; one
// that ran longer than that is started again at once, since until then a
// kill -9 of vipvisor would leave its child and VIPs behind.
const guardRestartAfter = time.Second

// Guard is vipvisor's side of the guard process.
type Guard struct {
	spec   GuardSpec
	reaper *Reaper
	log    *slog.Logger
	state  *RunState

	mu      sync.Mutex
	w       *os.File // vipvisor's end of the pipe
	pid     int
	pgid    int // the child's last process group
	started time.Time
	closing bool
	exited  chan struct{} // closed when the current guard process is reaped
}

// StartGuard starts the guard process for spec. state, if not nil, is
// kept up to date with the guard's and the child's pids.
func StartGuard(spec GuardSpec, state *RunState, r *Reaper, log *slog.Logger) (*Guard, error) {
	g := &Guard{spec: spec, reaper: r, log: log, state: state}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.spawn(); err != nil {
		return nil, err
	}
	return g, nil
}

// spawn starts one guard process; g.mu is held.
func (g *Guard) spawn() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("guard: find own executable: %w", err)
	}
	rd, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("guard: pipe: %w", err)
	}
	defer rd.Close()
	// The spec and the child's group go into the pipe before the guard
	// starts: a vipvisor killed the moment after would otherwise leave a
	// guard that read EOF before its spec, and nothing to clean up with.
	spec, _ := json.Marshal(g.spec)
	fmt.Fprintf(w, "%s\n", spec)
	if g.pgid > 0 {
		fmt.Fprintf(w, "pgid %d\n", g.pgid)
	}
	cmd := exec.Command(exe, guardArg)
	cmd.Args[0] = "vipvisor-guard"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = rd, os.Stderr, os.Stderr
	cmd.Env = guardEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	exited, err := g.reaper.Start(cmd)
	if err != nil {
		w.Close()
		return fmt.Errorf("guard: start: %w", err)
	}
	g.w, g.pid, g.started = w, cmd.Process.Pid, time.Now()
	if g.state != nil {
		g.state.SetGuard(g.pid)
	}
	done := make(chan struct{})
	g.exited = done
	go g.await(cmd.Process, exited, done)
	return nil
}

// guardEnv is the guard's environment: no systemd socket, and a runtime
// kept small, as it only waits.
func guardEnv() []string {
	return append(ChildEnv(os.Environ()), "GOMAXPROCS=1", "GOGC=20")
}

// await restarts a guard that died while vipvisor runs on.
func (g *Guard) await(p *os.Process, exited <-chan ProcessExit, done chan struct{}) {
	ex := <-exited
	p.Release()
	close(done)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return
	}
	g.w.Close()
	g.log.Error("the guard process ended; starting it again", "pid", ex.PID, "status", ex.String())
	time.AfterFunc(guardRestartAfter-min(time.Since(g.started), guardRestartAfter), func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.closing {
			return
		}
		if err := g.spawn(); err != nil {
			g.log.Error("the guard did not start: a kill -9 of vipvisor would leave its child and VIPs behind", "err", err)
		}
	})
}

// PID is the guard process's pid.
func (g *Guard) PID() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pid
}

// Started records the child's new process group; Child.OnStart calls it.
func (g *Guard) Started(pgid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pgid = pgid
	if g.w != nil {
		fmt.Fprintf(g.w, "pgid %d\n", pgid)
	}
	if g.state != nil {
		g.state.SetChild(pgid)
	}
}

// Close ends the guard after a clean stop: it closes the pipe, and the
// guard checks that nothing is left and exits. Close waits for that, at
// most timeout.
func (g *Guard) Close(timeout time.Duration) {
	g.mu.Lock()
	g.closing = true
	g.w.Close()
	exited := g.exited
	g.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(timeout):
		g.log.Warn("the guard did not finish in time", "pid", g.PID(), "waited", timeout)
	}
}

// GuardMain is the guard process: it reads its spec and the child's
// process groups from stdin until EOF, then cleans up. It returns the
// exit code.
func GuardMain(stdin io.Reader, stderr io.Writer) int {
	// systemd sends SIGTERM to what is left of a unit whose main process
	// died, a terminal sends SIGINT and SIGHUP: the guard stays until
	// its work is done.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGPIPE, syscall.SIGUSR1, syscall.SIGUSR2)
	in := bufio.NewReader(stdin)
	line, err := in.ReadString('\n')
	if err != nil {
		fmt.Fprintln(stderr, "vipvisor-guard: no spec on stdin; this is vipvisor's internal guard process")
		return 2
	}
	var spec GuardSpec
	if err := json.Unmarshal([]byte(line), &spec); err != nil {
		fmt.Fprintln(stderr, "vipvisor-guard: bad spec:", err)
		return 2
	}
	log := guardLogger(spec, stderr)
	pgid := 0
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			break // vipvisor is gone
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "pgid "); ok {
			pgid, _ = strconv.Atoi(v)
		}
	}
	cleanUp(spec, pgid, log)
	return 0
}

func guardLogger(spec GuardSpec, w io.Writer) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(w, nil)
	if spec.LogJSON {
		h = slog.NewJSONHandler(w, nil)
	}
	return slog.New(h).With("guard", os.Getpid())
}

// cleanUp ends everything of the child's and removes the VIPs. Each step
// is harmless when there is nothing to do, as after a clean stop.
func cleanUp(spec GuardSpec, pgid int, log *slog.Logger) {
	if pgid > 0 && unix.Kill(-pgid, unix.SIGKILL) == nil {
		log.Warn("vipvisor is gone: killed its child's process group", "pgid", pgid)
	}
	if spec.Cgroup != "" {
		if cg, err := OpenCgroup(spec.Cgroup); err == nil {
			if pids, _ := cg.Procs(); len(pids) > 0 {
				log.Warn("vipvisor is gone: killing what its child left", "cgroup", spec.Cgroup, "processes", len(pids))
			}
			if !cg.KillAndWait(5 * time.Second) {
				log.Error("processes of the child's cgroup did not end", "cgroup", spec.Cgroup)
			}
			cg.Remove()
		}
	}
	removeVIPs(spec, log)
	if spec.State != "" {
		os.Remove(spec.State)
	}
}

// EndRun undoes a run of vipvisor that has ended, as its guard would: it
// ends what the run's state file names and removes spec's VIPs. It is for
// when the guard could not do it (systemd kills a unit's every process
// once its main process is gone).
func EndRun(spec GuardSpec, log *slog.Logger) {
	if spec.State != "" {
		if err := EndLeftovers(spec.State, "", log); err != nil {
			log.Warn("could not read what the run left", "err", err)
		}
	}
	removeVIPs(spec, log)
}

func removeVIPs(spec GuardSpec, log *slog.Logger) {
	for _, set := range spec.VIPs {
		removed, err := vrrp.RemoveStaleVIPs(set.Interface, set.VIPs)
		if len(removed) > 0 {
			log.Warn("vipvisor is gone: removed its VIPs", "iface", set.Interface, "vips", fmt.Sprint(removed))
		}
		if err != nil {
			log.Error("vipvisor is gone and removing its VIPs failed", "err", err)
		}
	}
}
