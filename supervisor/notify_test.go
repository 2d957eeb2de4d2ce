package supervisor

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listenNotify stands in for systemd: a unixgram socket in a temp dir,
// named by NOTIFY_SOCKET for the rest of the test.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// readNotify returns the next datagram; the bound only guards a hang.
func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifierMessages(t *testing.T) {
	conn := listenNotify(t)
	n := NewNotifier(quietLog())
	n.Ready("nginx running")
	n.Status("nginx running") // unchanged: not sent again
	n.Status("MASTER")
	n.Reloading()
	n.Watchdog()
	n.Stopping("stopping nginx")

	want := []string{"READY=1\nSTATUS=nginx running", "STATUS=MASTER", "RELOADING=1\nMONOTONIC_USEC=", "WATCHDOG=1", "STOPPING=1\nSTATUS=stopping nginx"}
	for _, w := range want {
		if got := readNotify(t, conn); !strings.HasPrefix(got, w) {
			t.Errorf("got %q, want it to start with %q", got, w)
		}
	}
}

func TestNotifierWithoutSocketDoesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := NewNotifier(quietLog())
	n.Ready("x") // must not panic or block
	if n.WatchdogInterval() != 0 {
		t.Errorf("watchdog interval = %s without WATCHDOG_USEC", n.WatchdogInterval())
	}
}

func TestWatchdogIntervalIsHalfOfWatchdogUsec(t *testing.T) {
	for _, tc := range []struct {
		name string
		pid  string
		want time.Duration
	}{
		{"for this process", strconv.Itoa(os.Getpid()), 500 * time.Millisecond},
		{"unset pid means this process", "", 500 * time.Millisecond},
		{"for another process", "1", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", "1000000")
			t.Setenv("WATCHDOG_PID", tc.pid)
			if got := NewNotifier(quietLog()).WatchdogInterval(); got != tc.want {
				t.Errorf("WatchdogInterval() = %s, want %s", got, tc.want)
			}
		})
	}
}
