package progrun

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// storyGrace bounds how long the cleanups wait for the story to reach a
// point where it stops; the longest it can be busy is one ip command,
// which the lab bounds at 20s.
const storyGrace = 25 * time.Second

// Runner is a program's lab.T: it prints failures, keeps a stack of
// cleanups and runs it, last registered first, exactly once: when the
// story ends, on Fatalf, or on SIGINT, SIGTERM or SIGHUP. Then it exits.
//
// As with testing, Fatalf ends the goroutine that calls it. The cleanups
// start once the story has stopped, so that nothing it makes is left
// unregistered; a story stops at its next checkpoint once the runner is
// stopping. Each cleanup runs on a goroutine of its own, so one that
// calls Fatalf ends only itself.
type Runner struct {
	out       io.Writer
	verbose   bool          // print the lab's diagnostics too
	storyDone chan struct{} // closed when the story's goroutine ends

	mu          sync.Mutex
	cleanups    []func()
	failed      bool
	stopping    bool // finish was called
	interrupted bool // by a signal: the story says no more
	finishing   sync.Once
}

// New returns a Runner that prints to stdout: the story, and the
// failures among it, in the order they happened. With verbose, Logf
// prints the lab's diagnostics too.
func New(verbose bool) *Runner {
	return &Runner{out: os.Stdout, verbose: verbose, storyDone: make(chan struct{})}
}

// Helper does nothing: the messages name their step themselves.
func (r *Runner) Helper() {}

// Cleanup pushes f on the cleanup stack.
func (r *Runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// Errorf reports a failure and carries on.
func (r *Runner) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.failed = true
	quiet := r.interrupted
	r.mu.Unlock()
	if !quiet {
		fmt.Fprintf(r.out, "FAILED: %s\n", fmt.Sprintf(format, args...))
	}
}

// Fatalf reports a failure, then cleans up and exits 1; the calling
// goroutine ends here.
func (r *Runner) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.Abort()
}

// Abort cleans up and exits 1, like Fatalf after the failure is told; the
// calling goroutine ends here.
func (r *Runner) Abort() {
	r.finish(1)
	runtime.Goexit()
}

// Logf prints what the lab explains a failure with (links, addresses,
// neighbours, nginx's error.log), indented, if the runner is verbose.
func (r *Runner) Logf(format string, args ...any) {
	if r.verbose {
		r.Print(format, args...)
	}
}

// Out is where the runner prints.
func (r *Runner) Out() io.Writer { return r.out }

// Interrupted reports whether a signal ended the program.
func (r *Runner) Interrupted() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.interrupted
}

// Failed reports whether Errorf or Fatalf was called.
func (r *Runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Say prints a line of the story, unless the program was interrupted.
func (r *Runner) Say(format string, args ...any) {
	r.mu.Lock()
	quiet := r.interrupted
	r.mu.Unlock()
	if !quiet {
		fmt.Fprintf(r.out, format+"\n", args...)
	}
}

// Print prints a message indented, even if the program was interrupted.
func (r *Runner) Print(format string, args ...any) {
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	fmt.Fprintf(r.out, "    %s\n", strings.ReplaceAll(msg, "\n", "\n    "))
}

// Checkpoint ends the story's goroutine if the runner is stopping; the
// story calls it between the things it does.
func (r *Runner) Checkpoint() {
	r.mu.Lock()
	stopping := r.stopping
	r.mu.Unlock()
	if stopping {
		runtime.Goexit()
	}
}

// Run runs story on a goroutine of its own, with the signals that end the
// program trapped, and never returns: it exits 0 if the story ends with no
// failure, 1 after one, 130 after an interrupt.
func (r *Runner) Run(story func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go r.onSignal(sigs)
	go func() {
		defer close(r.storyDone)
		story()
		r.finish(0)
	}()
	select {} // finish exits
}

func (r *Runner) onSignal(sigs <-chan os.Signal) {
	sig := <-sigs
	r.mu.Lock()
	r.interrupted = true
	r.mu.Unlock()
	fmt.Fprintf(r.out, "\n%v: stopping and removing the lab\n", sig)
	go func() {
		for range sigs {
			fmt.Fprintln(r.out, "still cleaning up; a few seconds more")
		}
	}()
	r.finish(130)
}

// finish stops the story, runs the cleanups and exits with code, or 1 if
// the program failed; only the first call does anything, later ones return
// at once.
func (r *Runner) finish(code int) {
	r.finishing.Do(func() {
		r.mu.Lock()
		r.stopping = true
		r.mu.Unlock()
		go func() {
			select {
			case <-r.storyDone:
			case <-time.After(storyGrace):
			}
			for f := r.pop(); f != nil; f = r.pop() {
				runIsolated(f)
			}
			if code == 0 && r.Failed() {
				code = 1
			}
			os.Exit(code)
		}()
	})
}

func (r *Runner) pop() func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cleanups) == 0 {
		return nil
	}
	f := r.cleanups[len(r.cleanups)-1]
	r.cleanups = r.cleanups[:len(r.cleanups)-1]
	return f
}

// runIsolated runs f on a goroutine of its own and waits for it, so that
// f calling Fatalf (runtime.Goexit) ends only f.
func runIsolated(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}
