package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reaper is the only code in vipvisor that waits for processes. As PID 1 or
// as a subreaper, vipvisor inherits orphans and must reap them; a reaper
// that calls wait4(-1) steals the exit status that exec.Cmd.Wait expects, so
// instead every process vipvisor starts goes through Start, which registers
// its pid, and every exit is collected here: a registered pid gets its
// status on its channel, anything else is an orphan and is just reaped.
type Reaper struct {
	log  *slog.Logger
	sigs chan os.Signal

	mu      sync.Mutex // held across Start and reap, so no exit goes unclaimed
	waiters map[int]chan<- ProcessExit
}

// ProcessExit is how and when a process ended.
type ProcessExit struct {
	PID    int
	Status unix.WaitStatus
	At     time.Time
}

// Success reports whether the process exited with status 0.
func (e ProcessExit) Success() bool { return e.Status.Exited() && e.Status.ExitStatus() == 0 }

func (e ProcessExit) String() string {
	switch {
	case e.Status.Exited():
		return "exit status " + strconv.Itoa(e.Status.ExitStatus())
	case e.Status.Signaled():
		return "killed by signal " + Signal(e.Status.Signal()).String()
	}
	return "ended with wait status " + strconv.Itoa(int(e.Status))
}

// NewReaper subscribes to SIGCHLD at once, so an exit that happens before
// Run starts is not missed.
func NewReaper(log *slog.Logger) *Reaper {
	r := &Reaper{log: log, sigs: make(chan os.Signal, 1), waiters: map[int]chan<- ProcessExit{}}
	signal.Notify(r.sigs, syscall.SIGCHLD)
	return r
}

// Start starts cmd (which must not be waited for with cmd.Wait) and returns
// a channel that receives its exit exactly once.
func (r *Reaper) Start(cmd *exec.Cmd) (<-chan ProcessExit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan ProcessExit, 1)
	r.waiters[cmd.Process.Pid] = ch
	return ch, nil
}

// Run reaps on every SIGCHLD until ctx is done.
func (r *Reaper) Run(ctx context.Context) {
	defer signal.Stop(r.sigs)
	r.reap()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.sigs:
			r.reap()
		}
	}
}

// reap collects every exited process; SIGCHLD is not queued, so one signal
// may stand for several exits.
func (r *Reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		exit := ProcessExit{PID: pid, Status: ws, At: time.Now()}
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- exit
			continue
		}
		r.log.Debug("reaped orphan", "pid", pid, "status", exit.String())
	}
}

// BecomeSubreaper makes orphaned descendants (nginx workers whose master
// was killed, a check script's background job) children of this process
// instead of init, so vipvisor can reap them and they cannot escape its
// clean-up. As PID 1 this is already so.
func BecomeSubreaper() error {
	if os.Getpid() == 1 {
		return nil
	}
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// StartWait is Start for callers that need only the wait status, such as
// the exec probe (probes.Starter).
func (r *Reaper) StartWait(cmd *exec.Cmd) (<-chan unix.WaitStatus, error) {
	exited, err := r.Start(cmd)
	if err != nil {
		return nil, err
	}
	status := make(chan unix.WaitStatus, 1)
	go func() { status <- (<-exited).Status }()
	return status, nil
}
