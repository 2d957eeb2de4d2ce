package main

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is one vipvisor the demo started.
type process struct {
	cmd  *exec.Cmd
	log  string // file with vipvisor's output and nginx's
	done chan struct{}
}

// startProcess starts cmd with its output going to the file log, so
// nothing a child leaves behind can hold a pipe open. It runs in a process
// group of its own: a Ctrl-C at the terminal reaches the demo alone, which
// then stops everything in order.
func startProcess(cmd *exec.Cmd, log string) (*process, error) {
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
	p := &process{cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// signal sends sig unless the process has ended.
func (p *process) signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

func (p *process) exited() bool {
	_, ok := p.exitCode()
	return ok
}

// exitCode returns the exit code if the process has ended.
func (p *process) exitCode() (int, bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	default:
		return 0, false
	}
}

// wait waits up to timeout for the process to end and returns its exit
// code, or false if it still runs.
func (p *process) wait(timeout time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// stop stops the process gracefully with SIGTERM, as systemd would, and
// kills it if it still runs after timeout.
func (p *process) stop(timeout time.Duration) {
	_ = p.signal(syscall.SIGTERM)
	if _, ok := p.wait(timeout); !ok {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// logTail returns the last n lines of the process's log.
func (p *process) logTail(n int) string {
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
