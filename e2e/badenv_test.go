package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// badEnvRows are values that must never pass: each makes both `vipvisor
// check` and a real start exit 2 naming its variable. own stands for the
// node's own address, filled in by the test.
var badEnvRows = []struct{ key, value string }{
	// Numbers are decimal, and only decimal.
	{"VRID", "0x33"},
	{"VRID", "0o63"},
	{"VRID", "1_0"},
	{"VRID", "+51"},
	{"VRID", " 51"},
	{"VRID", ""},
	{"VRID", "99999999999999999999"},
	{"PRIORITY", "0x64"},
	{"PRIORITY", "-100"},
	{"GARP_REPEAT", "0b101"},
	{"CHECK_FALL", "+2"},
	// Durations within bounds.
	{"GARP_REFRESH", "1ns"},
	{"GARP_REFRESH", "1ms"},
	{"CHECK_INTERVAL", "10ms"},
	{"CHECK_TIMEOUT", "1ms"},
	{"CHECK_TIMEOUT", "5s"},
	{"START_TIMEOUT", "100ms"},
	{"STOP_TIMEOUT", "1ns"},
	{"RESTART_WINDOW", "1ms"},
	// The status endpoint's address.
	{"STATUS_ADDR", "127.0.0.1:99999"},
	{"STATUS_ADDR", "999.1.1.1:80"},
	{"STATUS_ADDR", "127.0.0.1:0"},
	{"STATUS_ADDR", "no-such-host.invalid:9797"},
	{"STATUS_ADDR", "10.200.0.1:9797"}, // on no interface of the node
	// The interface and the addresses that depend on it.
	{"INTERFACE", "nosuch0"},
	{"UNICAST_PEERS", "own"},
	{"UNICAST_PEERS", "10.99.0.100"}, // the VIP
	{"UNICAST_PEERS", "224.0.0.18"},
	{"TRACK_GATEWAY", "own"},
	{"TRACK_GATEWAY", "10.99.0.100"},
	// Command lines that do not split.
	{"COMMAND", `nginx -c "/etc/nginx`},
	{"CHECK_EXEC", `test -f 'x`},
}

// TestBadEnvExits2AndTouchesNothing runs the built binary in a lab node
// with each bad value, as `vipvisor check` and as a real start whose child
// would be a fake server that logs its start. Both must exit 2 naming the
// variable and what is accepted; the start must leave the node as it was:
// no child started, no VIP or other address added on eth0, no process
// left in the namespace.
func TestBadEnvExits2AndTouchesNothing(t *testing.T) {
	n := soloNode(t)
	before := n.Addrs()
	own := n.Addr.Addr().String()

	// The control: with no bad value the same environment starts the child,
	// so the rows below fail for their value and nothing else.
	good, ev := fakeEnv(t, "serve")
	v := start(t, n.Command(binary), baseEnv(good...))
	readyPID(t, ev)
	v.signal(syscall.SIGTERM)
	if code := v.wait(10 * time.Second); code != 0 {
		t.Fatalf("control run: exit %d, want 0", code)
	}

	for _, row := range badEnvRows {
		value := row.value
		if value == "own" {
			value = own
		}
		t.Run(row.key+"="+value, func(t *testing.T) {
			env, ev := fakeEnv(t, "serve")
			env = baseEnv(append(env, "VIPVISOR_"+row.key+"="+value)...)
			env = lastWins(env)

			out, code := runIn(t, n, env, "check")
			assertConfigError(t, "check", code, out, row.key)
			if strings.Contains(out, "# VRRP") {
				t.Errorf("check printed the settings despite the error:\n%s", out)
			}

			out, code = runIn(t, n, env)
			assertConfigError(t, "start", code, out, row.key)
			if _, err := os.Stat(ev.path); !os.IsNotExist(err) {
				t.Errorf("the child was started despite VIPVISOR_%s=%q", row.key, value)
			}
			if after := n.Addrs(); !slices.Equal(after, before) {
				t.Errorf("eth0 changed: before %v, after %v", before, after)
			}
			if left := nsPIDs(t, n); len(left) > 0 {
				t.Errorf("processes left in the node: %v", left)
			}
		})
	}
}

// TestBadEnvLeadingZerosAreDecimal checks the other half of the decimal
// rule on the built binary: 051 is 51, not octal 41, and 0100 is 100.
func TestBadEnvLeadingZerosAreDecimal(t *testing.T) {
	n := soloNode(t)
	out, code := runIn(t, n, lastWins(baseEnv("VIPVISOR_VRID=051", "VIPVISOR_PRIORITY=0100", "VIPVISOR_GARP_REPEAT=010")), "check")
	if code != 0 {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	for _, want := range []string{"\nVIPVISOR_VRID=51\n", "\nVIPVISOR_PRIORITY=100\n", "\nVIPVISOR_GARP_REPEAT=10\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", strings.TrimSpace(want), out)
		}
	}
}

// runIn runs the binary with args in n's namespace and returns its
// combined output and exit code; the bound only guards a hang.
func runIn(t *testing.T, n *lab.Node, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := n.Command(binary, args...)
	cmd.Env = env
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("vipvisor %s still running after 20s:\n%s", strings.Join(args, " "), out)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("vipvisor %s: %v", strings.Join(args, " "), err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// assertConfigError checks exit code 2 and a message that names the
// variable and says what is accepted.
func assertConfigError(t *testing.T, what string, code int, out, key string) {
	t.Helper()
	if code != 2 {
		t.Errorf("%s: exit %d, want 2\n%s", what, code, out)
	}
	name := "VIPVISOR_" + key
	if !strings.Contains(out, "vipvisor: "+name+"=") && !strings.Contains(out, "vipvisor: "+name+":") {
		t.Errorf("%s: output does not name %s:\n%s", what, name, out)
	}
	if !strings.Contains(out, "accepted: ") {
		t.Errorf("%s: output does not say what is accepted:\n%s", what, out)
	}
}

// lastWins keeps only the last setting of each variable, so a row can
// override baseEnv's.
func lastWins(env []string) []string {
	seen := map[string]bool{}
	var out []string
	for i := len(env) - 1; i >= 0; i-- {
		name, _, _ := strings.Cut(env[i], "=")
		if !seen[name] {
			seen[name] = true
			out = append(out, env[i])
		}
	}
	slices.Reverse(out)
	return out
}

// nsPIDs lists the processes in n's namespace other than this test's own.
func nsPIDs(t *testing.T, n *lab.Node) []string {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err != nil {
		ip = "/usr/sbin/ip" // a non-login root shell may lack sbin in PATH
	}
	out, err := exec.Command(ip, "netns", "pids", n.NS).Output()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v", n.NS, err)
	}
	var pids []string
	for _, p := range strings.Fields(string(out)) {
		if p != fmt.Sprint(os.Getpid()) {
			pids = append(pids, p)
		}
	}
	return pids
}
