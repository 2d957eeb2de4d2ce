package supervisor

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestArgvAddsForegroundSwitch(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		command    []string
		foreground string
		want       []string
	}{
		{"nginx", []string{"nginx"}, nil, "auto", []string{"nginx", "-g", "daemon off;"}},
		{"nginx by path with config", []string{"/usr/sbin/nginx", "-c", "/x.conf"}, nil, "auto", []string{"/usr/sbin/nginx", "-c", "/x.conf", "-g", "daemon off;"}},
		{"nginx already told", []string{"nginx", "-g", "pid /x; daemon off;"}, nil, "auto", []string{"nginx", "-g", "pid /x; daemon off;"}},
		{"nginx -g without daemon", []string{"nginx", "-g", "pid /x;"}, nil, "auto", []string{"nginx", "-g", "pid /x;", "-g", "daemon off;"}},
		{"nginx asis", []string{"nginx"}, nil, "asis", []string{"nginx"}},
		{"httpd", []string{"httpd"}, nil, "auto", []string{"httpd", "-DFOREGROUND"}},
		{"apache2 already told", []string{"apache2", "-DFOREGROUND"}, nil, "auto", []string{"apache2", "-DFOREGROUND"}},
		{"apache2 NO_DETACH", []string{"apache2", "-DNO_DETACH"}, nil, "auto", []string{"apache2", "-DNO_DETACH"}},
		{"other program untouched", []string{"caddy", "run"}, nil, "auto", []string{"caddy", "run"}},
		{"from VIPVISOR_COMMAND", nil, []string{"nginx", "-c", "/a b.conf"}, "auto", []string{"nginx", "-c", "/a b.conf", "-g", "daemon off;"}},
		{"arguments win over VIPVISOR_COMMAND", []string{"httpd"}, []string{"nginx"}, "auto", []string{"httpd", "-DFOREGROUND"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Command: tc.command, Foreground: tc.foreground}
			got, err := c.Argv(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Argv() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestArgvWithoutCommand(t *testing.T) {
	c := Config{Foreground: "auto"}
	if _, err := c.Argv(nil); err == nil {
		t.Fatal("no command: want an error naming VIPVISOR_COMMAND")
	}
}

func TestSignalsByKind(t *testing.T) {
	for _, tc := range []struct {
		name         string
		argv0        string
		stop, reload Signal
		wantStop     syscall.Signal
		wantReload   syscall.Signal
	}{
		{"nginx", "/usr/sbin/nginx", 0, 0, syscall.SIGQUIT, syscall.SIGHUP},
		{"httpd", "httpd", 0, 0, syscall.SIGWINCH, syscall.SIGUSR1},
		{"apache2", "apache2", 0, 0, syscall.SIGWINCH, syscall.SIGUSR1},
		{"other", "caddy", 0, 0, syscall.SIGTERM, syscall.SIGHUP},
		{"configured wins", "nginx", Signal(syscall.SIGTERM), Signal(syscall.SIGUSR2), syscall.SIGTERM, syscall.SIGUSR2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{StopSignal: tc.stop, ReloadSignal: tc.reload}
			k := KindOf(tc.argv0)
			if got := c.StopSignalFor(k); got != tc.wantStop {
				t.Errorf("stop signal = %s, want %s", Signal(got), Signal(tc.wantStop))
			}
			if got := c.ReloadSignalFor(k); got != tc.wantReload {
				t.Errorf("reload signal = %s, want %s", Signal(got), Signal(tc.wantReload))
			}
		})
	}
}

func TestSignalDecode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Signal
		wantErr bool
	}{
		{"QUIT", Signal(syscall.SIGQUIT), false},
		{"SIGQUIT", Signal(syscall.SIGQUIT), false},
		{"winch", Signal(syscall.SIGWINCH), false},
		{"15", Signal(syscall.SIGTERM), false},
		{"auto", 0, false},
		{"KILL", 0, true},
		{"STOP", 0, true},
		{"FOO", 0, true},
		{"0", 0, true},
		{"99", 0, true},
		{"015", Signal(syscall.SIGTERM), false}, // decimal, not octal 13
		{"9", 0, true},                          // KILL by number
		{"19", 0, true},                         // STOP by number
		{"+15", 0, true},
		{"0xf", 0, true},
		{" 15", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var s Signal
			err := s.Decode(tc.in)
			if (err != nil) != tc.wantErr || s != tc.want {
				t.Errorf("Decode(%q) = %s, %v; want %s, error %v", tc.in, s, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestDurationBounds(t *testing.T) {
	good := Config{Foreground: "auto", StopTimeout: 10 * time.Second, Restarts: 1,
		RestartWindow: time.Minute, StartTimeout: 30 * time.Second, OnYield: "retry"}
	for _, tc := range []struct {
		key  string
		set  func(*Config, time.Duration)
		good []time.Duration
		bad  []time.Duration
	}{
		{"STOP_TIMEOUT", func(c *Config, d time.Duration) { c.StopTimeout = d },
			[]time.Duration{100 * time.Millisecond, time.Hour},
			[]time.Duration{-time.Second, 0, time.Nanosecond, 99 * time.Millisecond, time.Hour + time.Nanosecond}},
		{"RESTART_WINDOW", func(c *Config, d time.Duration) { c.RestartWindow = d },
			[]time.Duration{time.Second, 24 * time.Hour},
			[]time.Duration{0, time.Millisecond, 999 * time.Millisecond, 24*time.Hour + time.Second}},
		{"START_TIMEOUT", func(c *Config, d time.Duration) { c.StartTimeout = d },
			[]time.Duration{time.Second, time.Hour},
			[]time.Duration{-5 * time.Second, 0, 999 * time.Millisecond, 61 * time.Minute}},
	} {
		for _, d := range tc.good {
			c := good
			tc.set(&c, d)
			if errs := c.Validate(); len(errs) != 0 {
				t.Errorf("%s=%s: %v, want accepted", tc.key, d, errs)
			}
		}
		for _, d := range tc.bad {
			c := good
			tc.set(&c, d)
			errs := c.Validate()
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "VIPVISOR_"+tc.key) || !strings.Contains(errs[0].Error(), "accepted: ") {
				t.Errorf("%s=%s: %v, want one error about VIPVISOR_%s saying what is accepted", tc.key, d, errs, tc.key)
			}
		}
	}
}
