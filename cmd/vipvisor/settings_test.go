package main

import (
	"bytes"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
	"github.com/vipvisor/vipvisor/probes"
	"github.com/vipvisor/vipvisor/supervisor"
	"github.com/vipvisor/vipvisor/vrrp"
)

// contractVariables is every variable the user-facing contract names.
var contractVariables = []string{
	"INTERFACE", "VRID", "VIPS", "PRIORITY", "VERSION", "ADVERT_INTERVAL",
	"PREEMPT", "PREEMPT_DELAY", "UNICAST_PEERS", "MCAST_GROUP", "AUTH_PASS",
	"GARP_REPEAT", "GARP_REFRESH", "NOTIFY", "TRACK_GATEWAY",
	"COMMAND", "STOP_SIGNAL", "STOP_TIMEOUT", "RELOAD_SIGNAL", "RESTARTS",
	"RESTART_WINDOW", "START_TIMEOUT", "ON_YIELD",
	"CHECK_TCP", "CHECK_HTTP", "CHECK_HTTP_STATUS", "CHECK_HTTP_BODY",
	"CHECK_EXEC", "CHECK_INTERVAL", "CHECK_TIMEOUT", "CHECK_FALL", "CHECK_RISE",
	"STATUS_ADDR", "LOG_FORMAT", "LOG_LEVEL", "INSTANCES", "LISTEN",
}

// setEnv clears every VIPVISOR_* variable of the test process, then sets
// the minimal valid environment and the given overrides ("" unsets).
func setEnv(t *testing.T, over map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "VIPVISOR_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	// lo is the one interface every network namespace has.
	base := map[string]string{"INTERFACE": "lo", "VRID": "51", "VIPS": "10.0.0.100"}
	for k, v := range over {
		base[k] = v
	}
	for k, v := range base {
		if v == unset {
			continue
		}
		t.Setenv("VIPVISOR_"+k, v)
	}
}

// unset marks a variable the row wants absent.
const unset = "\x00unset"

func TestDefaults(t *testing.T) {
	setEnv(t, nil)
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{
		VRRP: vrrp.Config{
			Interface: "lo", VRID: 51, VIPS: vrrp.VIPList{netip.MustParsePrefix("10.0.0.100/32")},
			Priority: 100, Version: 3, AdvertInterval: time.Second, Preempt: true,
			McastGroup: netip.MustParseAddr("224.0.0.18"), GARPRepeat: 5,
		},
		Child: supervisor.Config{
			Foreground: "auto", StopTimeout: 10 * time.Second, Restarts: 1,
			RestartWindow: time.Minute, StartTimeout: 30 * time.Second, OnYield: "retry",
		},
		Probes: probes.Config{
			CheckHTTPStatus: probes.StatusSet{{Lo: 200, Hi: 399}},
			CheckInterval:   time.Second, CheckTimeout: time.Second, CheckFall: 2, CheckRise: 1,
		},
		Ops: Ops{StatusAddr: "127.0.0.1:9797", LogFormat: "text", LogLevel: "info", listen: true},
	}
	if !reflect.DeepEqual(*s, want) {
		t.Errorf("defaults:\n-want %+v\n+got  %+v", want, *s)
	}
}

func TestGoodValues(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		check func(s *Settings) bool
	}{
		{"VIPS with prefixes and blanks", map[string]string{"VIPS": "10.0.0.100/24, 10.0.0.101"},
			func(s *Settings) bool { return s.VRRP.VIPS.String() == "10.0.0.100/24,10.0.0.101/32" }},
		{"VRID lowest", map[string]string{"VRID": "1"}, func(s *Settings) bool { return s.VRRP.VRID == 1 }},
		{"VRID highest", map[string]string{"VRID": "255"}, func(s *Settings) bool { return s.VRRP.VRID == 255 }},
		{"PRIORITY owner", map[string]string{"PRIORITY": "255"}, func(s *Settings) bool { return s.VRRP.Priority == 255 }},
		{"v2 with password", map[string]string{"VERSION": "2", "ADVERT_INTERVAL": "3s", "AUTH_PASS": "secret12"},
			func(s *Settings) bool { return s.VRRP.Version == 2 && s.VRRP.AuthPass == "secret12" }},
		{"v3 at 100ms", map[string]string{"ADVERT_INTERVAL": "100ms"}, func(s *Settings) bool { return s.VRRP.AdvertInterval == 100*time.Millisecond }},
		{"v3 at 40.95s", map[string]string{"ADVERT_INTERVAL": "40.95s"}, func(s *Settings) bool { return s.VRRP.AdvertInterval == 40950*time.Millisecond }},
		{"PREEMPT off with delay", map[string]string{"PREEMPT": "false", "PREEMPT_DELAY": "30s"},
			func(s *Settings) bool { return !s.VRRP.Preempt && s.VRRP.PreemptDelay == 30*time.Second }},
		{"UNICAST_PEERS", map[string]string{"UNICAST_PEERS": "10.0.0.2, 10.0.0.3"},
			func(s *Settings) bool { return s.VRRP.UnicastPeers.String() == "10.0.0.2,10.0.0.3" && s.VRRP.Unicast() }},
		{"MCAST_GROUP", map[string]string{"MCAST_GROUP": "224.0.0.19"}, func(s *Settings) bool { return s.VRRP.McastGroup.String() == "224.0.0.19" }},
		{"GARP", map[string]string{"GARP_REPEAT": "0", "GARP_REFRESH": "60s"},
			func(s *Settings) bool { return s.VRRP.GARPRepeat == 0 && s.VRRP.GARPRefresh == time.Minute }},
		{"NOTIFY with quotes", map[string]string{"NOTIFY": `/usr/local/bin/notify.sh --tag 'web a'`},
			func(s *Settings) bool {
				return reflect.DeepEqual([]string(s.VRRP.Notify), []string{"/usr/local/bin/notify.sh", "--tag", "web a"})
			}},
		{"COMMAND with quotes", map[string]string{"COMMAND": `nginx -c "/etc/my nginx.conf"`},
			func(s *Settings) bool {
				return reflect.DeepEqual([]string(s.Child.Command), []string{"nginx", "-c", "/etc/my nginx.conf"})
			}},
		{"child settings", map[string]string{"FOREGROUND": "asis", "STOP_SIGNAL": "QUIT", "STOP_TIMEOUT": "2s", "RELOAD_SIGNAL": "usr1",
			"RESTARTS": "0", "RESTART_WINDOW": "5m", "START_TIMEOUT": "10s", "ON_YIELD": "exit"},
			func(s *Settings) bool {
				c := s.Child
				return c.Foreground == "asis" && c.StopSignal.String() == "QUIT" && c.StopTimeout == 2*time.Second &&
					c.ReloadSignal.String() == "USR1" && c.Restarts == 0 && c.RestartWindow == 5*time.Minute &&
					c.StartTimeout == 10*time.Second && c.OnYield == "exit"
			}},
		{"probe settings", map[string]string{"CHECK_TCP": "127.0.0.1:80", "CHECK_HTTP": "http://127.0.0.1/health",
			"CHECK_HTTP_STATUS": "200,204,300-399", "CHECK_HTTP_BODY": "ok", "CHECK_EXEC": "test -f /run/ok",
			"CHECK_INTERVAL": "500ms", "CHECK_TIMEOUT": "200ms", "CHECK_FALL": "3", "CHECK_RISE": "2", "TRACK_GATEWAY": "10.0.0.1"},
			func(s *Settings) bool {
				p := s.Probes
				return p.CheckTCP == "127.0.0.1:80" && p.CheckHTTP == "http://127.0.0.1/health" &&
					p.CheckHTTPStatus.String() == "200,204,300-399" && p.CheckHTTPStatus.Contains(204) && !p.CheckHTTPStatus.Contains(201) &&
					p.CheckHTTPBody == "ok" && len(p.CheckExec) == 3 && p.CheckInterval == 500*time.Millisecond &&
					p.CheckTimeout == 200*time.Millisecond && p.CheckFall == 3 && p.CheckRise == 2 &&
					p.TrackGateway == netip.MustParseAddr("10.0.0.1") && p.Any()
			}},
		{"status off, json debug logs", map[string]string{"STATUS_ADDR": "off", "LOG_FORMAT": "json", "LOG_LEVEL": "debug"},
			func(s *Settings) bool {
				return s.Ops.StatusAddr == "off" && s.Ops.LogFormat == "json" && s.Ops.LogLevel == "debug"
			}},
		{"status on all addresses", map[string]string{"STATUS_ADDR": ":9797"}, func(s *Settings) bool { return s.Ops.StatusAddr == ":9797" }},
		{"status on 0.0.0.0", map[string]string{"STATUS_ADDR": "0.0.0.0:9797"}, func(s *Settings) bool { return s.Ops.StatusAddr == "0.0.0.0:9797" }},
		{"status on localhost", map[string]string{"STATUS_ADDR": "localhost:9797"}, func(s *Settings) bool { return s.Ops.StatusAddr == "localhost:9797" }},
		{"status on 127.0.0.2, a loopback address", map[string]string{"STATUS_ADDR": "127.0.0.2:65535"}, func(s *Settings) bool { return s.Ops.StatusAddr == "127.0.0.2:65535" }},
		{"VRID with a leading zero is decimal", map[string]string{"VRID": "051"}, func(s *Settings) bool { return s.VRRP.VRID == 51 }},
		{"PRIORITY with leading zeros is decimal", map[string]string{"PRIORITY": "0100"}, func(s *Settings) bool { return s.VRRP.Priority == 100 }},
		{"GARP_REPEAT 010 is ten", map[string]string{"GARP_REPEAT": "010"}, func(s *Settings) bool { return s.VRRP.GARPRepeat == 10 }},
		{"CHECK_FALL 08, not octal", map[string]string{"CHECK_FALL": "08"}, func(s *Settings) bool { return s.Probes.CheckFall == 8 }},
		{"GARP_REFRESH lowest", map[string]string{"GARP_REFRESH": "1s"}, func(s *Settings) bool { return s.VRRP.GARPRefresh == time.Second }},
		{"GARP_REFRESH highest", map[string]string{"GARP_REFRESH": "24h"}, func(s *Settings) bool { return s.VRRP.GARPRefresh == 24*time.Hour }},
		{"duration bounds, lowest", map[string]string{"CHECK_INTERVAL": "100ms", "CHECK_TIMEOUT": "10ms", "STOP_TIMEOUT": "100ms",
			"START_TIMEOUT": "1s", "RESTART_WINDOW": "1s"},
			func(s *Settings) bool {
				return s.Probes.CheckInterval == 100*time.Millisecond && s.Probes.CheckTimeout == 10*time.Millisecond &&
					s.Child.StopTimeout == 100*time.Millisecond && s.Child.StartTimeout == time.Second && s.Child.RestartWindow == time.Second
			}},
		{"duration bounds, highest", map[string]string{"CHECK_INTERVAL": "1h", "CHECK_TIMEOUT": "1h", "STOP_TIMEOUT": "1h",
			"START_TIMEOUT": "1h", "RESTART_WINDOW": "24h", "PREEMPT_DELAY": "1h"},
			func(s *Settings) bool {
				return s.Probes.CheckInterval == time.Hour && s.Probes.CheckTimeout == time.Hour && s.Child.StopTimeout == time.Hour &&
					s.Child.StartTimeout == time.Hour && s.Child.RestartWindow == 24*time.Hour && s.VRRP.PreemptDelay == time.Hour
			}},
		{"CHECK_TIMEOUT unset follows a shorter CHECK_INTERVAL", map[string]string{"CHECK_INTERVAL": "500ms"},
			func(s *Settings) bool { return s.Probes.CheckTimeout == 500*time.Millisecond }},
		{"CHECK_TIMEOUT unset stays 1s under a longer CHECK_INTERVAL", map[string]string{"CHECK_INTERVAL": "5s"},
			func(s *Settings) bool { return s.Probes.CheckTimeout == time.Second }},
		{"STOP_SIGNAL by number", map[string]string{"STOP_SIGNAL": "15"}, func(s *Settings) bool { return s.Child.StopSignal.String() == "TERM" }},
		{"COMMAND keeps a backslash inside double quotes", map[string]string{"COMMAND": `grep -q "a\.b" /f`},
			func(s *Settings) bool {
				return reflect.DeepEqual([]string(s.Child.Command), []string{"grep", "-q", `a\.b`, "/f"})
			}},
		{"CHECK_EXEC keeps a backslash inside double quotes", map[string]string{"CHECK_EXEC": `sh -c "test \"$(cat /f)\" = ok\.1"`},
			func(s *Settings) bool {
				return reflect.DeepEqual([]string(s.Probes.CheckExec), []string{"sh", "-c", `test "$(cat /f)" = ok\.1`})
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.env)
			s, err := loadSettings()
			if err != nil {
				t.Fatalf("unexpected error:\n%v", err)
			}
			if !tc.check(s) {
				t.Errorf("settings not as set: %+v", *s)
			}
		})
	}
}

func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		env        map[string]string // more variables the row needs
	}{
		{"INTERFACE", unset, nil},
		{"INTERFACE", "", nil},
		{"INTERFACE", "a-very-long-interface", nil},
		{"INTERFACE", "eth0/1", nil},
		{"VRID", unset, nil},
		{"VRID", "0", nil},
		{"VRID", "256", nil},
		{"VRID", "abc", nil},
		{"VIPS", unset, nil},
		{"VIPS", "", nil},
		{"VIPS", "10.0.0.1/33", nil},
		{"VIPS", "fe80::1", nil},
		{"VIPS", "224.0.0.5", nil},
		{"VIPS", "0.0.0.0", nil},
		{"VIPS", "10.0.0.1,10.0.0.1/24", nil},
		{"VIPS", "10.0.0.300", nil},
		{"PRIORITY", "0", nil},
		{"PRIORITY", "256", nil},
		{"VERSION", "4", nil},
		{"ADVERT_INTERVAL", "1500ms", map[string]string{"VERSION": "2"}},
		{"ADVERT_INTERVAL", "256s", map[string]string{"VERSION": "2"}},
		{"ADVERT_INTERVAL", "0s", nil},
		{"ADVERT_INTERVAL", "15ms", nil},
		{"ADVERT_INTERVAL", "41s", nil},
		{"ADVERT_INTERVAL", "1", nil},
		{"PREEMPT", "yes", nil},
		{"PREEMPT_DELAY", "-1s", nil},
		{"UNICAST_PEERS", "10.0.0.2,bogus", nil},
		{"UNICAST_PEERS", "224.0.0.18", nil},
		{"UNICAST_PEERS", "10.0.0.2,10.0.0.2", nil},
		{"MCAST_GROUP", "10.0.0.1", nil},
		{"MCAST_GROUP", "bogus", nil},
		{"AUTH_PASS", "123456789", map[string]string{"VERSION": "2"}},
		{"AUTH_PASS", "secret", nil},
		{"GARP_REPEAT", "-1", nil},
		{"GARP_REPEAT", "256", nil},
		{"GARP_REFRESH", "-1s", nil},
		{"NOTIFY", "notify 'unterminated", nil},
		{"TRACK_GATEWAY", "ff02::1", nil},
		{"TRACK_GATEWAY", "::", nil},
		{"TRACK_GATEWAY", "::1", nil},
		{"TRACK_GATEWAY", "bogus", nil},
		{"COMMAND", `nginx -c "/x`, nil},
		{"FOREGROUND", "no", nil},
		{"STOP_SIGNAL", "KILL", nil},
		{"STOP_SIGNAL", "FOO", nil},
		{"STOP_TIMEOUT", "0s", nil},
		{"RELOAD_SIGNAL", "BOGUS", nil},
		{"RESTARTS", "-1", nil},
		{"RESTART_WINDOW", "0s", nil},
		{"START_TIMEOUT", "-5s", nil},
		{"ON_YIELD", "die", nil},
		{"CHECK_TCP", "localhost", nil},
		{"CHECK_TCP", ":80", nil},
		{"CHECK_TCP", "127.0.0.1:99999", nil},
		{"CHECK_HTTP", "ftp://127.0.0.1/", nil},
		{"CHECK_HTTP", "http://", nil},
		{"CHECK_HTTP", "http://127.0.0.1:0/", nil},
		{"CHECK_HTTP_STATUS", "abc", nil},
		{"CHECK_HTTP_STATUS", "600", nil},
		{"CHECK_HTTP_STATUS", "300-200", nil},
		{"CHECK_HTTP_BODY", "ok", nil},
		{"CHECK_EXEC", "check 'x", nil},
		{"CHECK_INTERVAL", "0s", nil},
		{"CHECK_INTERVAL", "5ms", nil},
		{"CHECK_TIMEOUT", "0s", nil},
		{"CHECK_FALL", "0", nil},
		{"CHECK_RISE", "0", nil},
		{"STATUS_ADDR", "nonsense", nil},
		{"LOG_FORMAT", "xml", nil},
		{"LOG_LEVEL", "loud", nil},

		// Numbers are decimal: no base prefixes, signs, separators or
		// blanks, and nothing out of range however it is written.
		{"VRID", "0x33", nil},
		{"VRID", "0X33", nil},
		{"VRID", "0o63", nil},
		{"VRID", "0b110011", nil},
		{"VRID", "5_1", nil},
		{"VRID", "+51", nil},
		{"VRID", " 51", nil},
		{"VRID", "51 ", nil},
		{"VRID", "5 1", nil},
		{"VRID", "", nil},
		{"VRID", "-51", nil},
		{"VRID", "51.0", nil},
		{"VRID", "99999999999999999999", nil},
		{"VRID", "0256", nil},
		{"PRIORITY", "0x64", nil},
		{"PRIORITY", "+100", nil},
		{"PRIORITY", "1e2", nil},
		{"PRIORITY", "-100", nil},
		{"PRIORITY", "", nil},
		{"VERSION", "+3", nil},
		{"VERSION", "0x3", nil},
		{"GARP_REPEAT", "0x5", nil},
		{"GARP_REPEAT", "1_0", nil},
		{"RESTARTS", "+1", nil},
		{"RESTARTS", "0b1", nil},
		{"RESTARTS", "101", nil},
		{"CHECK_FALL", "+2", nil},
		{"CHECK_FALL", "9223372036854775808", nil},
		{"CHECK_RISE", "0x1", nil},
		{"CHECK_RISE", "-1", nil},
		{"STOP_SIGNAL", "9", nil},
		{"STOP_SIGNAL", "+15", nil},
		{"CHECK_TCP", "127.0.0.1:+80", nil},
		{"CHECK_HTTP_STATUS", "+200", nil},

		// Durations have bounds that keep a typo from hurting the service.
		{"GARP_REFRESH", "1ns", nil},
		{"GARP_REFRESH", "1ms", nil},
		{"GARP_REFRESH", "999ms", nil},
		{"GARP_REFRESH", "25h", nil},
		{"GARP_REFRESH", "1", nil},
		{"PREEMPT_DELAY", "61m", nil},
		{"CHECK_INTERVAL", "99ms", nil},
		{"CHECK_INTERVAL", "1ns", nil},
		{"CHECK_INTERVAL", "61m", nil},
		{"CHECK_TIMEOUT", "9ms", nil},
		{"CHECK_TIMEOUT", "1ns", nil},
		{"CHECK_TIMEOUT", "2s", nil},
		{"CHECK_TIMEOUT", "500ms", map[string]string{"CHECK_INTERVAL": "200ms"}},
		{"STOP_TIMEOUT", "1ns", nil},
		{"STOP_TIMEOUT", "99ms", nil},
		{"STOP_TIMEOUT", "61m", nil},
		{"START_TIMEOUT", "1ns", nil},
		{"START_TIMEOUT", "999ms", nil},
		{"START_TIMEOUT", "61m", nil},
		{"START_TIMEOUT", "2s", map[string]string{"CHECK_HTTP": "http://127.0.0.1/", "CHECK_INTERVAL": "1s", "CHECK_RISE": "2"}},
		{"RESTART_WINDOW", "1ms", nil},
		{"RESTART_WINDOW", "999ms", nil},
		{"RESTART_WINDOW", "25h", nil},

		// Addresses and names the host does not have.
		{"STATUS_ADDR", "127.0.0.1:99999", nil},
		{"STATUS_ADDR", "127.0.0.1:65536", nil},
		{"STATUS_ADDR", "127.0.0.1:0", nil},
		{"STATUS_ADDR", ":0", nil},
		{"STATUS_ADDR", "127.0.0.1:", nil},
		{"STATUS_ADDR", "127.0.0.1:http", nil},
		{"STATUS_ADDR", "127.0.0.1:+9797", nil},
		{"STATUS_ADDR", "127.0.0.1:0x2645", nil},
		{"STATUS_ADDR", "127.0.0.1", nil},
		{"STATUS_ADDR", "999.1.1.1:80", nil},
		{"STATUS_ADDR", "1.2.3:80", nil},
		{"STATUS_ADDR", "[::1::]:80", nil},
		{"STATUS_ADDR", "no-such-host.invalid:9797", nil},
		{"STATUS_ADDR", "192.0.2.123:9797", nil}, // TEST-NET-1: on no interface
		{"STATUS_ADDR", "", nil},
		{"INTERFACE", "nosuch0", nil},
		{"UNICAST_PEERS", "10.0.0.100", nil}, // one of the VIPs
		{"UNICAST_PEERS", "10.0.0.2,10.0.0.100", nil},
		{"TRACK_GATEWAY", "10.0.0.100", nil}, // one of the VIPs
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			if tc.value == "192.0.2.123:9797" && nonlocalBind(netip.MustParseAddr("192.0.2.123")) {
				lab.Skip(t, "net.ipv4.ip_nonlocal_bind=1: any address can be bound here")
			}
			env := map[string]string{tc.key: tc.value}
			for k, v := range tc.env {
				env[k] = v
			}
			setEnv(t, env)
			var out, errb bytes.Buffer
			if code := exitCode(dispatch([]string{"check"}, &out), &errb); code != exitConfig {
				t.Errorf("check: exit %d, want %d", code, exitConfig)
			}
			lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "vipvisor: VIPVISOR_"+tc.key+"=") && !strings.HasPrefix(lines[0], "vipvisor: VIPVISOR_"+tc.key+":") {
				t.Errorf("want one line about VIPVISOR_%s, got:\n%s", tc.key, errb.String())
			}
			if !strings.Contains(errb.String(), "accepted: ") {
				t.Errorf("message does not say what is accepted: %s", errb.String())
			}
			if out.Len() > 0 {
				t.Errorf("check printed settings despite the error:\n%s", out.String())
			}
		})
	}
}

// TestStatusAddrOfAnotherNode checks that `vipvisor status` may ask a
// vipvisor elsewhere, while a start or `check` may only listen on an
// address of this node.
func TestStatusAddrOfAnotherNode(t *testing.T) {
	const other = "192.0.2.123:9797" // TEST-NET-1: on no interface here
	if nonlocalBind(netip.MustParseAddr("192.0.2.123")) {
		lab.Skip(t, "net.ipv4.ip_nonlocal_bind=1: any address can be bound here")
	}
	setEnv(t, map[string]string{"STATUS_ADDR": other})
	o := Ops{StatusAddr: other, LogFormat: "text", LogLevel: "info"}
	if errs := o.Validate(); len(errs) != 0 {
		t.Errorf("to connect to %s: %v, want accepted", other, errs)
	}
	o.listen = true
	if errs := o.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "not an address of this node") {
		t.Errorf("to listen on %s: %v, want one error saying it is not this node's", other, errs)
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	setEnv(t, map[string]string{"VRID": "300", "VIPS": unset, "PRIORITY": "x", "CHECK_FALL": "0"})
	t.Setenv("VIPVISOR_PRIORITTY", "5")
	_, err := loadSettings()
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		`VIPVISOR_VRID="300": out of range; accepted: 1-255`,
		`VIPVISOR_VIPS: required but not set; accepted: comma list of IPv4 or of IPv6 addresses, each with optional /prefix`,
		`VIPVISOR_PRIORITY="x": not a decimal number (digits 0-9 only: no blanks, +, 0x, 0o, 0b or _); accepted: 1-254, or 255 for the address owner`,
		`VIPVISOR_CHECK_FALL="0": out of range; accepted: 1-100`,
		"VIPVISOR_PRIORITTY: unknown variable (see `vipvisor help` for the list)",
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("(-want +got):\n-%s\n+%s", strings.Join(want, "\n-"), strings.Join(got, "\n+"))
	}
}

func TestUnprefixedVariablesAreIgnored(t *testing.T) {
	setEnv(t, nil)
	t.Setenv("PRIORITY", "5")
	t.Setenv("INTERFACE", "eth0")
	t.Setenv("VRID", "7")
	t.Setenv("CHECK_HTTP", "http://example.invalid/")
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	if s.VRRP.Priority != 100 || s.VRRP.Interface != "lo" || s.VRRP.VRID != 51 || s.Probes.CheckHTTP != "" {
		t.Errorf("an unprefixed variable was read: %+v %+v", s.VRRP, s.Probes)
	}
}

func TestCheckExitCodes(t *testing.T) {
	setEnv(t, map[string]string{"VRID": "300"})
	var out, errb bytes.Buffer
	if code := exitCode(dispatch([]string{"check"}, &out), &errb); code != exitConfig {
		t.Errorf("check with VRID=300: exit %d, want %d", code, exitConfig)
	}
	if !strings.Contains(errb.String(), "VIPVISOR_VRID") {
		t.Errorf("stderr does not name VIPVISOR_VRID: %q", errb.String())
	}

	setEnv(t, map[string]string{"COMMAND": "nginx -c /etc/nginx/nginx.conf"})
	out.Reset()
	errb.Reset()
	if code := exitCode(dispatch([]string{"check"}, &out), &errb); code != exitOK {
		t.Fatalf("check with a good environment: exit %d, stderr %q", code, errb.String())
	}
	for _, want := range []string{"VIPVISOR_VRID=51\n", "VIPVISOR_STOP_TIMEOUT=10s\n", "VIPVISOR_RESTART_WINDOW=1m\n",
		"# command: nginx -c /etc/nginx/nginx.conf -g 'daemon off;'", "stop signal: QUIT, reload signal: HUP"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if err := help(&out); err != nil {
		t.Fatal(err)
	}
	for _, name := range contractVariables {
		if !strings.Contains(out.String(), "VIPVISOR_"+name+" ") {
			t.Errorf("help does not list VIPVISOR_%s", name)
		}
	}
	// Every variable the settings read is in the help, and none else.
	setEnv(t, nil)
	var printed bytes.Buffer
	if err := check(nil, &printed); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(printed.String(), "\n") {
		if name, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") &&
			!strings.Contains(out.String(), name+" ") {
			t.Errorf("%s is read but not in help", name)
		}
	}
}
