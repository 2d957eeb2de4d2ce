package lab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCleanupRemovesEverything(t *testing.T) {
	RequireRoot(t)
	var (
		id      string
		started []*exec.Cmd
	)
	t.Run("lab", func(t *testing.T) {
		l := New(t, netip.Prefix{})
		id = l.ID
		n := l.AddNode("cleanme", l.Host(11))
		l.AddNode("other", l.Host(12))
		// Left running on purpose: removing the lab must kill them.
		for _, cmd := range []*exec.Cmd{n.Command("sleep", "300"), l.Command("sleep", "300")} {
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			started = append(started, cmd)
		}
	})
	if left := leftovers(t, id); len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
	links, err := runIP("-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(links, "cleanme") {
		t.Errorf("the host has a link of the lab:\n%s", links)
	}
	for _, cmd := range started {
		waitKilled(t, cmd)
	}
}

// TestCleanupRemovesAKilledVipvisorsFiles: a vipvisor the lab kills with
// its namespace cannot remove its state file, lock file and child cgroup
// on the host; the lab does.
func TestCleanupRemovesAKilledVipvisorsFiles(t *testing.T) {
	RequireRoot(t)
	var files []string
	var cgroup string
	t.Run("lab", func(t *testing.T) {
		l := New(t, netip.Prefix{})
		n := l.AddNode("a", l.Host(11))
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(netnsDir, n.NS), &st); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("vipvisor-%d-eth0-51", st.Ino)
		os.MkdirAll("/run/vipvisor", 0o755)
		for _, ext := range []string{".json", ".lock"} {
			f := filepath.Join("/run/vipvisor", id+ext)
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
			if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err == nil {
				cgroup = filepath.Join(root, id)
				if err := os.MkdirAll(filepath.Join(cgroup, "run-1"), 0o755); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
	})
	for _, f := range append(files, cgroup) {
		if _, err := os.Stat(f); f != "" && err == nil {
			t.Errorf("%s is left after the lab was removed", f)
		}
	}
}

func TestCleanupAfterFailedSetup(t *testing.T) {
	RequireRoot(t)
	f := &fakeT{}
	var id string
	f.run(func(tb T) {
		l := New(tb, netip.Prefix{})
		id = l.ID
		l.AddNode("a", l.Host(11))
		// Take b's port name, so AddNode fails after making b's namespace.
		l.ip("-n", l.SwitchNS, "link", "add", "p-b", "type", "veth", "peer", "name", "x-b")
		l.AddNode("b", l.Host(12))
	})
	if !f.Failed() {
		t.Fatal("AddNode did not fail")
	}
	t.Logf("setup failed as planned: %v", f.msgs)
	if left := leftovers(t, id); len(left) > 0 {
		t.Errorf("namespaces left behind after a failed setup: %v", left)
	}
}

func TestNewRejectsSubnets(t *testing.T) {
	for _, s := range []string{"192.168.1.0/24", "8.8.8.0/24", "0.0.0.0/0", "fd00::/64"} {
		t.Run(s, func(t *testing.T) {
			f := &fakeT{}
			f.run(func(tb T) { New(tb, netip.MustParsePrefix(s)) })
			if !f.Failed() {
				t.Errorf("New accepted %s", s)
			}
		})
	}
}

func waitKilled(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("%v exited cleanly; want it killed", cmd.Args)
		}
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		t.Errorf("%v still runs after the lab was removed", cmd.Args)
	}
}
