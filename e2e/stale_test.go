package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// TestPreemptBackMeetsNoStaleConnection: a node that takes the VIP back
// after a restart meets none of the sockets its last mastership left on
// the VIP. The client has 1,000 ports, so under a load of new and
// kept-alive connections it soon reuses, toward the other node, ports the
// returning node holds in TIME_WAIT; a request that then reaches a stale
// socket gets the old connection's ACK instead of a reset and hangs until
// the client's timeout. A client behind one address (a proxy, a NAT) is
// in that position on a busy site with the default port range.
func TestPreemptBackMeetsNoStaleConnection(t *testing.T) {
	c, a, b := healthNodes(t)
	c.client.Sysctl("net.ipv4.ip_local_port_range", "40000 40999")
	load := lab.NewLoad(c.client, c.url())
	load.Rate = 1000
	load.Start()
	time.Sleep(2 * time.Second)
	a.stop()
	c.waitServedBy(b, 10*time.Second)
	time.Sleep(2 * time.Second)
	vip := c.vip.Addr().String()
	stale := 0
	for _, line := range strings.Split(a.Run("ss", "-Htan", "state", "time-wait"), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && strings.HasPrefix(f[len(f)-2], vip+":") {
			stale++
		}
	}
	if stale == 0 {
		t.Fatalf("a holds no TIME_WAIT on the VIP; the test cannot tell")
	}
	back := time.Now()
	a.startVipvisor(150, probeEnv...)
	c.waitServedBy(a, 10*time.Second)
	time.Sleep(time.Second)
	end := time.Now()
	load.Stop()
	ss := load.Settled(end).Between(back, end)
	t.Logf("a held %d TIME_WAIT sockets on the VIP; %d requests after its restart, failed: %v", stale, len(ss), failureKinds(ss))
	if n := countWho(ss, "!timeout"); n > 0 {
		t.Errorf("%d requests timed out after a took the VIP back: %v", n, failureKinds(ss))
	}
	if countWho(ss, "a") == 0 {
		t.Error("a never answered after its restart")
	}
}
