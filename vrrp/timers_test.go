package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestTimerArithmetic(t *testing.T) {
	const ms, us = time.Millisecond, time.Microsecond
	tests := []struct {
		name      string
		version   int
		priority  uint8
		interval  time.Duration
		skew, mdi time.Duration
	}{
		// VRRPv3, RFC 5798 §6.1: whole centiseconds, division truncates.
		{"v3 prio 100 adv 1s: 15600/256 = 60cs", 3, 100, time.Second, 600 * ms, 3600 * ms},
		{"v3 prio 200 adv 1s: 5600/256 = 21cs", 3, 200, time.Second, 210 * ms, 3210 * ms},
		{"v3 prio 255 adv 1s: 100/256 = 0cs", 3, 255, time.Second, 0, 3000 * ms},
		{"v3 prio 1 adv 1s: 25500/256 = 99cs", 3, 1, time.Second, 990 * ms, 3990 * ms},
		{"v3 prio 100 adv 100ms: 1560/256 = 6cs", 3, 100, 100 * ms, 60 * ms, 360 * ms},
		{"v3 prio 254 adv 100ms: 20/256 = 0cs", 3, 254, 100 * ms, 0, 300 * ms},
		{"v3 prio 50 adv 250ms: 5150/256 = 20cs", 3, 50, 250 * ms, 200 * ms, 950 * ms},
		{"v3 prio 1 adv 40.95s: 1044225/256 = 4079cs", 3, 1, 40950 * ms, 40790 * ms, 163640 * ms},
		{"v3 interval truncates to centiseconds", 3, 100, 1005 * ms, 600 * ms, 3600 * ms},
		// VRRPv2, RFC 3768 §6.1: (256 − Priority)/256 seconds, exact.
		{"v2 prio 100 adv 1s", 2, 100, time.Second, 609375 * us, 3609375 * us},
		{"v2 prio 255 adv 1s", 2, 255, time.Second, 3906250, 3003906250},
		{"v2 prio 1 adv 1s", 2, 1, time.Second, 996093750, 3996093750},
		{"v2 prio 200 adv 3s: skew ignores the interval", 2, 200, 3 * time.Second, 218750 * us, 9218750 * us},
		{"v2 prio 100 adv 255s", 2, 100, 255 * time.Second, 609375 * us, 765609375 * us},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			skew := skewTime(tc.version, tc.priority, tc.interval)
			mdi := MasterDownInterval(tc.version, tc.priority, tc.interval)
			if skew != tc.skew || mdi != tc.mdi {
				t.Errorf("(-want +got):\n-skew=%v mdi=%v\n+skew=%v mdi=%v", tc.skew, tc.mdi, skew, mdi)
			}
		})
	}
}

// The simulation below wires Machines to each other through a fake LAN
// and a fake clock, so the rules of the table can be seen working
// together: who ends up master, and when the addresses move.

const simLatency = time.Millisecond

// simNames and simAddrs are the routers A and B; B has the higher address.
var (
	simNames = []string{"A", "B"}
	simAddrs = []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}
)

// simEvent is ev delivered to router node at simulated time at; crash
// instead makes the router vanish without a word, its addresses with it.
type simEvent struct {
	at    time.Duration
	node  int
	ev    event
	crash bool
}

func simBoot(node int, at time.Duration) []simEvent {
	return []simEvent{{at: at, node: node, ev: setHealthy{true}}, {at: at, node: node, ev: start{}}}
}

// simCheck is the expected picture at a moment: each router's state, a *
// for the one holding the addresses, e.g. "A=MASTER* B=BACKUP".
type simCheck struct {
	at   time.Duration
	want string
}

type simNode struct {
	m       *machine
	cfg     machineConfig
	vips    bool
	dead    bool
	stopped int // transitions to Stopped
}

type simPacket struct {
	at   time.Duration
	to   int
	advt advertReceived
}

type simLAN struct {
	now      time.Duration
	nodes    []*simNode
	inflight []simPacket
	lost     func(at time.Duration, from int, prio uint8) bool
	held     bool          // some router has held the addresses
	gap      time.Duration // total time nobody held them since
}

func newSimLAN(cfgs ...machineConfig) *simLAN {
	lan := &simLAN{}
	for i, c := range cfgs {
		c.PrimaryIP = simAddrs[i]
		lan.nodes = append(lan.nodes, &simNode{m: newMachine(c), cfg: c})
	}
	return lan
}

func (l *simLAN) handle(i int, ev event) {
	n := l.nodes[i]
	if n.dead {
		return
	}
	for _, a := range n.m.Handle(fsmT0.Add(l.now), ev) {
		switch a := a.(type) {
		case sendAdvert:
			l.send(i, a.Priority)
		case addVIPs:
			n.vips = true
		case removeVIPs:
			n.vips = false
		case stateChange:
			if a.To == Stopped {
				n.stopped++
			}
		}
	}
}

func (l *simLAN) send(from int, prio uint8) {
	if l.lost != nil && l.lost(l.now, from, prio) {
		return
	}
	for to := range l.nodes {
		if to != from {
			advt := advertReceived{Src: simAddrs[from], Priority: prio, Interval: l.nodes[from].cfg.Interval}
			l.inflight = append(l.inflight, simPacket{l.now + simLatency, to, advt})
		}
	}
}

// run advances the clock to until, delivering script events, packets and
// timeouts in time order.
func (l *simLAN) run(until time.Duration, script []simEvent) []simEvent {
	for {
		next, ok := l.next(until, script)
		if !ok {
			l.account(until)
			l.now = until
			return script
		}
		l.account(next)
		l.now = next
		for len(script) > 0 && script[0].at <= l.now {
			if e := script[0]; e.crash {
				l.nodes[e.node].dead, l.nodes[e.node].vips = true, false
			} else {
				l.handle(e.node, e.ev)
			}
			script = script[1:]
		}
		l.deliver()
		for i, n := range l.nodes {
			if d := n.m.Deadline(); !d.IsZero() && !d.After(fsmT0.Add(l.now)) {
				l.handle(i, timeout{})
			}
		}
	}
}

func (l *simLAN) deliver() {
	var later []simPacket
	for _, p := range l.inflight {
		if p.at <= l.now {
			l.handle(p.to, p.advt)
		} else {
			later = append(later, p)
		}
	}
	l.inflight = later
}

// next returns the earliest pending moment not after until.
func (l *simLAN) next(until time.Duration, script []simEvent) (time.Duration, bool) {
	next := until + 1
	if len(script) > 0 {
		next = min(next, script[0].at)
	}
	for _, p := range l.inflight {
		next = min(next, p.at)
	}
	for _, n := range l.nodes {
		if d := n.m.Deadline(); !d.IsZero() && !n.dead {
			next = min(next, d.Sub(fsmT0))
		}
	}
	return max(next, l.now), next <= until
}

// account adds the time up to t during which nobody held the addresses.
func (l *simLAN) account(t time.Duration) {
	holders := 0
	for _, n := range l.nodes {
		if n.vips {
			holders++
		}
	}
	if holders == 0 && l.held {
		l.gap += t - l.now
	}
	l.held = l.held || holders > 0
}

func (l *simLAN) picture() string {
	s := make([]string, len(l.nodes))
	for i, n := range l.nodes {
		s[i] = simNames[i] + "=" + n.m.State().String()
		if n.dead {
			s[i] = simNames[i] + "=dead"
		}
		if n.vips {
			s[i] += "*"
		}
	}
	return strings.Join(s, " ")
}

func simConfig(prio uint8, tweak ...func(*machineConfig)) machineConfig {
	c := fsmConfig()
	c.Priority = prio
	for _, f := range tweak {
		f(&c)
	}
	return c
}

func simScript(parts ...[]simEvent) []simEvent {
	var s []simEvent
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

func TestTwoRouters(t *testing.T) {
	const ms, sec = time.Millisecond, time.Second
	v2 := func(c *machineConfig) { c.Version = 2 }
	noPreempt := func(c *machineConfig) { c.Preempt = false }
	delay20 := func(c *machineConfig) { c.PreemptDelay = 20 * sec }
	both := simScript(simBoot(0, 0), simBoot(1, 0))
	tests := []struct {
		name   string
		a, b   machineConfig
		script []simEvent
		lost   func(at time.Duration, from int, prio uint8) bool
		checks []simCheck
		maxGap time.Duration // time without any holder after the first one
	}{
		{name: "higher priority wins a simultaneous start", a: simConfig(200), b: simConfig(100), script: both,
			checks: []simCheck{{3209 * ms, "A=BACKUP B=BACKUP"}, {3211 * ms, "A=MASTER* B=BACKUP"}, {60 * sec, "A=MASTER* B=BACKUP"}}},
		{name: "v3 equal priorities: both time out, higher address keeps it", a: simConfig(100), b: simConfig(100), script: both,
			checks: []simCheck{{3600*ms + simLatency/2, "A=MASTER* B=MASTER*"}, {3602 * ms, "A=BACKUP B=MASTER*"}, {60 * sec, "A=BACKUP B=MASTER*"}}},
		{name: "v2 equal priorities: higher address keeps it", a: simConfig(100, v2), b: simConfig(100, v2), script: both,
			checks: []simCheck{{60 * sec, "A=BACKUP B=MASTER*"}}},
		{name: "late higher priority preempts after its down interval", a: simConfig(100), b: simConfig(200),
			script: simScript(simBoot(0, 0), simBoot(1, 10*sec)),
			checks: []simCheck{{13209 * ms, "A=MASTER* B=BACKUP"}, {13212 * ms, "A=BACKUP B=MASTER*"}}},
		{name: "late higher priority without preempt stays backup", a: simConfig(100), b: simConfig(200, noPreempt),
			script: simScript(simBoot(0, 0), simBoot(1, 10*sec)), checks: []simCheck{{60 * sec, "A=MASTER* B=BACKUP"}}},
		{name: "preempt delay holds the takeover until 20s after start", a: simConfig(100), b: simConfig(200, delay20),
			script: simScript(simBoot(0, 0), simBoot(1, 10*sec)),
			checks: []simCheck{{30 * sec, "A=MASTER* B=BACKUP"}, {32 * sec, "A=MASTER* B=BACKUP"}, {34 * sec, "A=BACKUP B=MASTER*"}}},
		{name: "planned stop: backup takes over after Skew_Time, old master lets go an interval after hearing it",
			a: simConfig(200), b: simConfig(100), script: simScript(both, []simEvent{{at: 10 * sec, node: 0, ev: shutdown{}}}),
			checks: []simCheck{{10600 * ms, "A=MASTER* B=BACKUP"}, {10601*ms + simLatency/2, "A=MASTER* B=MASTER*"}, {11601 * ms, "A=MASTER* B=MASTER*"}, {11603 * ms, "A=STOP B=MASTER*"}}},
		{name: "planned stop, priority 0 lost: takeover within Master_Down_Interval, no gap",
			a: simConfig(200), b: simConfig(100), script: simScript(both, []simEvent{{at: 10 * sec, node: 0, ev: shutdown{}}}),
			lost:   func(_ time.Duration, from int, prio uint8) bool { return from == 0 && prio == 0 },
			checks: []simCheck{{12 * sec, "A=MASTER* B=BACKUP"}, {13602 * ms, "A=MASTER* B=MASTER*"}, {14 * sec, "A=STOP B=MASTER*"}}},
		{name: "planned stop with a sick backup: old master lets go after StopWait",
			a: simConfig(200), b: simConfig(100), script: simScript(simBoot(0, 0), []simEvent{{at: 0, node: 1, ev: start{}}, {at: 10 * sec, node: 0, ev: shutdown{}}}),
			checks: []simCheck{{13999 * ms, "A=MASTER* B=BACKUP"}, {14 * sec, "A=STOP B=BACKUP"}, {60 * sec, "A=STOP B=BACKUP"}}, maxGap: 46 * sec},
		{name: "fault yields at once: backup takes over after Skew_Time, master returns by preempting",
			a: simConfig(200), b: simConfig(100), script: simScript(both, []simEvent{{at: 10 * sec, node: 0, ev: setFault{true}}, {at: 20 * sec, node: 0, ev: setFault{false}}}),
			checks: []simCheck{{10602 * ms, "A=FAULT B=MASTER*"}, {20 * sec, "A=BACKUP B=MASTER*"}, {23211 * ms, "A=MASTER* B=BACKUP"}}, maxGap: 601 * ms},
		{name: "sick backup never takes over, then at once when healthy",
			a: simConfig(200), b: simConfig(100), script: simScript(both, []simEvent{{at: 5 * sec, node: 1, ev: setHealthy{false}}, {at: 10 * sec, node: 0, crash: true}, {at: 30 * sec, node: 1, ev: setHealthy{true}}}),
			checks: []simCheck{{29 * sec, "A=dead B=BACKUP"}, {30 * sec, "A=dead B=MASTER*"}}, maxGap: 20 * sec},
		{name: "split brain heals: both masters, then the higher priority keeps it",
			a: simConfig(200), b: simConfig(100), script: both,
			lost:   func(at time.Duration, _ int, _ uint8) bool { return at < 10*sec },
			checks: []simCheck{{9 * sec, "A=MASTER* B=MASTER*"}, {11 * sec, "A=MASTER* B=BACKUP"}, {60 * sec, "A=MASTER* B=BACKUP"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lan := newSimLAN(tc.a, tc.b)
			lan.lost = tc.lost
			script := tc.script
			for _, c := range tc.checks {
				script = lan.run(c.at, script)
				if got := lan.picture(); got != c.want {
					t.Errorf("at %v (-want +got):\n-%s\n+%s", c.at, c.want, got)
				}
			}
			for i, n := range lan.nodes {
				if n.stopped > 1 {
					t.Errorf("%s entered STOP %d times, want at most once", simNames[i], n.stopped)
				}
			}
			if lan.gap > tc.maxGap {
				t.Errorf("nobody held the addresses for %v, want at most %v", lan.gap, tc.maxGap)
			}
		})
	}
}
