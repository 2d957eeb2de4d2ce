package vrrp

import (
	"context"
	"io"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// activeActive starts two nodes of a master/master pair: a is master of
// web1 (VRID 51), b of web2 (VRID 52); each virtual router has a LAN of
// its own, as two VRIDs never hear each other.
func activeActive(t *testing.T, ctx context.Context) (a, b *Group, nodes map[string]*node) {
	web1, web2 := &hub{}, &hub{}
	cfg := func(name string, vrid, prio int) *Config {
		c := testConfig(prio)
		c.Name, c.VRID = name, vrid
		return c
	}
	nodes = map[string]*node{
		"a/web1": web1.prepare("10.0.0.11", cfg("web1", 51, 150)),
		"a/web2": web2.prepare("10.0.0.11", cfg("web2", 52, 100)),
		"b/web1": web1.prepare("10.0.0.12", cfg("web1", 51, 100)),
		"b/web2": web2.prepare("10.0.0.12", cfg("web2", 52, 150)),
	}
	a = newGroup([]*instance{nodes["a/web1"].instance, nodes["a/web2"].instance})
	b = newGroup([]*instance{nodes["b/web1"].instance, nodes["b/web2"].instance})
	for _, g := range []*Group{a, b} {
		go g.Run(ctx)
		g.SetHealthy(true)
	}
	time.Sleep(time.Second)
	synctest.Wait()
	return a, b, nodes
}

func states(g *Group) []string {
	var out []string
	for _, s := range g.Status() {
		out = append(out, s.Name+" "+s.State)
	}
	return out
}

func TestGroupActiveActive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a, b, nodes := activeActive(t, ctx)
		if got, want := states(a), []string{"web1 MASTER", "web2 BACKUP"}; !slices.Equal(got, want) {
			t.Fatalf("a: %q, want %q", got, want)
		}
		if got, want := states(b), []string{"web1 BACKUP", "web2 MASTER"}; !slices.Equal(got, want) {
			t.Fatalf("b: %q, want %q", got, want)
		}
		drain(a)

		// a's child yields: every instance of a faults, b holds both.
		a.SetFault("child", true)
		time.Sleep(time.Second)
		synctest.Wait()
		if got, want := states(a), []string{"web1 FAULT", "web2 FAULT"}; !slices.Equal(got, want) {
			t.Errorf("a after the yield: %q, want %q", got, want)
		}
		if got, want := states(b), []string{"web1 MASTER", "web2 MASTER"}; !slices.Equal(got, want) {
			t.Errorf("b after a's yield: %q, want %q", got, want)
		}
		if nodes["a/web1"].addrs.has() || !nodes["b/web1"].addrs.has() || !nodes["b/web2"].addrs.has() {
			t.Errorf("VIPs: a/web1 %v, b/web1 %v, b/web2 %v", nodes["a/web1"].addrs.has(), nodes["b/web1"].addrs.has(), nodes["b/web2"].addrs.has())
		}
		got := drain(a)
		want := []string{"web1 MASTER→FAULT", "web2 BACKUP→FAULT"}
		if slices.Sort(got); !slices.Equal(got, want) {
			t.Errorf("a's changes %q, want %q, each naming its instance", got, want)
		}

		// Healed: a returns to BACKUP everywhere and preempts web1 back.
		a.SetFault("child", false)
		time.Sleep(time.Second)
		synctest.Wait()
		if got, want := states(a), []string{"web1 MASTER", "web2 BACKUP"}; !slices.Equal(got, want) {
			t.Errorf("a healed: %q, want %q", got, want)
		}
		if got, want := states(b), []string{"web1 BACKUP", "web2 MASTER"}; !slices.Equal(got, want) {
			t.Errorf("b after a healed: %q, want %q", got, want)
		}

		// A planned stop hands every instance's VIPs over, then the
		// group's channel closes.
		select {
		case <-a.Shutdown():
		case <-time.After(10 * time.Second):
			t.Fatal("shutdown of the group never finished")
		}
		if got, want := states(b), []string{"web1 MASTER", "web2 MASTER"}; !slices.Equal(got, want) {
			t.Errorf("b after a's stop: %q, want %q", got, want)
		}
	})
}

// drain returns the changes the group delivered so far, as
// "name FROM→TO".
func drain(g *Group) []string {
	var out []string
	for {
		select {
		case c := <-g.Changes():
			out = append(out, c.Instance+" "+c.From.String()+"→"+c.To.String())
		default:
			return out
		}
	}
}

func TestGroupFailureStopsEveryInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		web1, web2 := &hub{}, &hub{}
		c1, c2 := testConfig(150), testConfig(150)
		c1.Name, c2.Name, c2.VRID = "web1", "web2", 52
		n1, n2 := web1.prepare("10.0.0.11", c1), web2.prepare("10.0.0.11", c2)
		g := newGroup([]*instance{n1.instance, n2.instance})
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		g.SetHealthy(true)
		time.Sleep(time.Second)
		synctest.Wait()
		n2.conn.failc <- errTest
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("the group ended without the instance's error")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("one instance failed and the group kept running")
		}
		if n1.addrs.has() || n2.addrs.has() {
			t.Errorf("VIPs left after the group failed: web1 %v, web2 %v", n1.addrs.has(), n2.addrs.has())
		}
	})
}

var errTest = io.ErrUnexpectedEOF
