package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/vipvisor/vipvisor/internal/lab"
	"github.com/vipvisor/vipvisor/vrrp"
)

// Two vipvisor nodes, priorities 150 and 100, VRRPv3 at 100ms.
func twoNodes(t *testing.T, extraA, extraB []string) (*cluster, *node, *node) {
	c := newCluster(t)
	a, b := c.node("a", 11), c.node("b", 12)
	a.startVipvisor(150, extraA...)
	b.startVipvisor(100, extraB...)
	c.waitServedBy(a, 10*time.Second)
	return c, a, b
}

func TestTwoNodesElectOneMaster(t *testing.T) {
	c, a, b := twoNodes(t, nil, nil)
	c.exactlyOneHolds(a, b)
	lab.WaitFor(t, 5*time.Second, "both to report their states", func() bool {
		return a.state() == "MASTER" && b.state() == "BACKUP"
	})
	if s, _ := b.status(); s.VRRP.Master != a.Addr.Addr().String() {
		t.Errorf("b reports master %q, want %s", s.VRRP.Master, a.Addr.Addr())
	}
}

func TestLinkCutMovesTheVIP(t *testing.T) {
	c, a, b := twoNodes(t, nil, nil)
	cut := time.Now()
	a.LinkDown()
	limit := vrrp.MasterDownInterval(3, 100, 100*time.Millisecond) + 100*time.Millisecond
	lab.WaitFor(t, 5*time.Second, "b to take the VIP", b.hasVIP)
	if took := time.Since(cut); took > limit {
		t.Errorf("b took the VIP %v after the cut, want within Master_Down_Interval + 100ms = %v", took, limit)
	}
	c.waitServedBy(b, 2*time.Second)
	lab.WaitFor(t, 5*time.Second, "a to see its link down", func() bool { return a.state() == "FAULT" && !a.hasVIP() })
	a.LinkUp()
	// a has the higher priority: it preempts back once it hears b again.
	c.waitServedBy(a, 5*time.Second)
	c.waitSoleHolder(a, b)
}

func TestPlannedStopFailsNoRequest(t *testing.T) {
	c, a, b := twoNodes(t, nil, nil)
	client := lab.NewClient(c.client, c.url())
	client.Start()
	time.Sleep(500 * time.Millisecond) // the client polls a for a while
	a.stop()
	c.waitServedBy(b, 5*time.Second)
	time.Sleep(500 * time.Millisecond) // and b for a while
	client.Stop()
	ss := handOverSamples(t, client)
	if n := ss.Failures(); n > 0 {
		t.Errorf("%d requests failed during a planned stop: %s", n, client)
	}
	if spans := ss.Spans(); len(spans) != 2 || spans[0].Who != "a" || spans[1].Who != "b" {
		t.Errorf("answers: %s, want a then b", client)
	}
}

// handOverSamples is the client's samples without the request a hand-over
// may cost (see lab.Samples.HandOverLosses), which it logs.
func handOverSamples(t *testing.T, client *lab.Client) lab.Samples {
	t.Helper()
	ss, lost := client.Samples().HandOverLosses()
	if lost > 0 {
		t.Logf("%d request in flight at the hand-over reset by the new master: %s", lost, client)
	}
	return ss
}

func TestPreemptBack(t *testing.T) {
	c, a, b := twoNodes(t, nil, nil)
	a.stop()
	c.waitServedBy(b, 5*time.Second)
	a.startVipvisor(150)
	c.waitServedBy(a, 5*time.Second)
	c.waitSoleHolder(a, b)
}

func TestNoPreemptKeepsTheMaster(t *testing.T) {
	c, a, b := twoNodes(t, nil, nil)
	a.stop()
	c.waitServedBy(b, 5*time.Second)
	a.startVipvisor(150, "VIPVISOR_PREEMPT=false")
	lab.WaitFor(t, 5*time.Second, "a to rejoin as backup", func() bool { return a.state() == "BACKUP" })
	time.Sleep(2 * time.Second) // many Master_Down_Intervals
	if a.state() != "BACKUP" {
		t.Errorf("a with PREEMPT=false is %s, want BACKUP", a.state())
	}
	c.exactlyOneHolds(b, a)
}

func TestPreemptDelay(t *testing.T) {
	c, a, b := twoNodes(t, nil, nil)
	a.stop()
	c.waitServedBy(b, 5*time.Second)
	started := time.Now()
	a.startVipvisor(150, "VIPVISOR_PREEMPT_DELAY=2s")
	lab.WaitFor(t, 5*time.Second, "a to rejoin as backup", func() bool { return a.state() == "BACKUP" })
	c.waitServedBy(a, 10*time.Second)
	if took := time.Since(started); took < 2*time.Second {
		t.Errorf("a preempted %v after start, before its 2s preempt delay", took)
	}
}

func TestUnicast(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", 11), c.node("b", 12)
	a.startVipvisor(150, "VIPVISOR_UNICAST_PEERS="+b.Addr.Addr().String())
	b.startVipvisor(100, "VIPVISOR_UNICAST_PEERS="+a.Addr.Addr().String())
	c.waitServedBy(a, 10*time.Second)
	lab.WaitFor(t, 5*time.Second, "b to follow a", func() bool { return b.state() == "BACKUP" })
	a.stop()
	c.waitServedBy(b, 5*time.Second)
}

func TestClustersOnDifferentGroupsDoNotMix(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", 11), c.node("b", 12)
	x, y := c.node("x", 21), c.node("y", 22)
	other := fmt.Sprintf("VIPVISOR_VIPS=%s", c.lab.Host(101))
	group := "VIPVISOR_MCAST_GROUP=224.0.0.19"
	a.startVipvisor(150)
	b.startVipvisor(100)
	x.startVipvisor(150, other, group)
	y.startVipvisor(100, other, group)
	c.waitServedBy(a, 10*time.Second)
	lab.WaitFor(t, 5*time.Second, "one master per cluster", func() bool {
		return a.state() == "MASTER" && b.state() == "BACKUP" && x.state() == "MASTER" && y.state() == "BACKUP"
	})
	if !x.HasAddr(c.lab.Host(101).Addr()) || x.hasVIP() {
		t.Errorf("x holds the wrong VIPs: %v", x.Addrs())
	}
}

func TestWrongPasswordIsDroppedAndCounted(t *testing.T) {
	v2 := []string{"VIPVISOR_VERSION=2", "VIPVISOR_ADVERT_INTERVAL=1s", "VIPVISOR_AUTH_PASS=secret12"}
	c, a, b := twoNodes(t, v2, v2)
	// An intruder with another password and a higher priority.
	x := c.node("x", 13)
	x.startVipvisor(254, "VIPVISOR_VERSION=2", "VIPVISOR_ADVERT_INTERVAL=1s", "VIPVISOR_AUTH_PASS=wrong")
	lab.WaitFor(t, 10*time.Second, "a to count x's adverts as bad_auth", func() bool {
		s, err := a.status()
		return err == nil && s.VRRP.Drops["bad_auth"] >= 2
	})
	if a.state() != "MASTER" || b.state() != "BACKUP" {
		t.Errorf("a %s, b %s: an advert with a wrong password changed the state", a.state(), b.state())
	}
	if !strings.Contains(a.v.log(), "bad_auth") && !strings.Contains(a.v.log(), "password") {
		t.Errorf("a did not log the dropped adverts:\n%s", a.v.log())
	}
}

func TestTTLOtherThan255IsDroppedAndCounted(t *testing.T) {
	c, a, b := twoNodes(t, nil, nil)
	x := c.node("x", 13)
	// A forged advert from x with the highest priority, but TTL 1: it
	// crossed a router, so it cannot come from a peer (RFC 5798 §7.1).
	adv := vrrp.Advert{Version: 3, VRID: 51, Priority: 254, Interval: 100 * time.Millisecond,
		Addrs: []netip.Addr{c.vip.Addr()}, Src: x.Addr.Addr(), Dst: netip.MustParseAddr("224.0.0.18")}
	for range 5 {
		sendRaw(t, x, &adv, 1)
	}
	lab.WaitFor(t, 5*time.Second, "a to count bad_ttl", func() bool {
		s, err := a.status()
		return err == nil && s.VRRP.Drops["bad_ttl"] >= 5
	})
	if a.state() != "MASTER" || b.state() != "BACKUP" {
		t.Errorf("a %s, b %s: an advert with TTL 1 changed the state", a.state(), b.state())
	}
}

// sendRaw sends adv from node n as a raw IP protocol 112 packet with ttl.
func sendRaw(t *testing.T, n *node, adv *vrrp.Advert, ttl int) {
	t.Helper()
	b, err := adv.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	err = n.Do(func() error {
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		defer c.Close()
		p := ipv4.NewPacketConn(c)
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		if err := p.SetMulticastInterface(ifi); err != nil {
			return err
		}
		if err := p.SetMulticastTTL(ttl); err != nil {
			return err
		}
		_, err = p.WriteTo(b, nil, &net.IPAddr{IP: adv.Dst.AsSlice()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStaleVIPRemovedAtStart(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", 11)
	// A copy of the VIP left behind, as after a kill -9; a starts as the
	// backup of b, so only the clean-up can remove it.
	a.Run("ip", "addr", "add", c.vip.String(), "dev", "eth0")
	b := c.node("b", 12)
	b.startVipvisor(200)
	c.waitServedBy(b, 10*time.Second)
	a.startVipvisor(100)
	lab.WaitFor(t, 5*time.Second, "a to remove the stale VIP", func() bool { return !a.hasVIP() })
	if !strings.Contains(a.v.log(), "removed stale virtual addresses") {
		t.Errorf("a did not log the stale VIP:\n%s", a.v.log())
	}
	if !a.HasAddr(a.Addr.Addr()) {
		t.Errorf("a lost its own address: %v", a.Addrs())
	}
}

func TestDeletedVIPIsRestored(t *testing.T) {
	c, a, _ := twoNodes(t, nil, nil)
	a.Run("ip", "addr", "del", c.vip.String(), "dev", "eth0")
	deleted := time.Now()
	lab.WaitFor(t, 5*time.Second, "a to restore the VIP", a.hasVIP)
	if took := time.Since(deleted); took > time.Second {
		t.Errorf("VIP restored after %v, want within a second", took)
	}
	c.waitServedBy(a, 2*time.Second)
}

func TestNotifyGetsKeepalivedArguments(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", 11), c.node("b", 12)
	log := filepath.Join(a.dir, "notify.log")
	script := filepath.Join(a.dir, "notify.sh")
	writeFile(t, script, fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\n", log), 0o755)
	a.startVipvisor(150, "VIPVISOR_NOTIFY="+script)
	b.startVipvisor(100)
	c.waitServedBy(a, 10*time.Second)
	a.stop()
	lab.WaitFor(t, 5*time.Second, "the STOP notification", func() bool {
		got, _ := os.ReadFile(log)
		return strings.Contains(string(got), "STOP")
	})
	got, _ := os.ReadFile(log)
	want := []string{"INSTANCE VI_51 BACKUP 150", "INSTANCE VI_51 MASTER 150", "INSTANCE VI_51 STOP 150"}
	if lines := strings.Split(strings.TrimSpace(string(got)), "\n"); !slices.Equal(lines, want) {
		t.Errorf("notify got (-want +got):\n-%s\n+%s", strings.Join(want, "\n-"), strings.Join(lines, "\n+"))
	}
}
