package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notification is one datagram vipvisor sent to NOTIFY_SOCKET.
type notification struct {
	at  time.Time
	msg string
}

// listenNotify plays systemd's part: a unixgram socket in a temp dir,
// collecting every datagram until the test ends.
func listenNotify(t *testing.T) (path string, got <-chan notification) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan notification, 1024)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- notification{time.Now(), string(buf[:n])}
		}
	}()
	return path, ch
}

// next returns the next notification that is neither a watchdog ping nor
// a lone STATUS= line, collecting those on the way; the bound only guards
// a hang.
func next(t *testing.T, ch <-chan notification, pings *[]time.Time, statuses *[]string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n := <-ch:
			switch {
			case n.msg == "WATCHDOG=1":
				*pings = append(*pings, n.at)
				continue
			case strings.HasPrefix(n.msg, "STATUS="):
				*statuses = append(*statuses, n.msg)
				continue
			}
			return n.msg
		case <-timeout:
			t.Fatal("no notification")
		}
	}
}

func TestSystemdNotifications(t *testing.T) {
	sock, got := listenNotify(t)
	env, ev := fakeEnv(t, "serve")
	env = append(baseEnv(env...), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	v := start(t, soloNode(t).Command(binary), env)
	ev.waitFor(t, "ready ")

	var pings []time.Time
	var statuses []string
	expect := func(prefix string) {
		t.Helper()
		if msg := next(t, got, &pings, &statuses); !strings.HasPrefix(msg, prefix) {
			t.Fatalf("got %q, want %q next", msg, prefix)
		}
	}
	expect("READY=1\nSTATUS=")
	// Let the watchdog tick a while: at WATCHDOG_USEC=200ms the loop pings
	// every 100ms.
	time.Sleep(time.Second)
	v.signal(syscall.SIGHUP)
	expect("RELOADING=1\nMONOTONIC_USEC=")
	expect("READY=1\nSTATUS=")
	ev.waitFor(t, "signal HUP")
	v.signal(syscall.SIGTERM)
	expect("STOPPING=1")
	if code := v.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}

	if len(statuses) == 0 || !strings.Contains(strings.Join(statuses, " "), "(pid ") {
		t.Errorf("STATUS lines %q: want the child's state", statuses)
	}
	if len(pings) < 5 {
		t.Fatalf("%d watchdog pings in over a second, want about 10", len(pings))
	}
	for i := 1; i < len(pings); i++ {
		// Cadence: half of WATCHDOG_USEC, with slack for a loaded machine.
		if gap := pings[i].Sub(pings[i-1]); gap < 50*time.Millisecond || gap > 300*time.Millisecond {
			t.Errorf("watchdog gap %v, want about 100ms", gap)
		}
	}
	for _, line := range ev.lines() {
		if strings.HasPrefix(line, "env NOTIFY_SOCKET=") || strings.HasPrefix(line, "env WATCHDOG_") {
			t.Errorf("child saw %s", strings.TrimPrefix(line, "env "))
		}
	}
}
