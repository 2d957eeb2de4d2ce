package supervisor

import (
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/vrrp"
)

// hookTimeout bounds one run of the NOTIFY command; then its process
// group is killed and the next transition's run begins.
const hookTimeout = 30 * time.Second

// Hook runs the VIPVISOR_NOTIFY command on every VRRP state change, with
// keepalived's arguments: INSTANCE <name> MASTER|BACKUP|FAULT|STOP
// <priority>. Runs happen one at a time in the order of the changes, on a
// goroutine of their own: a slow command never holds up the protocol.
type Hook struct {
	argv   []string
	reaper *Reaper
	log    *slog.Logger
	queue  chan vrrp.Change
	done   chan struct{}
	// timeout is hookTimeout; a field so a test need not wait 30 s.
	timeout time.Duration
}

// NewHook returns a Hook for argv, or nil when argv is empty.
func NewHook(argv []string, r *Reaper, log *slog.Logger) *Hook {
	if len(argv) == 0 {
		return nil
	}
	h := &Hook{argv: argv, reaper: r, log: log, queue: make(chan vrrp.Change, 64), done: make(chan struct{}), timeout: hookTimeout}
	go h.drain()
	return h
}

// Notify queues a run for c. With no command it does nothing.
func (h *Hook) Notify(c vrrp.Change) {
	if h == nil {
		return
	}
	select {
	case h.queue <- c:
	default:
		h.log.Warn("notify command is behind; dropping a state change", "to", c.To.String())
	}
}

// Close waits for the queued runs (the last is usually STOP) to finish.
func (h *Hook) Close() {
	if h != nil {
		close(h.queue)
		<-h.done
	}
}

func (h *Hook) drain() {
	defer close(h.done)
	for c := range h.queue {
		h.run(c)
	}
}

// Args returns the arguments keepalived gives a notify script; the
// instance's name is its own (VI_<vrid> for a plain configuration).
func (h *Hook) Args(c vrrp.Change) []string {
	return []string{"INSTANCE", c.Instance, c.To.String(), strconv.Itoa(int(c.Priority))}
}

func (h *Hook) run(c vrrp.Change) {
	args := append(append([]string{}, h.argv[1:]...), h.Args(c)...)
	cmd := exec.Command(h.argv[0], args...)
	cmd.Env = ChildEnv(os.Environ())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	exited, err := h.reaper.Start(cmd)
	if err != nil {
		h.log.Error("notify command did not start", "err", err)
		return
	}
	timeout := time.NewTimer(h.timeout)
	defer timeout.Stop()
	select {
	case pe := <-exited:
		if !pe.Success() {
			h.log.Warn("notify command failed", "state", c.To.String(), "status", pe.String())
		}
	case <-timeout.C:
		h.log.Error("notify command timed out; killing it", "state", c.To.String(), "timeout", h.timeout)
		unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		<-exited
	}
}
