package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/lab"
	"github.com/vipvisor/vipvisor/supervisor"
)

// VIPVISOR_LISTEN: vipvisor holds nginx's listening socket, so that while
// nginx restarts after a crash the kernel queues new connections instead
// of refusing them, and the next nginx answers them; the dead master's
// workers finish the requests they had accepted. A correctness test: it
// counts requests, and bounds no time.

// listenKills is how many times nginx's master is killed in a run.
const listenKills = 5

// killsUnderLoad runs clients polling the VIP from the client node, each
// a new connection every 2 ms with a 2 s timeout, kills a's nginx master
// listenKills times, and returns every sample.
func killsUnderLoad(t *testing.T, c *cluster, a *node) lab.Samples {
	const clients = 4
	var cs []*lab.Client
	for range clients {
		cl := lab.NewClient(c.client, c.url())
		cl.Interval, cl.Timeout = 2*time.Millisecond, 2*time.Second
		cl.Start()
		cs = append(cs, cl)
	}
	time.Sleep(200 * time.Millisecond)
	master := a.nginxMaster()
	for range listenKills {
		a.killMaster()
		master = a.waitNewMaster(master)
		time.Sleep(200 * time.Millisecond)
	}
	var all lab.Samples
	for _, cl := range cs {
		cl.Stop()
		all = append(all, cl.Samples()...)
	}
	return all
}

// failureKinds counts the failed samples by kind, with an example error.
func failureKinds(ss lab.Samples) map[string]string {
	n := map[string]int{}
	ex := map[string]string{}
	for _, s := range ss {
		if !s.OK() {
			n[s.Who()]++
			if s.Err != nil {
				ex[s.Who()] = s.Err.Error()
			}
		}
	}
	out := map[string]string{}
	for k, v := range n {
		out[k] = fmt.Sprintf("%d (%s)", v, ex[k])
	}
	return out
}

func countWho(ss lab.Samples, who string) int {
	n := 0
	for _, s := range ss {
		if s.Who() == who {
			n++
		}
	}
	return n
}

func TestListenKeepsConnectionsThroughKill9(t *testing.T) {
	t.Run("held", func(t *testing.T) {
		c, a, b := healthNodes(t, "VIPVISOR_RESTARTS=100", "VIPVISOR_LISTEN=:80")
		watch := neverHolds(b)
		ss := killsUnderLoad(t, c, a)
		if n := countWho(ss, "!refused"); n > 0 {
			t.Errorf("%d of %d connections refused with LISTEN: %s", n, len(ss), ss)
		}
		// Nor are requests lost: the killed master's workers finish what
		// they had accepted before they go. Here runs lose none; one CI
		// run of several saw one request of 3,851 time out after 2 s,
		// not yet explained, so one is let pass, logged.
		fails := ss.Failures()
		t.Logf("%d requests, %d failed: %v", len(ss), fails, failureKinds(ss))
		if fails > 1 {
			t.Errorf("%d requests failed through %d kills with LISTEN: %v", fails, listenKills, failureKinds(ss))
		}
		if n := watch(); n > 0 {
			t.Errorf("b held the VIP in %d samples", n)
		}
		if ok := len(ss) - fails; ok < 1000 {
			t.Errorf("only %d answered requests: the load did not run", ok)
		}
	})
	// The same without LISTEN: connections are refused while nginx
	// restarts, which is what LISTEN is for.
	t.Run("not held", func(t *testing.T) {
		c, a, _ := healthNodes(t, "VIPVISOR_RESTARTS=100")
		ss := killsUnderLoad(t, c, a)
		if n := countWho(ss, "!refused"); n == 0 {
			t.Errorf("no connection refused through %d kills without LISTEN: the load cannot tell: %s", listenKills, ss)
		} else {
			t.Logf("without LISTEN: %d of %d refused", n, len(ss))
		}
	})
}

// TestListenYieldResetsWhatNoChildWillAccept: with held sockets, a crash
// that makes vipvisor yield leaves connections that reached a before the
// VIP moved in a's backlog, with no nginx to come for them while a waits
// to try again. They are reset at once, as a closed port would refuse
// them, rather than left to time out; and the peer serves.
func TestListenYieldResetsWhatNoChildWillAccept(t *testing.T) {
	c, a, b := healthNodes(t, "VIPVISOR_RESTARTS=0", "VIPVISOR_ON_YIELD=retry", "VIPVISOR_LISTEN=:80")
	var cs []*lab.Client
	for range 4 {
		cl := lab.NewClient(c.client, c.url())
		cl.Interval, cl.Timeout = 2*time.Millisecond, 2*time.Second
		cl.Start()
		cs = append(cs, cl)
	}
	time.Sleep(200 * time.Millisecond)
	a.killMaster()
	c.waitServedBy(b, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	var all lab.Samples
	for _, cl := range cs {
		cl.Stop()
		all = append(all, cl.Samples()...)
	}
	t.Logf("%d requests, failed: %v", len(all), failureKinds(all))
	if n := countWho(all, "!timeout"); n > 0 {
		t.Errorf("%d requests timed out in a's backlog after the yield: %v", n, failureKinds(all))
	}
	if countWho(all, "b") == 0 {
		t.Error("b never answered")
	}
	if !strings.Contains(a.v.log(), "reset connections the held sockets queued") && !strings.Contains(a.v.log(), "yielding") {
		t.Errorf("a did not yield:\n%s", a.v.log())
	}
}

// TestListenRefusedForAnAddressNginxDoesNotListenOn: vipvisor exits 2
// before touching anything when nginx's configuration does not name a
// held address.
func TestListenRefusedForAnAddressNginxDoesNotListenOn(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", 11)
	v := a.startVipvisor(150, "VIPVISOR_LISTEN=:80,127.0.0.1:8080")
	if code := v.wait(10 * time.Second); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	want := `VIPVISOR_LISTEN=":80,127.0.0.1:8080": nginx's configuration does not listen on 127.0.0.1:8080`
	if !strings.Contains(v.log(), want) {
		t.Errorf("output does not name the address; want %q in:\n%s", want, v.log())
	}
	if a.hasVIP() {
		t.Error("the VIP was added")
	}
}

// TestHeldSocketAnswersAfterTheVIPLeft: a request nginx is answering on a
// held socket when the VIP moves away (a planned stop, a preempting
// peer) still gets its answer out. The
// kernel drops what a socket sends from an address the node no longer
// has, unless the socket is transparent, and the client would wait until
// it timed out.
func TestHeldSocketAnswersAfterTheVIPLeft(t *testing.T) {
	l := lab.New(t, netip.MustParsePrefix("10.77.5.0/24"))
	a, c := l.AddNode("a", l.Host(11)), l.AddNode("c", l.Host(20))
	vip := l.Host(100)
	a.Run("ip", "addr", "add", vip.String(), "dev", a.Iface)
	var ls *supervisor.Listeners
	if err := a.Do(func() (err error) {
		var addrs supervisor.ListenAddrs
		if err = addrs.Decode(vip.Addr().String() + ":8082"); err == nil {
			ls, err = supervisor.OpenListeners(addrs)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	// The child's side: a socket accepted from the held one, as nginx's
	// workers do.
	accepted := make(chan net.Conn, 1)
	go func() {
		fd := int(ls.Files()[0].Fd())
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 5000); err != nil {
			close(accepted)
			return
		}
		nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err != nil {
			close(accepted)
			return
		}
		conn, err := net.FileConn(os.NewFile(uintptr(nfd), "accepted"))
		if err != nil {
			close(accepted)
			return
		}
		accepted <- conn
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := c.DialContext(ctx, "tcp", vip.Addr().String()+":8082")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, ok := <-accepted
	if !ok {
		t.Fatal("nothing accepted")
	}
	defer server.Close()

	a.Run("ip", "addr", "del", vip.String(), "dev", a.Iface)
	if _, err := server.Write([]byte("answer")); err != nil {
		t.Fatalf("write after the VIP left: %v", err)
	}
	client.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 16)
	n, err := client.Read(buf)
	if string(buf[:n]) != "answer" {
		t.Errorf("the client read %q, %v; want the answer sent after the VIP left", buf[:n], err)
	}
}
