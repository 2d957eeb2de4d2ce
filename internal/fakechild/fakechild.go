// Package fakechild is a stand-in web server for tests: the test binary
// re-executes itself with FAKECHILD set and, instead of running tests,
// behaves like a small server whose reactions the test chooses. It starts
// in milliseconds, so tests of the child's life cycle run fast; the
// end-to-end tests use real nginx.
//
// Settings, all from the environment:
//
//	FAKECHILD=serve        serve HTTP on FAKECHILD_ADDR until a stop signal
//	FAKECHILD=exit         exit with status FAKECHILD_CODE after FAKECHILD_AFTER
//	FAKECHILD=orphan       leave an orphaned grandchild (in this process's
//	                       group) that lives FAKECHILD_AFTER, then serve
//	FAKECHILD=setsid       like orphan, but the grandchild calls setsid first,
//	                       leaving this process's group and session
//	FAKECHILD_LOG          file that receives one line per event:
//	                       "ready PID", "signal NAME", "env NAME=VALUE"
//	FAKECHILD_IGNORE       comma list of signal names to ignore (e.g. TERM,QUIT)
//	FAKECHILD_BODY         the HTTP response body (default "fake")
package fakechild

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Enabled reports whether this process was started as a fake child.
func Enabled() bool { return os.Getenv("FAKECHILD") != "" }

// Main runs the fake child and exits the process.
func Main() {
	switch mode := os.Getenv("FAKECHILD"); mode {
	case "serve":
		serve()
	case "exit":
		time.Sleep(duration("FAKECHILD_AFTER"))
		code, _ := strconv.Atoi(os.Getenv("FAKECHILD_CODE"))
		os.Exit(code)
	case "orphan":
		// A middle process starts the grandchild and exits at once, so
		// the grandchild is orphaned while this process serves on.
		if err := again("spawn").Run(); err != nil {
			fail(err)
		}
		serve()
	case "setsid":
		if err := again("spawn-setsid").Run(); err != nil {
			fail(err)
		}
		serve()
	case "spawn", "spawn-setsid":
		cmd := again("sleep")
		if mode == "spawn-setsid" {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		}
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		record("orphan %d", cmd.Process.Pid)
		os.Exit(0)
	case "sleep":
		// The grandchild: its parent does not wait for it, so once the
		// parent is gone it is an orphan for the nearest subreaper.
		time.Sleep(duration("FAKECHILD_AFTER"))
		os.Exit(0)
	default:
		fail(fmt.Errorf("unknown FAKECHILD mode %q", mode))
	}
}

// again returns a command that runs this program as a fake in mode.
func again(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "FAKECHILD="+mode)
	return cmd
}

func serve() {
	for _, kv := range os.Environ() {
		record("env %s", kv)
	}
	ignore := map[string]bool{}
	for _, name := range strings.Split(os.Getenv("FAKECHILD_IGNORE"), ",") {
		ignore[strings.TrimPrefix(strings.ToUpper(name), "SIG")] = true
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGINT, syscall.SIGHUP,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
	if addr := os.Getenv("FAKECHILD_ADDR"); addr != "" {
		listen(addr)
	}
	record("ready %d", os.Getpid())
	for sig := range sigs {
		name := strings.TrimPrefix(unix.SignalName(sig.(syscall.Signal)), "SIG")
		record("signal %s", name)
		switch {
		case ignore[name]:
		case name == "TERM", name == "QUIT", name == "INT", name == "WINCH":
			os.Exit(0)
		}
	}
}

func listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fail(err)
	}
	body := os.Getenv("FAKECHILD_BODY")
	if body == "" {
		body = "fake"
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, body)
	}))
}

func record(format string, args ...any) {
	path := os.Getenv("FAKECHILD_LOG")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	fmt.Fprintf(f, format+"\n", args...)
}

func duration(key string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(key))
	return d
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fakechild:", err)
	os.Exit(99)
}
