package vrrp

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// TestConnKeepalived runs keepalived 2.2 as the peer of a Conn. keepalived,
// a BACKUP of priority 100, stays BACKUP while we advertise priority 200:
// it accepts our adverts, or it would take over after Master_Down_Interval.
// Once we stop it becomes MASTER, and our Conn accepts its adverts without
// a single drop; our 200 then sends it back to BACKUP. With v2, adverts
// with a wrong password leave it MASTER, and it says why.
func TestConnKeepalived(t *testing.T) {
	if testing.Short() {
		lab.Skip(t, "-short: keepalived's timers take seconds")
	}
	lab.RequireRoot(t)
	connNeed(t, "keepalived")
	tests := []struct {
		name     string
		version  int
		unicast  bool
		pass     string
		interval time.Duration
	}{
		{"v3 multicast", 3, false, "", 100 * time.Millisecond},
		{"v3 unicast", 3, true, "", 100 * time.Millisecond},
		{"v2 password", 2, false, "secret12", time.Second},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := lab.New(t, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, byte(20 + i), 0}), 24))
			a, k := l.AddNode("a", l.Host(11)), l.AddNode("k", l.Host(21))
			vip := l.Host(100)
			cfg := connConfig{VRID: 91, Version: tc.version, Interval: tc.interval, AuthPass: tc.pass,
				VIPs: []netip.Addr{vip.Addr()}}
			want := Advert{Version: tc.version, VRID: 91, Priority: 100, Interval: tc.interval,
				Addrs: cfg.VIPs, Src: k.Addr.Addr(), Dst: defaultGroup}
			conf := connKeepalivedConf(tc.version, tc.interval, tc.pass, vip)
			if tc.unicast {
				cfg.Peers = []netip.Addr{k.Addr.Addr()}
				want.Dst = a.Addr.Addr()
				conf += "unicast_src_ip " + k.Addr.Addr().String() + "\nunicast_peer {\n" + a.Addr.Addr().String() + "\n}\n"
			}
			if tc.pass != "" {
				want.AuthType, want.AuthData = 1, authPassword(tc.pass)
			}
			c := connOpen(t, a, cfg)
			rx := connReceive(t, c)
			stop := connAdvertise(t, c, tc.interval)
			ka := connKeepalived(t, k, conf+"}\n")
			ka.waitState(t, "BACKUP")
			// Real time: keepalived's timers run on it. 4 intervals and a
			// second are more than Master_Down_Interval (3.61 intervals).
			time.Sleep(4*tc.interval + time.Second)
			if s := ka.states(); len(s) != 1 || k.HasAddr(vip.Addr()) {
				t.Fatalf("keepalived went %v while we advertised 200: it dropped our adverts", s)
			}
			stop()
			ka.waitState(t, "MASTER")
			if d := pktDiff(want, *rx.from(t, k.Addr.Addr())); d != "" {
				t.Errorf("keepalived's advert (-want +got):\n%s", d)
			}
			for r, n := range c.Drops() {
				if n != 0 {
					t.Errorf("%d of keepalived's adverts dropped for %s", n, r)
				}
			}
			if tc.pass != "" {
				wrong := cfg
				wrong.AuthPass = "wrong"
				stopWrong := connAdvertise(t, connOpen(t, a, wrong), tc.interval)
				lab.WaitFor(t, 5*time.Second, "keepalived to reject the password", func() bool {
					return strings.Contains(ka.out.String(), "received an invalid passwd")
				})
				stopWrong()
				if s := ka.states(); s[len(s)-1] != "MASTER" {
					t.Errorf("keepalived went %v on a wrong password", s)
				}
			}
			defer connAdvertise(t, c, tc.interval)()
			ka.waitState(t, "BACKUP")
			lab.WaitFor(t, 5*time.Second, "keepalived to drop the VIP", func() bool { return !k.HasAddr(vip.Addr()) })
		})
	}
}

// connKeepalivedConf returns a keepalived configuration for VRID 91 as a
// BACKUP of priority 100, its vrrp_instance block left open.
func connKeepalivedConf(version int, interval time.Duration, pass string, vip netip.Prefix) string {
	conf := fmt.Sprintf(`global_defs {
router_id vvconn
script_user root
}
vrrp_instance VI_CONN {
version %d
state BACKUP
interface %s
virtual_router_id 91
priority 100
advert_int %g
virtual_ipaddress {
%s
}
notify NOTIFY
`, version, lab.Iface, interval.Seconds(), vip)
	if pass != "" {
		conf += "authentication {\nauth_type PASS\nauth_pass " + pass + "\n}\n"
	}
	return conf
}

// connAdvertise sends a priority-200 advert on c every interval until the
// returned function is called.
func connAdvertise(t *testing.T, c *vrrpConn, interval time.Duration) (stop func()) {
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			if err := c.Send(200); err != nil {
				t.Errorf("Send: %v", err)
				return
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(quit); <-done }) }
	t.Cleanup(stop)
	return stop
}

// connKA is a keepalived running in a lab node.
type connKA struct {
	out   connLog // its console log
	state string  // the file its notify script appends each state to
}

// connKeepalived starts keepalived with conf (NOTIFY stands for the notify
// script) in node n, with pid files of its own, and stops it at cleanup.
func connKeepalived(t *testing.T, n *lab.Node, conf string) *connKA {
	dir := t.TempDir()
	ka := &connKA{state: filepath.Join(dir, "state")}
	notify := filepath.Join(dir, "notify.sh")
	connMust(t, os.WriteFile(notify, []byte("#!/bin/sh\necho \"$3\" >>"+ka.state+"\n"), 0o755))
	path := filepath.Join(dir, "keepalived.conf")
	connMust(t, os.WriteFile(path, []byte(strings.ReplaceAll(conf, "NOTIFY", notify)), 0o644))
	cmd := n.Command("keepalived", "-n", "-l", "-D", "-G", "-P", "-f", path, "-p", filepath.Join(dir, "ka.pid"),
		"-r", filepath.Join(dir, "vrrp.pid"), "-c", filepath.Join(dir, "chk.pid"))
	cmd.Stdout, cmd.Stderr = &ka.out, &ka.out
	connMust(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("keepalived's log:\n%s", ka.out.String())
		}
	})
	return ka
}

// states returns the states keepalived's notify script has seen, in order.
func (ka *connKA) states() []string {
	b, _ := os.ReadFile(ka.state)
	return strings.Fields(string(b))
}

func (ka *connKA) waitState(t *testing.T, s string) {
	t.Helper()
	lab.WaitFor(t, 10*time.Second, "keepalived to become "+s, func() bool {
		st := ka.states()
		return len(st) > 0 && st[len(st)-1] == s
	})
}

// connNeed returns the path of a program the test needs. Under CI=true a
// missing one fails the test; elsewhere it skips.
func connNeed(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		p, err = exec.LookPath("/usr/sbin/" + name)
	}
	if err != nil {
		lab.Skip(t, "%s not installed", name)
	}
	return p
}
