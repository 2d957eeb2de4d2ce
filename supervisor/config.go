package supervisor

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/envconf"
)

// Config is the child's settings, read from VIPVISOR_* variables.
type Config struct {
	Command       envconf.Words `accept:"a command line; quotes as in a shell, no expansion" desc:"child command line when no arguments are given"`
	Foreground    string        `default:"auto" accept:"auto or asis" desc:"auto: add nginx's -g 'daemon off;' or httpd's -DFOREGROUND when missing; asis: run the command exactly as given"`
	StopSignal    Signal        `split_words:"true" default:"auto" accept:"a signal name such as QUIT, WINCH, TERM" desc:"graceful-stop signal (auto: nginx QUIT, httpd/apache2 WINCH, else TERM)"`
	StopTimeout   time.Duration `split_words:"true" default:"10s" accept:"a duration from 100ms to 1h" desc:"then SIGKILL"`
	ReloadSignal  Signal        `split_words:"true" default:"auto" accept:"a signal name such as HUP, USR1" desc:"sent to the child on SIGHUP (auto: nginx HUP, httpd/apache2 USR1, else HUP)"`
	Restarts      int           `default:"1" accept:"0-100" desc:"restarts tried before yielding the VIP"`
	RestartWindow time.Duration `split_words:"true" default:"60s" accept:"a duration from 1s to 24h" desc:"a failure this long after the previous one starts a fresh count"`
	StartTimeout  time.Duration `split_words:"true" default:"30s" accept:"a duration from 1s to 1h, longer than CHECK_INTERVAL × CHECK_RISE" desc:"a (re)started child must pass its probes within this"`
	OnYield       string        `split_words:"true" default:"retry" accept:"retry or exit" desc:"after yielding: retry with backoff and rejoin as BACKUP once healthy, or exit 3"`
}

// durationBounds are the accepted ranges of the child's durations, chosen
// so that no value can turn the policy against the service it guards:
//
//   - STOP_TIMEOUT 100ms-1h: below 100ms even a healthy nginx is killed
//     before its workers have closed their listeners, which turns every
//     planned stop and restart into a SIGKILL; an hour is already longer
//     than any service manager waits (systemd: TimeoutStopSec, 90s by
//     default).
//   - RESTART_WINDOW 1s-24h: the window in which a second failure yields;
//     under a second every crash loop looks like isolated crashes and is
//     never given up on; a day is the longest span over which two
//     failures still say something about each other.
//   - START_TIMEOUT 1s-1h: nginx starts in milliseconds, but a second
//     leaves room for a probe round or two and a cold disk; a start that
//     needs an hour is a hang. Settings also checks that it is longer than
//     CHECK_INTERVAL × CHECK_RISE, the least time a child needs to be
//     judged healthy.
var durationBounds = []struct {
	key              string
	get              func(*Config) time.Duration
	min, max         time.Duration
	minText, maxText string
}{
	{"STOP_TIMEOUT", func(c *Config) time.Duration { return c.StopTimeout }, 100 * time.Millisecond, time.Hour, "100ms", "1h"},
	{"RESTART_WINDOW", func(c *Config) time.Duration { return c.RestartWindow }, time.Second, 24 * time.Hour, "1s", "24h"},
	{"START_TIMEOUT", func(c *Config) time.Duration { return c.StartTimeout }, time.Second, time.Hour, "1s", "1h"},
}

// Validate checks ranges and names. Each error names its variable.
func (c *Config) Validate() []error {
	var errs []error
	bad := func(key, reason, accept string) { errs = append(errs, envconf.Invalid(key, reason, accept)) }
	if c.Foreground != "auto" && c.Foreground != "asis" {
		bad("FOREGROUND", "unknown mode", "auto or asis")
	}
	for _, b := range durationBounds {
		if d := b.get(c); d < b.min || d > b.max {
			bad(b.key, "out of range", fmt.Sprintf("a duration from %s to %s", b.minText, b.maxText))
		}
	}
	if c.Restarts < 0 || c.Restarts > 100 {
		bad("RESTARTS", "out of range", "0-100")
	}
	if c.OnYield != "retry" && c.OnYield != "exit" {
		bad("ON_YIELD", "unknown action", "retry or exit")
	}
	return errs
}

// Signal is a signal given by name (QUIT, SIGQUIT, quit) or number. Zero
// means "auto": chosen from the command (see Kind).
type Signal syscall.Signal

// Decode implements envconfig.Decoder.
func (s *Signal) Decode(v string) error {
	if strings.EqualFold(v, "auto") || v == "" {
		*s = 0
		return nil
	}
	var n syscall.Signal
	if num, err := envconf.Decimal(v); err == nil {
		if num < 1 || num > 64 || unix.SignalName(syscall.Signal(num)) == "" {
			return fmt.Errorf("%d is not a signal number", num)
		}
		n = syscall.Signal(num)
	} else {
		name := strings.ToUpper(v)
		if !strings.HasPrefix(name, "SIG") {
			name = "SIG" + name
		}
		if n = unix.SignalNum(name); n == 0 {
			return fmt.Errorf("%q is not a signal name", v)
		}
	}
	if n == unix.SIGKILL || n == unix.SIGSTOP {
		name := unix.SignalName(n)
		return fmt.Errorf("%s cannot be caught, so it cannot ask for a graceful action", name)
	}
	*s = Signal(n)
	return nil
}

func (s Signal) String() string {
	if s == 0 {
		return "auto"
	}
	if name := unix.SignalName(syscall.Signal(s)); name != "" {
		return strings.TrimPrefix(name, "SIG")
	}
	return strconv.Itoa(int(s))
}

// Kind is the web server a command runs, known by the program's base name.
type Kind int

// The kinds of child vipvisor knows the habits of.
const (
	Other Kind = iota
	Nginx
	Httpd
)

// KindOf tells what server argv[0] names.
func KindOf(argv0 string) Kind {
	switch filepath.Base(argv0) {
	case "nginx":
		return Nginx
	case "httpd", "apache2":
		return Httpd
	}
	return Other
}

// StopSignalFor returns the configured graceful-stop signal, or the
// server's own when it is "auto": nginx QUIT, httpd WINCH, else TERM.
func (c *Config) StopSignalFor(k Kind) syscall.Signal {
	if c.StopSignal != 0 {
		return syscall.Signal(c.StopSignal)
	}
	switch k {
	case Nginx:
		return syscall.SIGQUIT
	case Httpd:
		return syscall.SIGWINCH
	}
	return syscall.SIGTERM
}

// ReloadSignalFor returns the configured reload signal, or the server's own
// when it is "auto": nginx HUP, httpd USR1 (graceful restart), else HUP.
func (c *Config) ReloadSignalFor(k Kind) syscall.Signal {
	if c.ReloadSignal != 0 {
		return syscall.Signal(c.ReloadSignal)
	}
	if k == Httpd {
		return syscall.SIGUSR1
	}
	return syscall.SIGHUP
}

// Argv returns the command to run: args when given, else VIPVISOR_COMMAND,
// with the server's foreground switch added when Foreground is "auto".
func (c *Config) Argv(args []string) ([]string, error) {
	argv := slices.Clone(args)
	if len(argv) == 0 {
		argv = slices.Clone(c.Command)
	}
	if len(argv) == 0 {
		return nil, envconf.Invalid("COMMAND", "no child command", "a command after `vipvisor --`, or VIPVISOR_COMMAND")
	}
	if c.Foreground == "asis" {
		return argv, nil
	}
	return foreground(argv), nil
}

// foreground adds the switch that keeps nginx or httpd from daemonizing,
// unless the arguments already decide it.
func foreground(argv []string) []string {
	switch KindOf(argv[0]) {
	case Nginx:
		for i, a := range argv[1:] {
			if a == "-g" && i+2 < len(argv) && strings.Contains(argv[i+2], "daemon") {
				return argv
			}
		}
		return append(argv, "-g", "daemon off;")
	case Httpd:
		for _, a := range argv[1:] {
			if a == "-DFOREGROUND" || a == "-DNO_DETACH" {
				return argv
			}
		}
		return append(argv, "-DFOREGROUND")
	}
	return argv
}
