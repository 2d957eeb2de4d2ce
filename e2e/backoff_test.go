package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// With ON_YIELD=retry a child that keeps failing is tried again after
// 1 s, then 2, 4, 8, 16 and 30 s: the README's promise, which a child
// counted healthy for a moment between failures used to break (a try
// about once a second, forever).

// slogRecord is one record of vipvisor's text log.
type slogRecord struct {
	at    time.Time
	msg   string
	attrs string
}

var slogLine = regexp.MustCompile(`^time=(\S+) level=\S+ msg=("(?:[^"\\]|\\.)*"|\S+)(.*)$`)

// logRecords parses vipvisor's log; lines of the child's own are skipped.
func logRecords(out string) []slogRecord {
	var lines []slogRecord
	for _, l := range strings.Split(out, "\n") {
		m := slogLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		lines = append(lines, slogRecord{at: at, msg: strings.Trim(m[2], `"`), attrs: m[3]})
	}
	return lines
}

var backoffAttr = regexp.MustCompile(` backoff=(\S+)`)

// backoffTry is one "trying the child again" line: the backoff it names and how
// long after the run before had ended it came.
type backoffTry struct {
	backoff string
	waited  time.Duration
}

// tries reads the tries from vipvisor's log, in order.
func tries(out string) []backoffTry {
	var got []backoffTry
	var ended time.Time
	for _, l := range logRecords(out) {
		switch l.msg {
		case "child exited", "child stopped":
			ended = l.at
		case "trying the child again":
			tr := backoffTry{waited: l.at.Sub(ended)}
			if m := backoffAttr.FindStringSubmatch(l.attrs); m != nil {
				tr.backoff = m[1]
			}
			got = append(got, tr)
		}
	}
	return got
}

// waitTries waits until vipvisor on n has logged count tries.
func (n *node) waitTries(t *testing.T, count int, within time.Duration) []backoffTry {
	t.Helper()
	var got []backoffTry
	lab.WaitFor(t, within, fmt.Sprintf("vipvisor to try the child again %d times", count), func() bool {
		got = tries(n.v.log())
		return len(got) >= count
	})
	return got[:count]
}

// neverMaster samples n's VRRP state and VIP every 10 ms until stop is
// called, and returns how often n was master or held the VIP.
func neverMaster(n *node) (stop func() int) {
	var seen atomic.Int64
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
				if n.hasVIP() || n.state() == "MASTER" {
					seen.Add(1)
				}
			}
		}
	}()
	return func() int { close(done); <-finished; return int(seen.Load()) }
}

// checkBackedOff runs the common part of the rows below: vipvisor on n
// tries a failing child again with backoffs 1, 2, 4 and 8 s (want of
// them), never holding the VIP, and starts it at most maxStarts times.
func checkBackedOff(t *testing.T, n *node, want []string, within time.Duration, maxStarts int) {
	t.Helper()
	watch := neverMaster(n)
	got := n.waitTries(t, len(want), within)
	var backoffs []string
	for _, tr := range got {
		backoffs = append(backoffs, tr.backoff)
		// The real wait, not only the log's word for it. The log says a
		// run ended a little after it did: once its leftovers were gone.
		if d, err := time.ParseDuration(tr.backoff); err != nil || tr.waited < d-d/10 {
			t.Errorf("a try with backoff %q came %v after the run before it ended", tr.backoff, tr.waited)
		}
	}
	if !slices.Equal(backoffs, want) {
		t.Errorf("backoffs of the tries (-want +got):\n-%q\n+%q", want, backoffs)
	}
	// A try that counts as healthy rejoins as BACKUP for the moment it
	// runs; between tries the node is in FAULT.
	lab.WaitFor(t, 3*time.Second, "the node in FAULT between tries", func() bool { return n.state() == "FAULT" })
	if seen := watch(); seen > 0 {
		t.Errorf("the node was master or held the VIP in %d samples while its child failed", seen)
	}
	if s, err := n.childStatus(); err != nil {
		t.Errorf("status: %v", err)
	} else if s.Starts > maxStarts {
		t.Errorf("child started %d times, want at most %d (1, a restart, then one per backoff)", s.Starts, maxStarts)
	}
	n.stop()
}

func TestBackoffFailingChildIsRetriedLessAndLessOften(t *testing.T) {
	c := newCluster(t)
	n := c.node("a", 11)
	// `false` exits at once; with no probe it counts as healthy while
	// it runs, for the moment that it does.
	n.v = start(t, n.Command(binary, "--", "false"), n.vipvisorEnv(150, "VIPVISOR_ON_YIELD=retry"))
	// 1 start, 1 restart, then tries after 1, 2, 4 and 8 s: about 15 s.
	checkBackedOff(t, n, []string{"1s", "2s", "4s", "8s"}, 25*time.Second, 6)
}

func TestBackoffNginxWithBadConfig(t *testing.T) {
	c := newCluster(t)
	n := c.node("a", 11)
	conf := filepath.Join(n.dir, "nginx.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("no_such_directive on;\n") // nginx: [emerg] unknown directive
	f.Close()
	n.startVipvisor(150, append(slices.Clone(probeEnv), "VIPVISOR_ON_YIELD=retry")...)
	checkBackedOff(t, n, []string{"1s", "2s", "4s", "8s"}, 25*time.Second, 6)
	if !strings.Contains(n.v.log(), "no_such_directive") {
		t.Errorf("nginx's own complaint is not in the log")
	}
}

func TestNeverHealthyChildYieldsAndBacksOff(t *testing.T) {
	c := newCluster(t)
	n := c.node("a", 11)
	// nginx runs and serves /, but the probed path answers 404.
	writeFile(t, lab.NginxHealthConf(n.dir), "return 404;\n", 0o644)
	n.startVipvisor(150,
		"VIPVISOR_CHECK_HTTP=http://127.0.0.1/health", "VIPVISOR_CHECK_INTERVAL=200ms",
		"VIPVISOR_CHECK_TIMEOUT=200ms", "VIPVISOR_STOP_TIMEOUT=1s",
		"VIPVISOR_START_TIMEOUT=2s", "VIPVISOR_ON_YIELD=retry")
	lab.WaitFor(t, 5*time.Second, "nginx to run", func() bool {
		code, _, err := n.HTTPGet("http://127.0.0.1/", time.Second)
		return err == nil && code == 200
	})
	// Start, START_TIMEOUT, restart, START_TIMEOUT: yield; then tries
	// of 2 s each after 1, 2 and 4 s: about 17 s. Five starts at most.
	checkBackedOff(t, n, []string{"1s", "2s", "4s"}, 30*time.Second, 5)
	if !strings.Contains(n.v.log(), "not healthy within START_TIMEOUT (2s)") {
		t.Errorf("the log does not say why the child was judged failed")
	}
}
