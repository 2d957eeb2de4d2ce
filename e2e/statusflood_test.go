package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// The flood, as an attacker on the segment would send it to a status
// endpoint listening on every address.
const (
	floodIdle      = 6000             // connections opened and left idle, half of them after one request
	floodSlow      = 24               // slowloris: a header line every half second, never the end
	floodPipelined = 8                // connections that each send floodRequests at once and read nothing
	floodRequests  = 2000             // requests per pipelined burst
	floodSources   = 4                // attacker addresses the connections come from
	floodHold      = 10 * time.Second // how long the flood lasts
)

// TestStatusFloodCannotMakeTheMasterYield floods the master's status
// endpoint from a third node with thousands of idle connections, slowloris
// clients and pipelined bursts for ten seconds, and kills nginx's master
// process on the master in the middle of it. What must hold: the client of
// the VIP is answered throughout (but for the restart), the master never
// leaves MASTER and its peer never takes the VIP, the restart succeeds (the
// child gets its descriptors), vipvisor's descriptors and resident memory
// stay bounded, and /status answers again after the flood.
func TestStatusFloodCannotMakeTheMasterYield(t *testing.T) {
	raiseNoFile(t, floodIdle+floodSlow+floodPipelined+1000)
	c := newCluster(t)
	a, b := c.node("a", 11), c.node("b", 12)
	attacker := c.lab.AddNode("flood", c.lab.Host(60))
	sources := []netip.Addr{attacker.Addr.Addr()}
	for i := 1; i < floodSources; i++ {
		p := c.lab.Host(60 + i)
		attacker.Run("ip", "addr", "add", p.String(), "dev", attacker.Iface)
		sources = append(sources, p.Addr())
	}
	states := filepath.Join(a.dir, "states.log")
	script := filepath.Join(a.dir, "notify.sh")
	writeFile(t, script, fmt.Sprintf("#!/bin/sh\necho \"$3\" >> %s\n", states), 0o755)
	// a runs vipvisor built without the race detector, whose shadow memory
	// grows with every allocation: the figures are then vipvisor's own.
	a.v = start(t, a.Command(plainBinary(t), "--", "nginx", "-c", filepath.Join(a.dir, "nginx.conf")),
		a.vipvisorEnv(150, append(slices.Clone(probeEnv), "VIPVISOR_STATUS_ADDR=0.0.0.0:9797", "VIPVISOR_NOTIFY="+script)...))
	b.startVipvisor(100, probeEnv...)
	c.waitServedBy(a, 10*time.Second)
	lab.WaitFor(t, 5*time.Second, "b to follow a", func() bool { return b.state() == "BACKUP" })
	pid := a.v.cmd.Process.Pid
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "vipvisor" {
		t.Fatalf("pid %d is %q, not vipvisor", pid, comm)
	}
	soft, hard := noFileLimit(t, pid)
	nsoft, nhard := noFileLimit(t, a.nginxMaster())
	t.Logf("RLIMIT_NOFILE: vipvisor's soft %d, hard %d; nginx's soft %d, hard %d", soft, hard, nsoft, nhard)
	rss0, fds0 := rssKiB(t, pid), fdCount(t, pid)
	// NOTIFY runs beside the protocol: wait for its report of MASTER.
	var statesBefore []byte
	lab.WaitFor(t, 5*time.Second, "a's NOTIFY to report MASTER", func() bool {
		statesBefore, _ = os.ReadFile(states)
		s := strings.Fields(string(statesBefore))
		return len(s) > 0 && s[len(s)-1] == "MASTER"
	})

	client := lab.NewClient(c.client, c.url())
	client.Start()
	watch := neverHolds(b)
	target := netip.AddrPortFrom(a.Addr.Addr(), 9797).String()
	ctx, cancel := context.WithTimeout(context.Background(), floodHold)
	defer cancel()
	f := &statusFlood{node: attacker, target: target, sources: sources}
	f.start(ctx, t)

	w := watchFlood(ctx, t, a, pid)
	f.stop()
	opened, closed := f.counts()
	t.Logf("flood: %d connections opened, %d of them closed by vipvisor during the flood; %d slowloris rounds, %d pipelined requests sent; %d of our /status requests unanswered",
		opened, closed, f.slowRounds.Load(), f.pipelined.Load(), w.unanswered)
	if opened < 5000 {
		t.Errorf("only %d connections were opened; the flood needs at least 5000", opened)
	}

	// After the flood, the endpoint answers again.
	lab.WaitFor(t, 10*time.Second, "a's /status to answer MASTER after the flood", func() bool { return a.state() == "MASTER" })
	client.Stop()
	if n := watch(); n > 0 {
		t.Errorf("b held the VIP in %d samples during the flood", n)
	}
	if len(w.states) > 0 {
		t.Errorf("a's /status said other than MASTER during the flood: %v", w.states)
	}
	got, _ := os.ReadFile(states)
	if s := strings.Fields(strings.TrimPrefix(string(got), string(statesBefore))); len(s) > 0 {
		t.Errorf("a's NOTIFY saw the states %v during the flood, want none", s)
	}
	if w.killedAt.IsZero() || w.restartedAt.IsZero() {
		t.Fatalf("nginx was not killed and restarted during the flood (killed %v, restarted %v)", w.killedAt, w.restartedAt)
	}
	if s, err := a.childStatus(); err != nil || !s.Healthy || s.Restarts != 1 {
		t.Errorf("a's child after the flood: %+v, %v; want healthy after one restart", s, err)
	}
	// The client: answered by a alone, and every request outside the
	// restart answered.
	for _, s := range client.WhoAnswered() {
		if s.Who == "b" {
			t.Errorf("b answered the VIP: %s", client)
		}
	}
	var failed []string
	for _, s := range client.Samples() {
		// A request in flight when nginx is killed dies with it.
		inRestart := !s.At.Add(s.Took).Before(w.killedAt) && s.At.Before(w.restartedAt)
		if s.Err != nil && !inRestart {
			failed = append(failed, fmt.Sprintf("%s: %v", s.At.Format("15:04:05.000"), s.Err))
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d requests to the VIP failed outside nginx's restart: %v", len(failed), failed)
	}
	t.Logf("client: %s, longest outage %v", client, client.Outages())
	t.Logf("vipvisor: RSS %d KiB before, %d KiB at peak; descriptors %d before, %d at peak", rss0, w.peakRSS, fds0, w.peakFDs)
	if grew := w.peakRSS - rss0; grew > 8<<10 {
		t.Errorf("vipvisor's resident memory grew by %d KiB under the flood, want at most 8 MiB", grew)
	}
	if w.peakFDs > fds0+64+32 {
		t.Errorf("vipvisor held %d descriptors under the flood (%d before); want at most 64 more for the status endpoint and 32 of slack", w.peakFDs, fds0)
	}
	if w.peakFDs*2 > soft {
		t.Errorf("vipvisor used %d descriptors of its soft limit %d: too little to spare", w.peakFDs, soft)
	}
	// Every method but GET and HEAD is still refused after the flood.
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		req, _ := http.NewRequest(m, "http://127.0.0.1:9797/status", strings.NewReader("x"))
		resp, err := a.HTTPClient(time.Second).Do(req)
		if err != nil {
			t.Errorf("%s /status after the flood: %v", m, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /status after the flood = %d, want 405", m, resp.StatusCode)
		}
	}
}

// floodWatch is what watchFlood saw of the master.
type floodWatch struct {
	peakRSS, peakFDs      int
	states                []string // answers of /status other than MASTER
	unanswered            int      // requests to /status that got no answer
	killedAt, restartedAt time.Time
}

// watchFlood samples the master's vipvisor (pid) on a until ctx is done, and
// a third of the way in crashes nginx's master, as
// TestCrashedNginxIsRestartedAndKeepsTheVIP does, noting when a new one is
// healthy.
func watchFlood(ctx context.Context, t *testing.T, a *node, pid int) floodWatch {
	var w floodWatch
	crashAt := time.Now().Add(floodHold / 3)
	old := 0
	for ctx.Err() == nil {
		w.peakRSS, w.peakFDs = max(w.peakRSS, rssKiB(t, pid)), max(w.peakFDs, fdCount(t, pid))
		switch s := a.state(); {
		case strings.HasPrefix(s, "unreachable"):
			w.unanswered++ // the endpoint may refuse its share of the flood's requests
		case s != "MASTER":
			w.states = append(w.states, s)
		}
		switch {
		case old == 0 && time.Now().After(crashAt):
			w.killedAt = time.Now()
			old, _ = a.killMaster()
		case old != 0 && w.restartedAt.IsZero():
			if s, err := a.childStatus(); err == nil && s.Healthy && a.nginxMaster() != old && a.nginxMaster() != 0 {
				w.restartedAt = time.Now()
			}
		}
		time.Sleep(100 * time.Millisecond) // sampling pace, not an assertion
	}
	return w
}

var (
	plainOnce sync.Once
	plainPath string
	plainErr  error
)

// plainBinary returns vipvisor built without the race detector, built
// once per test run beside binary.
func plainBinary(t *testing.T) string {
	t.Helper()
	plainOnce.Do(func() {
		plainPath = filepath.Join(filepath.Dir(binary), "plain", "vipvisor")
		out, err := exec.Command("go", "build", "-o", plainPath, "../cmd/vipvisor").CombinedOutput()
		if err != nil {
			plainErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if plainErr != nil {
		t.Fatal(plainErr)
	}
	return plainPath
}

// statusFlood is the attack: connections from node's sources to target.
type statusFlood struct {
	node    *lab.Node
	target  string
	sources []netip.Addr

	wg         sync.WaitGroup
	mu         sync.Mutex
	idle       []net.Conn
	closedIdle int
	opened     atomic.Int64
	slowRounds atomic.Int64
	pipelined  atomic.Int64
}

// dial opens a connection to the target from src, inside the node.
func (f *statusFlood) dial(src netip.Addr) (net.Conn, error) {
	var c net.Conn
	err := f.node.Do(func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 2 * time.Second}
		var err error
		c, err = d.Dial("tcp", f.target)
		return err
	})
	if err == nil {
		f.opened.Add(1)
	}
	return c, err
}

// start sends the flood until ctx is done: slowloris and pipelined
// clients that reconnect when cut off, and the idle connections, opened
// once from every source at the same time.
func (f *statusFlood) start(ctx context.Context, t *testing.T) {
	for i := range floodSlow {
		f.loop(ctx, f.sources[i%len(f.sources)], f.slowloris)
	}
	for i := range floodPipelined {
		f.loop(ctx, f.sources[i%len(f.sources)], f.burst)
	}
	// One trip into the namespace per source: sockets opened there stay
	// there, and moving a thread in and out for each would cost more CPU
	// than the flood itself.
	var opening sync.WaitGroup
	for _, src := range f.sources {
		opening.Add(1)
		go func() {
			defer opening.Done()
			err := f.node.Do(func() error {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 2 * time.Second}
				for i := range floodIdle / len(f.sources) {
					c, err := d.Dial("tcp", f.target)
					if err != nil {
						return err
					}
					if i%2 == 1 {
						// One request, its answer never read: the
						// connection then idles as a keep-alive one.
						c.Write([]byte("GET /status HTTP/1.1\r\nHost: a\r\n\r\n"))
					}
					f.opened.Add(1)
					f.mu.Lock()
					f.idle = append(f.idle, c)
					f.mu.Unlock()
				}
				return nil
			})
			if err != nil {
				t.Logf("idle connections from %s: %v", src, err)
			}
		}()
	}
	opening.Wait()
}

// loop runs one attacking client from src until ctx is done, connecting
// again after each cut, paced so that a refused client does not spin.
func (f *statusFlood) loop(ctx context.Context, src netip.Addr, client func(context.Context, net.Conn)) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for ctx.Err() == nil {
			if c, err := f.dial(src); err == nil {
				client(ctx, c)
				c.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
}

// slowloris sends a request's header one line every half second and never
// ends it, until the server closes the connection or ctx is done.
func (f *statusFlood) slowloris(ctx context.Context, c net.Conn) {
	if _, err := fmt.Fprint(c, "GET /status HTTP/1.1\r\nHost: a\r\n"); err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := fmt.Fprint(c, "X-Slow: 1\r\n"); err != nil {
			return
		}
		f.slowRounds.Add(1)
	}
}

// burst writes floodRequests pipelined requests at once and reads none of
// the answers, then holds the connection until the server cuts it.
func (f *statusFlood) burst(ctx context.Context, c net.Conn) {
	req := "GET /status HTTP/1.1\r\nHost: a\r\n\r\n"
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	n, _ := c.Write([]byte(strings.Repeat(req, floodRequests)))
	f.pipelined.Add(int64(n / len(req)))
	// Wait for the cut without reading: a zero-length read would not
	// block, so peek at the socket's state once a second.
	for ctx.Err() == nil && !peerClosed(c) {
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// peerClosed reports whether the server has closed c, reading at most
// what is already there (which a pipelined client then discards).
func peerClosed(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 64<<10)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		ne, ok := err.(net.Error)
		return !(ok && ne.Timeout())
	}
}

// stop ends the flood: it waits for the clients and closes every idle
// connection, counting those vipvisor had already closed.
func (f *statusFlood) stop() {
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.idle {
		if peerClosed(c) {
			f.closedIdle++
		}
		c.Close()
	}
}

// counts returns the connections opened and the idle ones found closed.
func (f *statusFlood) counts() (opened, closedIdle int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int(f.opened.Load()), f.closedIdle
}

// raiseNoFile makes sure this test process may open n descriptors.
func raiseNoFile(t *testing.T, n uint64) {
	t.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if l.Cur >= n {
		return
	}
	if l.Max < n {
		t.Fatalf("RLIMIT_NOFILE hard limit %d: the flood needs %d descriptors", l.Max, n)
	}
	l.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
}

// noFileLimit reads a process's RLIMIT_NOFILE from /proc.
func noFileLimit(t *testing.T, pid int) (soft, hard int) {
	f := procFields(t, pid, "limits", "Max open files")
	soft, _ = strconv.Atoi(f[0])
	hard, _ = strconv.Atoi(f[1])
	return soft, hard
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(t *testing.T, pid int) int {
	kib, _ := strconv.Atoi(procFields(t, pid, "status", "VmRSS:")[0])
	return kib
}

// procFields returns the fields after prefix on its line of
// /proc/PID/file, failing the test if there are fewer than two.
func procFields(t *testing.T, pid int, file, prefix string) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			if f := strings.Fields(rest); len(f) >= 2 {
				return f
			}
		}
	}
	t.Fatalf("/proc/%d/%s has no %q line", pid, file, prefix)
	return nil
}

// fdCount counts a process's open descriptors.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
