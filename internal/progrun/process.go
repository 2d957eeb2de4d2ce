package progrun

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Process is a program started by StartProcess, with its output in a file.
type Process struct {
	cmd  *exec.Cmd
	log  string // file with vipvisor's output and nginx's
	done chan struct{}
}

// StartProcess starts cmd with its output going to the file log, so
// nothing a child leaves behind can hold a pipe open. It runs in a process
// group of its own: a Ctrl-C at the terminal reaches the program alone,
// which then stops everything in order.
func StartProcess(cmd *exec.Cmd, log string) (*Process, error) {
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Signal sends sig unless the process has ended.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

func (p *Process) exited() bool {
	_, ok := p.ExitCode()
	return ok
}

// ExitCode returns the exit code if the process has ended.
func (p *Process) ExitCode() (int, bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	default:
		return 0, false
	}
}

// Wait waits up to timeout for the process to end and returns its exit
// code, or false if it still runs.
func (p *Process) Wait(timeout time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// Stop stops the process gracefully with SIGTERM, as systemd would, and
// kills it if it still runs after timeout.
func (p *Process) Stop(timeout time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	if _, ok := p.Wait(timeout); !ok {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// LogTail returns the last n lines of the process's log.
func (p *Process) LogTail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// CleanEnv is this process's environment for a vipvisor under a program:
// without VIPVISOR_* and systemd's variables, with the sbin directories on
// PATH (a non-login root shell may leave them out).
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "VIPVISOR_"), strings.HasPrefix(kv, "NOTIFY_SOCKET="),
			strings.HasPrefix(kv, "WATCHDOG_"):
		case strings.HasPrefix(kv, "PATH="):
			env = append(env, kv+":/usr/sbin:/sbin")
		default:
			env = append(env, kv)
		}
	}
	return env
}
