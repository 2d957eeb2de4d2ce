package vrrp

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// feedSubs is how many watches the feed of v's namespace serves; -1 when
// no feed runs there.
func feedSubs(v *vipSet) int {
	linkFeeds.Lock()
	defer linkFeeds.Unlock()
	f := linkFeeds.m[v.ns.UniqueId()]
	if f == nil {
		return -1
	}
	return len(f.subs)
}

// TestLinkFeedShared: the watches of one namespace (the instances of one
// process) share one pair of netlink subscriptions; each still hears
// everything about its own interface; one that stops reading is cut off
// rather than holding the others up; the feed ends with the last watch.
func TestLinkFeedShared(t *testing.T) {
	_, a := vipLab(t)
	var vs []*vipSet
	var ws []*lwWatcher
	for i := range 3 {
		v := vipNew(t, a, vipPrefixes(fmt.Sprintf("10.77.0.%d/32", 100+i))...)
		if _, err := v.LinkUp(); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Primary(); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
		ws = append(ws, lwStart(t, v))
	}
	lwWaitFor(t, "three watches on one feed", func() bool { return feedSubs(vs[0]) == 3 })

	// One netlink subscription pair in all: count this process's netlink
	// sockets that are subscribed to link or address groups.
	if n := subscribedNetlinkSockets(t, a); n != 2 {
		t.Errorf("%d subscribed netlink sockets for three watches, want 2", n)
	}

	a.Run("ip", "addr", "add", "10.77.0.101/32", "dev", a.Iface)
	a.Run("ip", "addr", "del", "10.77.0.101/32", "dev", a.Iface)
	ws[1].expect(t, "its own VIP deleted", lwVIPDeleted("10.77.0.101/32"))
	ws[0].quiet(t, "another's VIP deleted")

	// A watch that reads nothing: its copy fills and is cut off; the
	// others hear every change in between. Its buffer is made small, so
	// that it fills long before the kernel's queue would.
	defer func(n int) { feedAddrBuf = n }(feedAddrBuf)
	feedAddrBuf = 8
	stuck := vipNew(t, a)
	sw := lwStartN(t, stuck, 0)
	lwWaitFor(t, "the fourth watch on the feed", func() bool { return feedSubs(vs[0]) == 4 })
	for i := range 12 {
		a.Run("ip", "addr", "add", fmt.Sprintf("10.96.0.%d/32", 1+i), "dev", a.Iface)
	}
	lwWaitFor(t, "the stuck watch cut off", func() bool { return feedSubs(vs[0]) == 3 })
	a.Run("ip", "link", "set", a.Iface, "down")
	for i, w := range ws {
		w.expect(t, fmt.Sprintf("watch %d after the flood: link down", i), linkEvent{Kind: linkDown})
	}
	// Cut off, it says that it lost events (or, if it was still stuck
	// sending its first event, it ends quietly with the cancel).
	sw.cancel()
	if err := <-sw.done; err != nil && !strings.Contains(err.Error(), "came faster than they were read") {
		t.Errorf("the stuck watch returned %v", err)
	}
	sw.stopped = true

	for _, w := range ws {
		w.stop(t)
	}
	if n := feedSubs(vs[0]); n != -1 {
		t.Errorf("the feed still runs with %d watches after the last stopped", n)
	}
}

// subscribedNetlinkSockets counts the NETLINK_ROUTE sockets in node n's
// namespace that joined multicast groups, from its /proc/net/netlink:
// only this test's process has sockets there.
func subscribedNetlinkSockets(t *testing.T, n *lab.Node) int {
	t.Helper()
	var b []byte
	if err := n.Do(func() (err error) { b, err = os.ReadFile("/proc/thread-self/net/netlink"); return err }); err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		// sk Eth Pid Groups ...: protocol 0 is NETLINK_ROUTE.
		if len(f) > 3 && f[1] == "0" && strings.Trim(f[3], "0") != "" {
			count++
		}
	}
	return count
}

func lwWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(lwTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", lwTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
