package probes

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/envconf"
)

// Starter starts cmd and returns a channel that receives its wait status
// once it exits. vipvisor passes its reaper: a process that is PID 1 or a
// subreaper reaps with wait4(-1), so exec.Cmd.Wait must not be used.
//
// The channel must have room for the status (a buffer of one): a check
// that kills its command at the deadline returns without receiving it.
type Starter func(cmd *exec.Cmd) (<-chan unix.WaitStatus, error)

// execProbe passes when argv exits with status 0.
type execProbe struct {
	argv  []string
	start Starter
}

// NewExec returns a probe that runs argv (argv[0] looked up in PATH, no
// shell) and passes when it exits with status 0.
//
// The command runs in a process group of its own, with stdin and stdout
// on /dev/null and stderr on vipvisor's stderr (a quiet check stays quiet
// in the log, a failing one can say why), and with vipvisor's environment
// minus NOTIFY_SOCKET and WATCHDOG_*, so it cannot talk to systemd in
// vipvisor's name. It gets SIGKILL if vipvisor dies.
//
// At ctx's deadline the whole group, background jobs included, gets
// SIGKILL and the check fails with "killed after timeout 1s". When the
// command exits by itself, whatever it left running in its group is killed
// too, so checks do not pile up stray processes. Other reasons are "exit
// status 1", "killed by SIGTERM" and "start: " with why it did not start.
func NewExec(argv []string, start Starter) Probe {
	return &execProbe{argv: append([]string(nil), argv...), start: start}
}

func (p *execProbe) Name() string { return "exec " + envconf.Words(p.argv).String() }

// Check starts the command and waits for its status or ctx, whichever
// comes first. It never waits for a killed command to be reaped: SIGKILL
// cannot be caught, and the reaper collects the status later.
func (p *execProbe) Check(ctx context.Context) Result {
	start := time.Now()
	if len(p.argv) == 0 {
		return fail(start, "start: empty command")
	}
	if ctx.Err() != nil {
		return fail(start, timeoutReason(ctx, start))
	}
	cmd := p.command()
	// Pdeathsig follows the thread that forks, not the process: keep this
	// goroutine on one thread so the runtime does not fork from a thread it
	// is about to retire.
	runtime.LockOSThread()
	exited, err := p.start(cmd)
	runtime.UnlockOSThread()
	if err != nil {
		return fail(start, "start: "+err.Error())
	}
	pgid := cmd.Process.Pid
	defer cmd.Process.Release()
	select {
	case ws := <-exited:
		killGroup(pgid)
		return exitResult(start, ws)
	case <-ctx.Done():
	}
	select {
	case ws := <-exited: // it exited just as time ran out
		killGroup(pgid)
		return exitResult(start, ws)
	default:
	}
	killGroup(pgid)
	if b, ok := allowed(ctx, start); ok {
		return fail(start, "killed after timeout "+b.String())
	}
	return fail(start, "killed: "+timeoutReason(ctx, start))
}

// command builds the exec.Cmd; it is not exec.CommandContext, whose
// cancellation needs cmd.Wait.
func (p *execProbe) command() *exec.Cmd {
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Env = probeEnv(os.Environ())
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	return cmd
}

// killGroup sends SIGKILL to every process left in the group. The kernel
// does not hand out a group's id again while a member is alive; when none
// is left the kill finds nothing (short of the pid space wrapping around
// in the microseconds since the leader was reaped).
func killGroup(pgid int) {
	_ = unix.Kill(-pgid, unix.SIGKILL)
}

// exitResult judges a command by how it ended.
func exitResult(start time.Time, ws unix.WaitStatus) Result {
	switch {
	case ws.Exited() && ws.ExitStatus() == 0:
		return pass(start)
	case ws.Exited():
		return fail(start, "exit status "+strconv.Itoa(ws.ExitStatus()))
	case ws.Signaled():
		return fail(start, "killed by "+unix.SignalName(ws.Signal()))
	}
	return fail(start, "ended with wait status "+strconv.Itoa(int(ws)))
}

// probeEnv is env without the variables that let a process speak to
// systemd for vipvisor.
func probeEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if name == "NOTIFY_SOCKET" || strings.HasPrefix(name, "WATCHDOG_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
