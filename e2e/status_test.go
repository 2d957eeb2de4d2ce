package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

func TestStatusEndpointAndCommand(t *testing.T) {
	const addr = "127.0.0.1:9797"
	n := soloNode(t)
	env, ev := fakeEnv(t, "serve")
	v := start(t, n.Command(binary), append(baseEnv(env...), "VIPVISOR_STATUS_ADDR="+addr))
	pid := readyPID(t, ev)

	// The command, run as a user would: in a shell that has only the address.
	cmd := n.Command(binary, "status")
	cmd.Env = []string{"VIPVISOR_STATUS_ADDR=" + addr, "GORACE=atexit_sleep_ms=0"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vipvisor status: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("healthy (pid %d)", pid); !strings.Contains(string(out), want) {
		t.Errorf("vipvisor status says %q, want %q", out, want)
	}

	cmd = n.Command(binary, "status", "--json")
	cmd.Env = []string{"VIPVISOR_STATUS_ADDR=" + addr, "GORACE=atexit_sleep_ms=0"}
	out, err = cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Child struct {
			PID     int  `json:"pid"`
			Running bool `json:"running"`
			Starts  int  `json:"starts"`
		} `json:"child"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.Child.PID != pid || !st.Child.Running || st.Child.Starts != 1 {
		t.Errorf("status --json child = %+v, want pid %d running, 1 start", st.Child, pid)
	}

	if code, body := get(t, n, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d %q while the child runs", code, body)
	}
	if _, body := get(t, n, "http://"+addr+"/metrics"); !strings.Contains(body, "\nvipvisor_child_up 1\n") {
		t.Errorf("/metrics lacks vipvisor_child_up 1:\n%s", body)
	}
	v.signal(syscall.SIGTERM)
	v.wait(10 * time.Second)

	cmd = n.Command(binary, "status")
	cmd.Env = []string{"VIPVISOR_STATUS_ADDR=" + addr, "GORACE=atexit_sleep_ms=0"}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "is vipvisor running?") {
		t.Errorf("status with nothing running: err %v, output %q", err, out)
	}
}

func get(t *testing.T, n *lab.Node, url string) (int, string) {
	t.Helper()
	code, body, err := n.HTTPGet(url, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}
