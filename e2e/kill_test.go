package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// "Nothing survives a kill": whatever kills vipvisor, within 1 s nothing
// of its child's tree is left (nginx's workers, a process that left the
// group with setsid) and its VIPs are off the interface; and what an
// earlier run could not clean up is ended before the next child starts.

// escapeeSleep is how long the setsid process of escapingNginx sleeps; it
// also marks it in the process list.
const escapeeSleep = "3017"

// startEscaping runs vipvisor on n with nginx as the child, started by a
// shell that first leaves behind a process in a session of its own, the
// way a badly written start script or module does.
func (n *node) startEscaping(prio int, extra ...string) *vipvisor {
	n.c.t.Helper()
	script := fmt.Sprintf(`setsid sleep %s & exec nginx -c %s -g 'daemon off;'`, escapeeSleep, filepath.Join(n.dir, "nginx.conf"))
	env := n.vipvisorEnv(prio, append([]string{"VIPVISOR_STOP_SIGNAL=QUIT"}, extra...)...)
	n.v = start(n.c.t, n.Command(binary, "--", "sh", "-c", script), env)
	return n.v
}

// processes describes the processes in n's namespace, one per line.
func (n *node) processes() []string {
	var out []string
	for _, pid := range n.PIDs() {
		out = append(out, fmt.Sprintf("%d %s", pid, lab.Cmdline(pid)))
	}
	return out
}

// findProcess returns the pid of the process in n whose command line
// starts with prefix.
func (n *node) findProcess(prefix string) int {
	n.c.t.Helper()
	for _, pid := range n.PIDs() {
		if strings.HasPrefix(lab.Cmdline(pid), prefix) {
			return pid
		}
	}
	n.c.t.Fatalf("%s: no process %q among:\n%s", n.Name, prefix, strings.Join(n.processes(), "\n"))
	return 0
}

// waitNothingLeft waits, at most within, until no process is left in n's
// namespace and n holds no VIP.
func (n *node) waitNothingLeft(within time.Duration, after string) {
	n.c.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if len(n.PIDs()) == 0 && !n.hasVIP() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.c.t.Fatalf("%s: %v after %s: VIP held: %v; processes left:\n%s", n.Name, within, after, n.hasVIP(), strings.Join(n.processes(), "\n"))
}

// escapingPair is a master a, whose nginx is started by a shell that first
// starts a setsid process, with b as its backup.
func escapingPair(t *testing.T) (*cluster, *node, *node) {
	c := newCluster(t)
	a, b := c.node("a", 11), c.node("b", 12)
	a.startEscaping(150)
	b.startVipvisor(100)
	c.waitServedBy(a, 10*time.Second)
	a.findProcess("sleep " + escapeeSleep)
	return c, a, b
}

func TestKill9LeavesNothing(t *testing.T) {
	c, a, b := escapingPair(t)
	a.findProcess("nginx: worker process")
	a.findProcess("vipvisor-guard")

	a.v.cmd.Process.Kill()
	<-a.v.done
	a.waitNothingLeft(time.Second, "kill -9 of vipvisor")
	c.waitServedBy(b, 5*time.Second)
	if !strings.Contains(a.v.log(), "vipvisor is gone: removed its VIPs") {
		t.Errorf("the guard did not say it removed the VIPs:\n%s", a.v.log())
	}
}

// TestAbortIsOneLineAndLeavesNothing: SIGABRT, which systemd's watchdog
// sends to a vipvisor whose loop stopped pinging, ends vipvisor with one
// line of log, not a dump of its goroutines, and leaves nothing behind.
func TestAbortIsOneLineAndLeavesNothing(t *testing.T) {
	c, a, b := escapingPair(t)

	a.v.cmd.Process.Signal(syscall.SIGABRT)
	<-a.v.done
	a.waitNothingLeft(time.Second, "SIGABRT of vipvisor")
	c.waitServedBy(b, 5*time.Second)
	if code := a.v.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d after SIGABRT, want 1", code)
	}
	log := a.v.log()
	if !strings.Contains(log, "SIGABRT: exiting at once") || strings.Contains(log, "goroutine ") {
		t.Errorf("after SIGABRT the log should say so in one line, with no goroutine dump:\n%s", log)
	}
}

func TestCleanStopLeavesNothing(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", 11)
	a.startEscaping(150)
	c.waitServedBy(a, 10*time.Second)
	a.findProcess("sleep " + escapeeSleep)
	a.stop()
	a.waitNothingLeft(time.Second, "a clean stop")
}

func TestKill9WithTheGuardThenRestartEndsLeftovers(t *testing.T) {
	c, a, b := escapingPair(t)
	worker := a.findProcess("nginx: worker process")
	escapee := a.findProcess("sleep " + escapeeSleep)

	// pkill -9 vipvisor: the guard goes too, so nothing cleans up.
	syscall.Kill(a.findProcess("vipvisor-guard"), syscall.SIGKILL)
	a.v.cmd.Process.Kill()
	<-a.v.done
	c.waitServedBy(b, 5*time.Second)
	if lab.Gone(worker) || lab.Gone(escapee) {
		t.Fatalf("the test needs leftovers: worker gone %v, setsid process gone %v", lab.Gone(worker), lab.Gone(escapee))
	}

	first := a.v
	a.startEscaping(150)
	c.waitServedBy(a, 10*time.Second)
	if !lab.Gone(worker) || !lab.Gone(escapee) {
		t.Errorf("the new run left the old one's processes: worker %d gone %v, setsid process %d gone %v", worker, lab.Gone(worker), escapee, lab.Gone(escapee))
	}
	// Held steadily: taken once, never dropped while the old worker
	// fought the new nginx for port 80.
	time.Sleep(2 * time.Second) // a window for flapping to show
	log := a.v.log()
	if n := strings.Count(log, "to=MASTER"); n != 1 {
		t.Errorf("the restarted node became master %d times, want 1:\n%s", n, log)
	}
	if strings.Contains(log, "Address already in use") || strings.Contains(log, "child exited") {
		t.Errorf("the new nginx raced the old run's leftovers:\n%s", log)
	}
	if !strings.Contains(log, "earlier run") {
		t.Errorf("the restart did not say it ended an earlier run's leftovers:\n%s\nfirst run:\n%s", log, first.log())
	}
}

func TestKill9AsPID1LeavesNothing(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", 11), c.node("b", 12)
	conf := filepath.Join(a.dir, "nginx.conf")
	a.v = start(t, a.Command("unshare", "--pid", "--fork", "--kill-child", binary, "--", "nginx", "-c", conf), a.vipvisorEnv(150))
	b.startVipvisor(100)
	c.waitServedBy(a, 10*time.Second)
	pid1 := childOf(t, a.v.cmd.Process.Pid)
	time.Sleep(1500 * time.Millisecond) // beyond the lease: renewals must hold it
	c.exactlyOneHolds(a, b)
	if log := a.v.log(); strings.Contains(log, "restoring it") || strings.Contains(log, "primary address changed") || strings.Contains(log, "lease") {
		t.Errorf("renewing the VIP's lease disturbed the master:\n%s", log)
	}

	syscall.Kill(pid1, syscall.SIGKILL)
	<-a.v.done
	// The kernel ends the PID namespace at once; the VIP's lease runs out
	// within about a second and a quarter (its lifetime is whole seconds).
	a.waitNothingLeft(1500*time.Millisecond, "kill -9 of vipvisor as PID 1")
	c.waitServedBy(b, 5*time.Second)
}

func TestSecondVipvisorForTheSameVRIDIsRefused(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", 11)
	a.startVipvisor(150)
	c.waitServedBy(a, 10*time.Second)
	nginx := a.findProcess("nginx: master process")

	// Started by mistake, with its status endpoint off so that the port
	// does not refuse it first: it must not take the first one's child
	// for leftovers.
	second := start(t, a.Command(binary, "--", "nginx", "-c", filepath.Join(a.dir, "nginx.conf")),
		append(a.vipvisorEnv(150), "VIPVISOR_STATUS_ADDR=off"))
	if code := second.wait(10 * time.Second); code != 1 {
		t.Errorf("second vipvisor exit code %d, want 1", code)
	}
	if !strings.Contains(second.log(), "another vipvisor runs for this interface and VRID") {
		t.Errorf("the second vipvisor did not say why it stopped:\n%s", second.log())
	}
	if lab.Gone(nginx) {
		t.Errorf("the second vipvisor ended the first one's nginx")
	}
	c.waitServedBy(a, time.Second)
}

func TestKilledGuardIsStartedAgain(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", 11)
	a.startEscaping(150)
	c.waitServedBy(a, 10*time.Second)
	old := a.findProcess("vipvisor-guard")
	syscall.Kill(old, syscall.SIGKILL)
	lab.WaitFor(t, 5*time.Second, "a new guard", func() bool {
		for _, pid := range a.PIDs() {
			if pid != old && strings.HasPrefix(lab.Cmdline(pid), "vipvisor-guard") {
				return true
			}
		}
		return false
	})
	// The new guard does the old one's work.
	a.v.cmd.Process.Kill()
	<-a.v.done
	a.waitNothingLeft(time.Second, "kill -9 of vipvisor with a restarted guard")
}

// TestCleanupEndsWhatAKilledRunLeft: `vipvisor _cleanup`, the systemd
// unit's ExecStopPost, does nothing while vipvisor runs, and after vipvisor
// and its guard were both killed ends their processes and removes the VIPs.
func TestCleanupEndsWhatAKilledRunLeft(t *testing.T) {
	c, a, b := escapingPair(t)
	cleanup := func() *vipvisor {
		v := start(t, a.Command(binary, "_cleanup"), a.vipvisorEnv(150))
		if code := v.wait(10 * time.Second); code != 0 {
			t.Fatalf("vipvisor _cleanup exit code %d, want 0:\n%s", code, v.log())
		}
		return v
	}
	if v := cleanup(); !strings.Contains(v.log(), "a vipvisor runs for this interface and VRID") {
		t.Errorf("_cleanup beside a running vipvisor did not say why it did nothing:\n%s", v.log())
	}
	c.exactlyOneHolds(a, b)
	worker := a.findProcess("nginx: worker process")

	syscall.Kill(a.findProcess("vipvisor-guard"), syscall.SIGKILL)
	a.v.cmd.Process.Kill()
	<-a.v.done
	if lab.Gone(worker) || !a.hasVIP() {
		t.Fatalf("the test needs leftovers: worker gone %v, VIP held %v", lab.Gone(worker), a.hasVIP())
	}
	cleanup()
	a.waitNothingLeft(time.Second, "vipvisor _cleanup")
	c.waitServedBy(b, 5*time.Second)
}
