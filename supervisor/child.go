package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/envconf"
)

// ErrNotRunning is returned when a signal is sent while no child runs.
var ErrNotRunning = errors.New("child is not running")

// Child is the supervised server process: one run at a time, started,
// signalled, stopped and restarted by the driver. Its exits, expected or
// not, arrive on Exits the moment the kernel reports them. The methods are
// safe to call from any goroutine.
type Child struct {
	argv        []string
	kind        Kind
	stopSig     syscall.Signal
	reloadSig   syscall.Signal
	stopTimeout time.Duration
	reaper      *Reaper
	log         *slog.Logger
	exits       chan Exit
	cgroup      *Cgroup       // nil: the process group is all there is
	noClone3    bool          // clone3 is refused: join the cgroup after the start
	onStart     func(pid int) // told of every start, see OnStart
	listeners   *Listeners    // held sockets handed to every start; nil: none

	mu  sync.Mutex
	cur *run // nil while no process runs
}

// run is one process of the child, from start to reaping.
type run struct {
	proc     *os.Process
	started  time.Time
	stopping bool
	ended    bool          // the process is gone; its leftovers may not be yet
	kill     *time.Timer   // SIGKILL after the stop timeout
	done     chan struct{} // closed once the process is reaped
}

// Exit is the end of one run of the child.
type Exit struct {
	ProcessExit
	Ran     time.Duration // how long it ran
	Stopped bool          // ended by Stop, not on its own
}

// NewChild prepares argv (as Config.Argv returns it) to run under r.
func NewChild(cfg *Config, argv []string, r *Reaper, log *slog.Logger) *Child {
	kind := KindOf(argv[0])
	return &Child{
		argv:        argv,
		kind:        kind,
		stopSig:     cfg.StopSignalFor(kind),
		reloadSig:   cfg.ReloadSignalFor(kind),
		stopTimeout: cfg.StopTimeout,
		reaper:      r,
		log:         log.With("child", filepath.Base(argv[0])),
		exits:       make(chan Exit, 16),
	}
}

// leftoverWait bounds how long the end of a run waits for what the child
// left behind to be gone; SIGKILLed processes leave in milliseconds, but a
// process in uninterruptible sleep (a hung NFS read) can take longer.
const leftoverWait = 2 * time.Second

// UseCgroup makes every later start run inside cg, so that whatever the
// child forks (setsid and double forks included) is ended with it. Call
// it before Start.
func (c *Child) UseCgroup(cg *Cgroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cgroup = cg
}

// RefuseConnections resets what the held sockets queue, from now until
// the next Start: vipvisor has yielded, and no child will accept them
// for a while. Without held sockets it does nothing.
func (c *Child) RefuseConnections() {
	c.mu.Lock()
	l := c.listeners
	c.mu.Unlock()
	if l == nil {
		return
	}
	if err := l.Refuse(); err != nil {
		c.log.Error("cannot reset the connections the held sockets queue; they wait until the child starts again", "err", err)
	}
}

// UseListeners hands the held sockets l to every later start: as file
// descriptors 3, 4, … and, for nginx, the NGINX variable naming them.
// Call it before Start.
func (c *Child) UseListeners(l *Listeners) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = l
}

// OnStart registers f to be told the pid (and process group) of every
// run as it starts; the guard records it. Call it before Start.
func (c *Child) OnStart(f func(pid int)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onStart = f
}

// Exits delivers every end of a run, in order. The driver must keep
// draining it.
func (c *Child) Exits() <-chan Exit { return c.exits }

// Name is the base name of the child's program, e.g. "nginx".
func (c *Child) Name() string { return filepath.Base(c.argv[0]) }

// PID returns the running process's pid, or 0.
func (c *Child) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.ended {
		return 0
	}
	return c.cur.proc.Pid
}

// spawn starts the child's process, in the cgroup open as cgroupFD unless
// that is -1. It is born inside it (clone3 CLONE_INTO_CGROUP), so there is
// no moment in which it could fork outside it; where a seccomp filter
// refuses clone3 (systemd's RestrictNamespaces= does, with ENOSYS), it is
// moved in at once after it started, before nginx reads its
// configuration, let alone forks its workers.
func (c *Child) spawn(cgroupFD int) (*exec.Cmd, <-chan ProcessExit, error) {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = ChildEnv(os.Environ())
	if c.listeners != nil {
		if n := c.listeners.Hold(); n > 0 {
			c.log.Info("reset connections the held sockets queued while no child would accept them", "count", n)
		}
		cmd.ExtraFiles = c.listeners.Files()
		cmd.Env = append(withoutVar(cmd.Env, "NGINX"), c.listeners.NginxEnv())
	}
	// The child writes straight to our stdout and stderr: no pipe that
	// could fill up and block it.
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // its own group, so leftovers can be ended together
		Pdeathsig: syscall.SIGKILL, // it never outlives vipvisor
	}
	if cgroupFD >= 0 && !c.noClone3 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cgroupFD
	}
	// Pdeathsig follows the thread that forks, not the process: keep this
	// goroutine on one thread so the runtime does not fork from a thread it
	// is about to retire.
	runtime.LockOSThread()
	exited, err := c.reaper.Start(cmd)
	runtime.UnlockOSThread()
	if errors.Is(err, syscall.ENOSYS) && cmd.SysProcAttr.UseCgroupFD {
		c.noClone3 = true
		c.log.Info("clone3 is refused here (a seccomp filter): the child is moved into its cgroup just after it starts")
		return c.spawn(cgroupFD)
	}
	if err != nil {
		return nil, nil, err
	}
	if cgroupFD >= 0 && c.noClone3 {
		if err := joinCgroup(cgroupFD, cmd.Process.Pid); err != nil {
			c.log.Warn("could not move the child into its cgroup: only its process group is ended with it", "err", err)
		}
	}
	return cmd, exited, nil
}

// Start starts a new run. It fails if one is already running.
func (c *Child) Start() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil {
		return 0, fmt.Errorf("child %s already runs as pid %d", c.Name(), c.cur.proc.Pid)
	}
	cgroupFD := -1
	if c.cgroup != nil {
		fd, err := c.cgroup.NewRun()
		if err != nil {
			return 0, fmt.Errorf("start %s: %w", c.Name(), err)
		}
		defer unix.Close(fd)
		cgroupFD = fd
	}
	cmd, exited, err := c.spawn(cgroupFD)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", strings.Join(c.argv, " "), err)
	}
	r := &run{proc: cmd.Process, started: time.Now(), done: make(chan struct{})}
	c.cur = r
	c.log.Info("child started", "pid", r.proc.Pid, "argv", envconf.Words(c.argv).String())
	if c.onStart != nil {
		c.onStart(r.proc.Pid)
	}
	go c.await(r, exited)
	return r.proc.Pid, nil
}

// await turns the reaper's report into an Exit once the process ends and
// whatever it left behind (in its group, in its cgroup) is gone too: only
// then may the next run start, or it would race a dying worker for the
// port.
func (c *Child) await(r *run, exited <-chan ProcessExit) {
	pe := <-exited
	c.mu.Lock()
	r.ended = true
	if r.kill != nil {
		r.kill.Stop()
	}
	stopped := r.stopping
	cg := c.cgroup
	c.mu.Unlock()

	pid := r.proc.Pid
	if c.listeners != nil && !stopped {
		c.drainLeftovers(pid, cg)
	}
	c.endLeftovers(pid, cg)
	c.mu.Lock()
	if c.cur == r {
		c.cur = nil
	}
	c.mu.Unlock()
	r.proc.Release()
	ex := Exit{ProcessExit: pe, Ran: pe.At.Sub(r.started), Stopped: stopped}
	if stopped {
		c.log.Info("child stopped", "pid", pid, "status", pe.String(), "ran", ex.Ran.Round(time.Millisecond))
	} else {
		c.log.Error("child exited", "pid", pid, "status", pe.String(), "ran", ex.Ran.Round(time.Millisecond))
	}
	close(r.done)
	c.exits <- ex
}

// leftoverDrain bounds how long the workers of a crashed nginx may go on
// with the requests they had accepted before they are killed.
const leftoverDrain = time.Second

// drainLeftovers asks what a crashed run left behind (nginx's workers) to
// stop gracefully, with the stop signal, and waits at most leftoverDrain
// for it to be gone. With held sockets nothing is refused meanwhile (new
// connections queue in the held socket, which the workers stop accepting
// from at once), so the requests the workers had accepted are answered
// instead of reset. A worker stopped by SIGSTOP does not drain, but a
// run ended by Stop (a hung child) is not drained at all.
func (c *Child) drainLeftovers(pgid int, cg *Cgroup) {
	unix.Kill(-pgid, c.stopSig)
	if cg != nil {
		pids, _ := cg.Procs() // those that left the group (setsid)
		for _, p := range pids {
			unix.Kill(p, c.stopSig)
		}
	}
	gone := func() bool {
		if !groupGone(pgid) {
			return false
		}
		if cg == nil {
			return true
		}
		empty, err := cg.Empty()
		return err != nil || empty
	}
	deadline := time.Now().Add(leftoverDrain)
	for !gone() && time.Now().Before(deadline) {
		time.Sleep(cgroupPollEvery)
	}
}

// endLeftovers kills what a run left behind, its process group and its
// cgroup, and waits until it is gone.
func (c *Child) endLeftovers(pgid int, cg *Cgroup) {
	left := unix.Kill(-pgid, unix.SIGKILL) == nil
	if cg != nil {
		if pids, _ := cg.Procs(); len(pids) > 0 {
			left = true
		}
		if !cg.KillAndWait(leftoverWait) {
			c.log.Error("processes the child left behind did not end", "cgroup", cg.Dir(), "waited", leftoverWait)
		}
	} else if !waitGroupGone(pgid, leftoverWait) {
		c.log.Error("processes the child left behind did not end", "pgid", pgid, "waited", leftoverWait)
	}
	if left {
		c.log.Warn("ended processes the child left behind", "pgid", pgid)
	}
}

// groupGone reports whether no live process is left in group pgid; a
// zombie counts as gone.
func groupGone(pgid int) bool {
	err := unix.Kill(-pgid, 0)
	return errors.Is(err, unix.ESRCH) || !groupAlive(pgid)
}

// waitGroupGone waits until no live process is left in group pgid. A
// zombie counts as gone: it holds no port, and whoever is its parent now
// reaps it in its own time.
func waitGroupGone(pgid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(cgroupPollEvery)
	defer tick.Stop()
	for {
		if groupGone(pgid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		unix.Kill(-pgid, unix.SIGKILL)
		<-tick.C
	}
}

// Signal sends sig to the child's main process.
func (c *Child) Signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.ended {
		return ErrNotRunning
	}
	// os.Process signals through a pidfd: a reaped pid that the kernel
	// has reused is never hit.
	if err := c.cur.proc.Signal(sig); err != nil {
		return fmt.Errorf("signal %s to pid %d: %w", Signal(sig), c.cur.proc.Pid, err)
	}
	return nil
}

// Reload sends the reload signal (nginx HUP, httpd USR1).
func (c *Child) Reload() error { return c.Signal(c.reloadSig) }

// ReloadSignal is the signal Reload sends.
func (c *Child) ReloadSignal() syscall.Signal { return c.reloadSig }

// Stop asks the child to stop gracefully with the stop signal and sends
// SIGKILL to its whole group if it has not exited after the stop timeout.
// It does not wait: the returned channel is closed once the process is
// reaped (at once if none runs). Calling it again is harmless.
func (c *Child) Stop() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.cur
	if r == nil {
		done := make(chan struct{})
		close(done)
		return done
	}
	if r.stopping || r.ended {
		return r.done
	}
	r.stopping = true
	pid := r.proc.Pid
	if err := r.proc.Signal(c.stopSig); err != nil {
		c.log.Warn("stop signal failed", "pid", pid, "signal", Signal(c.stopSig).String(), "err", err)
	} else {
		c.log.Info("stopping child", "pid", pid, "signal", Signal(c.stopSig).String(), "timeout", c.stopTimeout)
	}
	// A child stopped with SIGSTOP (hung, as far as its clients can
	// tell) acts on the stop signal only once it runs again.
	unix.Kill(-pid, unix.SIGCONT)
	cg := c.cgroup
	r.kill = time.AfterFunc(c.stopTimeout, func() {
		c.log.Warn("child did not stop in time; killing it and all it started", "pid", pid, "timeout", c.stopTimeout)
		killAll(pid, cg)
	})
	return r.done
}

// Kill ends the child and all it started at once.
func (c *Child) Kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil {
		c.cur.stopping = true
		killAll(c.cur.proc.Pid, c.cgroup)
	}
}

// killAll sends SIGKILL to process group pgid and to every member of cg.
func killAll(pgid int, cg *Cgroup) {
	unix.Kill(-pgid, unix.SIGKILL)
	if cg != nil {
		cg.Kill()
	}
}

// withoutVar returns env without the variable name.
func withoutVar(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if n, _, _ := strings.Cut(kv, "="); n != name {
			out = append(out, kv)
		}
	}
	return out
}

// ChildEnv returns env without the variables that belong to vipvisor's own
// dealings with systemd: a child that saw NOTIFY_SOCKET could report
// READY or STOPPING on vipvisor's behalf.
func ChildEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID":
			continue
		}
		out = append(out, kv)
	}
	return out
}
