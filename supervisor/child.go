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

	mu  sync.Mutex
	cur *run // nil while no process runs
}

// run is one process of the child, from start to reaping.
type run struct {
	proc     *os.Process
	started  time.Time
	stopping bool
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

// Exits delivers every end of a run, in order. The driver must keep
// draining it.
func (c *Child) Exits() <-chan Exit { return c.exits }

// Name is the base name of the child's program, e.g. "nginx".
func (c *Child) Name() string { return filepath.Base(c.argv[0]) }

// PID returns the running process's pid, or 0.
func (c *Child) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return 0
	}
	return c.cur.proc.Pid
}

// Start starts a new run. It fails if one is already running.
func (c *Child) Start() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil {
		return 0, fmt.Errorf("child %s already runs as pid %d", c.Name(), c.cur.proc.Pid)
	}
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = ChildEnv(os.Environ())
	// The child writes straight to our stdout and stderr: no pipe that
	// could fill up and block it.
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // its own group, so leftovers can be ended together
		Pdeathsig: syscall.SIGKILL, // it never outlives vipvisor
	}
	// Pdeathsig follows the thread that forks, not the process: keep this
	// goroutine on one thread so the runtime does not fork from a thread it
	// is about to retire.
	runtime.LockOSThread()
	exited, err := c.reaper.Start(cmd)
	runtime.UnlockOSThread()
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", strings.Join(c.argv, " "), err)
	}
	r := &run{proc: cmd.Process, started: time.Now(), done: make(chan struct{})}
	c.cur = r
	c.log.Info("child started", "pid", r.proc.Pid, "argv", envconf.Words(c.argv).String())
	go c.await(r, exited)
	return r.proc.Pid, nil
}

// await turns the reaper's report into an Exit once the process ends, after
// ending whatever the process left behind in its group.
func (c *Child) await(r *run, exited <-chan ProcessExit) {
	pe := <-exited
	c.mu.Lock()
	if c.cur == r {
		c.cur = nil
	}
	if r.kill != nil {
		r.kill.Stop()
	}
	stopped := r.stopping
	c.mu.Unlock()

	pid := r.proc.Pid
	if err := unix.Kill(-pid, unix.SIGKILL); err == nil {
		c.log.Warn("ended processes the child left behind", "pgid", pid)
	}
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

// Signal sends sig to the child's main process.
func (c *Child) Signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
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
	if r.stopping {
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
	r.kill = time.AfterFunc(c.stopTimeout, func() {
		c.log.Warn("child did not stop in time; killing its process group", "pid", pid, "timeout", c.stopTimeout)
		unix.Kill(-pid, unix.SIGKILL)
	})
	return r.done
}

// Kill ends the child's whole process group at once.
func (c *Child) Kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil {
		c.cur.stopping = true
		unix.Kill(-c.cur.proc.Pid, unix.SIGKILL)
	}
}

// Restart stops the running child, waiting up to the stop timeout and the
// SIGKILL that follows it, then starts a new run.
func (c *Child) Restart() (int, error) {
	<-c.Stop()
	return c.Start()
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
