package vrrp

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// fsmT0 is when every table row's clock starts; deadlines are offsets.
var fsmT0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// noDeadline stands for the zero Deadline in a table row.
const noDeadline = time.Duration(-1)

// fsmStep is one event delivered at fsmT0+at.
type fsmStep struct {
	at time.Duration
	ev event
}

type fsmCase struct {
	name     string
	cfg      func(*machineConfig)
	given    []fsmStep // brings the machine to the state under test
	when     fsmStep
	state    State
	acts     string        // the actions, space-separated String forms
	deadline time.Duration // since fsmT0, or noDeadline
	prio     uint8         // checked when non-zero
	master   string        // checked when non-empty; "none" is no master
}

// fsmCases is the state machine's rule table. Every machine starts from
// VRRPv3, priority 100, advert 1 s (Skew_Time 600 ms, Master_Down_Interval
// 3.6 s), preempt on, address 10.0.0.2, StopWait 4 s.
func fsmCases() []fsmCase {
	const (
		ms   = time.Millisecond
		sec  = time.Second
		none = noDeadline
	)
	var (
		lo   = netip.MustParseAddr("10.0.0.1") // a peer with a lower address
		self = netip.MustParseAddr("10.0.0.2")
		hi   = netip.MustParseAddr("10.0.0.3") // a peer with a higher address
	)
	at := func(d time.Duration, ev event) fsmStep { return fsmStep{d, ev} }
	adv := func(src netip.Addr, prio uint8, interval time.Duration) advertReceived {
		return advertReceived{Src: src, Priority: prio, Interval: interval}
	}
	conflict := addressConflict{VIP: netip.MustParseAddr("10.0.0.100"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}}
	seq := func(base []fsmStep, more ...fsmStep) []fsmStep {
		return append(append([]fsmStep(nil), base...), more...)
	}
	// Starting points. backup's down timer runs out at 3.6 s; master
	// became master then, so its advert timer fires at 4.6 s.
	var (
		backup     = []fsmStep{at(0, setHealthy{true}), at(0, start{})}
		sickBackup = []fsmStep{at(0, start{})}
		master     = seq(backup, at(3600*ms, timeout{}))
		stopping   = seq(master, at(4*sec, shutdown{}))
		owner      = func(c *machineConfig) { c.Priority = 255 }
	)
	return []fsmCase{
		// Init and Start (RFC 5798 §6.4.1).
		{name: "init: start healthy → backup, down timer 3.6s", given: []fsmStep{at(0, setHealthy{true})}, when: at(0, start{}),
			state: Backup, acts: "Transition(INIT->BACKUP)", deadline: 3600 * ms, master: "none"},
		{name: "init: start sick → backup", when: at(0, start{}), state: Backup, acts: "Transition(INIT->BACKUP)", deadline: 3600 * ms},
		{name: "init: owner starts healthy → master at once", cfg: owner, given: []fsmStep{at(0, setHealthy{true})}, when: at(0, start{}),
			state: Master, acts: "Transition(INIT->MASTER) SendAdvert(255) AddVIPs Announce", deadline: sec, master: "10.0.0.2"},
		{name: "init: owner starts sick → backup, down timer 3s", cfg: owner, when: at(0, start{}),
			state: Backup, acts: "Transition(INIT->BACKUP)", deadline: 3 * sec},
		{name: "init: start with fault set → fault", given: []fsmStep{at(0, setFault{true})}, when: at(0, start{}),
			state: Fault, acts: "Transition(INIT->FAULT)", deadline: none},
		{name: "init: advert ignored", when: at(0, adv(hi, 150, sec)), state: Init, deadline: none, master: "none"},
		{name: "init: timeout ignored", when: at(0, timeout{}), state: Init, deadline: none},
		{name: "init: health recorded only", when: at(0, setHealthy{true}), state: Init, deadline: none},
		{name: "init: priority recorded only", when: at(0, setPriority{150}), state: Init, deadline: none, prio: 150},
		{name: "init: shutdown → stop", when: at(0, shutdown{}), state: Stopped, acts: "Transition(INIT->STOP)", deadline: none},
		{name: "start twice: second ignored", given: backup, when: at(sec, start{}), state: Backup, deadline: 3600 * ms},

		// Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time (RFC 5798 §6.1, RFC 3768 §6.1).
		{name: "skew: v3 prio 200 adv 1s → 3.21s", cfg: func(c *machineConfig) { c.Priority = 200 }, given: backup[:1], when: at(0, start{}),
			state: Backup, acts: "Transition(INIT->BACKUP)", deadline: 3210 * ms},
		{name: "skew: v3 prio 1 adv 1s → 3.99s", cfg: func(c *machineConfig) { c.Priority = 1 }, given: backup[:1], when: at(0, start{}),
			state: Backup, acts: "Transition(INIT->BACKUP)", deadline: 3990 * ms},
		{name: "skew: v3 prio 254 adv 100ms → 300ms (skew truncates to 0)", cfg: func(c *machineConfig) { c.Priority, c.Interval = 254, 100*ms },
			when: at(0, start{}), state: Backup, acts: "Transition(INIT->BACKUP)", deadline: 300 * ms},
		{name: "skew: v2 prio 100 adv 1s → 3.609375s", cfg: func(c *machineConfig) { c.Version = 2 }, when: at(0, start{}),
			state: Backup, acts: "Transition(INIT->BACKUP)", deadline: 3609375 * time.Microsecond},
		{name: "skew: v2 prio 200 adv 3s → 9.21875s", cfg: func(c *machineConfig) { c.Version, c.Priority, c.Interval = 2, 200, 3*sec },
			when: at(0, start{}), state: Backup, acts: "Transition(INIT->BACKUP)", deadline: 9218750 * time.Microsecond},

		// Backup receives an advert (RFC 5798 §6.4.2).
		{name: "backup: higher priority resets down timer", given: backup, when: at(sec, adv(hi, 150, sec)),
			state: Backup, deadline: 4600 * ms, master: "10.0.0.3"},
		{name: "backup: equal priority resets down timer", given: backup, when: at(sec, adv(lo, 100, sec)), state: Backup, deadline: 4600 * ms},
		{name: "backup: lower priority, preempt on → discarded, timer runs on", given: backup, when: at(sec, adv(lo, 50, sec)),
			state: Backup, deadline: 3600 * ms, master: "10.0.0.1"},
		{name: "backup: lower priority, preempt off → resets", cfg: func(c *machineConfig) { c.Preempt = false }, given: backup,
			when: at(sec, adv(lo, 50, sec)), state: Backup, deadline: 4600 * ms},
		{name: "backup: lower priority within preempt delay → resets", cfg: func(c *machineConfig) { c.PreemptDelay = 10 * sec }, given: backup,
			when: at(sec, adv(lo, 50, sec)), state: Backup, deadline: 4600 * ms},
		{name: "backup: lower priority once preempt delay passed → discarded", cfg: func(c *machineConfig) { c.PreemptDelay = 2 * sec },
			given: seq(backup, at(sec, adv(lo, 50, sec))), when: at(2*sec, adv(lo, 50, sec)), state: Backup, deadline: 4600 * ms},
		{name: "backup: priority 0 → down timer = Skew_Time 600ms", given: seq(backup, at(500*ms, adv(hi, 150, sec))), when: at(sec, adv(hi, 0, sec)),
			state: Backup, deadline: 1600 * ms, master: "none"},
		{name: "backup: priority 0 from another router than the master → ignored", given: seq(backup, at(500*ms, adv(hi, 150, sec))),
			when: at(sec, adv(lo, 0, sec)), state: Backup, deadline: 4100 * ms, master: "10.0.0.3"},
		{name: "backup: priority 0 with no master known → Skew_Time", given: backup, when: at(sec, adv(lo, 0, sec)),
			state: Backup, deadline: 1600 * ms, master: "none"},
		{name: "backup: priority 0 after the master left → Skew_Time", given: seq(backup, at(500*ms, adv(hi, 150, sec)), at(sec, adv(hi, 0, sec))),
			when: at(1100*ms, adv(lo, 0, sec)), state: Backup, deadline: 1700 * ms, master: "none"},
		{name: "backup v3: master's shorter 250ms, first advert → 3×250ms+150ms, not adopted", given: backup, when: at(sec, adv(hi, 150, 250*ms)),
			state: Backup, acts: "IntervalDiffers(10.0.0.3 250ms 1)", deadline: 1900 * ms},
		{name: "backup v3: priority 0 skew from adopted interval → 150ms", given: seq(backup, at(sec, adv(hi, 150, 250*ms)),
			at(1250*ms, adv(hi, 150, 250*ms)), at(1500*ms, adv(hi, 150, 250*ms))),
			when: at(1600*ms, adv(hi, 0, 250*ms)), state: Backup, deadline: 1750 * ms},
		{name: "backup v3: priority 0 before adoption → skew from own interval, 600ms", given: seq(backup, at(sec, adv(hi, 150, 250*ms))),
			when: at(1250*ms, adv(hi, 0, 250*ms)), state: Backup, deadline: 1850 * ms},
		{name: "backup v2: keeps own interval", cfg: func(c *machineConfig) { c.Version = 2 }, given: backup,
			when: at(sec, adv(hi, 150, 250*ms)), state: Backup, deadline: 4609375 * time.Microsecond},
		{name: "backup v2: keeps own interval after three adverts of another", cfg: func(c *machineConfig) { c.Version = 2 },
			given: seq(backup, at(sec, adv(hi, 150, 250*ms)), at(1250*ms, adv(hi, 150, 250*ms))),
			when:  at(1500*ms, adv(hi, 150, 250*ms)), state: Backup, deadline: 5109375 * time.Microsecond},
		{name: "backup: priority 0 → Skew_Time of the effective priority (200: 210ms)",
			given: seq(backup, at(500*ms, adv(hi, 250, sec)), at(700*ms, setPriority{200})),
			when:  at(sec, adv(hi, 0, sec)), state: Backup, deadline: 1210 * ms, master: "none"},
		{name: "backup, preempt off: another interval adopted after three adverts too", cfg: func(c *machineConfig) { c.Preempt = false },
			given: seq(backup, at(sec, adv(lo, 50, 2*sec)), at(3*sec, adv(lo, 50, 2*sec))),
			when:  at(5*sec, adv(lo, 50, 2*sec)), state: Backup, deadline: 12210 * ms, master: "10.0.0.1"},
		{name: "backup: down timer fires → master, advert before VIPs", given: backup, when: at(3600*ms, timeout{}),
			state: Master, acts: "Transition(BACKUP->MASTER) SendAdvert(100) AddVIPs Announce", deadline: 4600 * ms, master: "10.0.0.2"},
		{name: "backup: timeout before deadline ignored", given: backup, when: at(3*sec, timeout{}), state: Backup, deadline: 3600 * ms},

		// Health gates promotion only.
		{name: "sick backup: down timer fires → stays backup, no timer", given: seq(sickBackup, at(sec, adv(hi, 150, sec))),
			when: at(4600*ms, timeout{}), state: Backup, deadline: none, master: "none"},
		{name: "sick backup, master down, healthy → master at once", given: seq(sickBackup, at(3600*ms, timeout{})), when: at(5*sec, setHealthy{true}),
			state: Master, acts: "Transition(BACKUP->MASTER) SendAdvert(100) AddVIPs Announce", deadline: 6 * sec},
		{name: "sick backup, master down, advert re-arms timer", given: seq(sickBackup, at(3600*ms, timeout{})), when: at(5*sec, adv(hi, 150, sec)),
			state: Backup, deadline: 8600 * ms},
		{name: "sick backup, healthy with timer running → waits", given: sickBackup, when: at(sec, setHealthy{true}), state: Backup, deadline: 3600 * ms},
		{name: "sick owner backup, healthy → master at once", cfg: owner, given: sickBackup, when: at(sec, setHealthy{true}),
			state: Master, acts: "Transition(BACKUP->MASTER) SendAdvert(255) AddVIPs Announce", deadline: 2 * sec},
		{name: "master: sick → stays master", given: master, when: at(4*sec, setHealthy{false}), state: Master, deadline: 4600 * ms},
		{name: "sick master keeps advertising", given: seq(master, at(4*sec, setHealthy{false})), when: at(4600*ms, timeout{}),
			state: Master, acts: "SendAdvert(100)", deadline: 5600 * ms},

		// The address owner (priority 255) always preempts.
		{name: "owner: equal priority from higher address → backup", cfg: owner, given: backup, when: at(500*ms, adv(hi, 255, sec)),
			state: Backup, acts: "Transition(MASTER->BACKUP) SplitBrain(10.0.0.3) RemoveVIPs HandOver(10.0.0.3)", deadline: 3500 * ms},
		{name: "owner backup: lower priority → master at once", cfg: owner, given: seq(backup, at(500*ms, adv(hi, 255, sec))),
			when: at(sec, adv(lo, 100, sec)), state: Master, acts: "Transition(BACKUP->MASTER) SendAdvert(255) AddVIPs Announce", deadline: 2 * sec},
		{name: "owner backup, preempt off: still preempts", cfg: func(c *machineConfig) { owner(c); c.Preempt = false },
			given: seq(backup, at(500*ms, adv(hi, 255, sec))), when: at(sec, adv(lo, 100, sec)),
			state: Master, acts: "Transition(BACKUP->MASTER) SendAdvert(255) AddVIPs Announce", deadline: 2 * sec},

		// Master (RFC 5798 §6.4.3).
		{name: "master: advert timer → advert", given: master, when: at(4600*ms, timeout{}), state: Master, acts: "SendAdvert(100)", deadline: 5600 * ms},
		{name: "master: late timer → next from now", given: master, when: at(4900*ms, timeout{}), state: Master, acts: "SendAdvert(100)", deadline: 5900 * ms},
		{name: "master: early timer ignored", given: master, when: at(4*sec, timeout{}), state: Master, deadline: 4600 * ms},
		{name: "master: priority 0 → advert at once, timer reset", given: master, when: at(4*sec, adv(lo, 0, sec)),
			state: Master, acts: "SendAdvert(100)", deadline: 5 * sec},
		{name: "master: higher priority → backup, VIPs removed, handed over", given: master, when: at(4*sec, adv(lo, 150, sec)),
			state: Backup, acts: "Transition(MASTER->BACKUP) SplitBrain(10.0.0.1) RemoveVIPs HandOver(10.0.0.1)", deadline: 7600 * ms, master: "10.0.0.1"},
		{name: "master v3: higher priority at 500ms → down timer 3×500ms+300ms", given: master, when: at(4*sec, adv(lo, 150, 500*ms)),
			state: Backup, acts: "Transition(MASTER->BACKUP) SplitBrain(10.0.0.1) RemoveVIPs HandOver(10.0.0.1) IntervalDiffers(10.0.0.1 500ms 1)",
			deadline: 5800 * ms},
		{name: "master: equal priority, higher address → backup", given: master, when: at(4*sec, adv(hi, 100, sec)),
			state: Backup, acts: "Transition(MASTER->BACKUP) SplitBrain(10.0.0.3) RemoveVIPs HandOver(10.0.0.3)", deadline: 7600 * ms},
		{name: "master: equal priority, lower address → split brain, advert and announce", given: master, when: at(4*sec, adv(lo, 100, sec)),
			state: Master, acts: "SplitBrain(10.0.0.1) SendAdvert(100) Reannounce", deadline: 5 * sec},
		{name: "master: lower priority → split brain, advert and announce", given: master, when: at(4*sec, adv(hi, 50, sec)),
			state: Master, acts: "SplitBrain(10.0.0.3) SendAdvert(100) Reannounce", deadline: 5 * sec, master: "10.0.0.2"},
		{name: "master: own address and priority ignored", given: master, when: at(4*sec, adv(self, 100, sec)), state: Master, deadline: 4600 * ms},
		{name: "master: addresses compare unsigned: 200.0.0.1 > 100.0.0.1", cfg: func(c *machineConfig) { c.PrimaryIP = netip.MustParseAddr("100.0.0.1") },
			given: master, when: at(4*sec, adv(netip.MustParseAddr("200.0.0.1"), 100, sec)),
			state: Backup, acts: "Transition(MASTER->BACKUP) SplitBrain(200.0.0.1) RemoveVIPs HandOver(200.0.0.1)", deadline: 7600 * ms},

		// Re-addressed (SetPrimary): the tie-break and the master's address follow.
		{name: "master: re-addressed 10.0.0.4 → an equal priority from 10.0.0.3 now loses", given: seq(master, at(4*sec, setPrimary{netip.MustParseAddr("10.0.0.4")})),
			when: at(4100*ms, adv(hi, 100, sec)), state: Master, acts: "SplitBrain(10.0.0.3) SendAdvert(100) Reannounce", deadline: 5100 * ms, master: "10.0.0.4"},
		{name: "master: re-addressed 10.0.0.0 → an equal priority from 10.0.0.1 now wins", given: seq(master, at(4*sec, setPrimary{netip.MustParseAddr("10.0.0.0")})),
			when: at(4100*ms, adv(lo, 100, sec)), state: Backup, acts: "Transition(MASTER->BACKUP) SplitBrain(10.0.0.1) RemoveVIPs HandOver(10.0.0.1)", deadline: 7700 * ms},
		{name: "master: re-addressed → nothing to do, master is the new address", given: master, when: at(4*sec, setPrimary{netip.MustParseAddr("10.0.0.4")}),
			state: Master, deadline: 4600 * ms, master: "10.0.0.4"},
		{name: "backup: re-addressed → the known master stays", given: seq(backup, at(sec, adv(hi, 150, sec))), when: at(2*sec, setPrimary{netip.MustParseAddr("10.0.0.4")}),
			state: Backup, deadline: 4600 * ms, master: "10.0.0.3"},
		{name: "backup: re-addressed, then the down timer → master with the new address", given: seq(backup, at(sec, setPrimary{netip.MustParseAddr("10.0.0.4")})),
			when: at(3600*ms, timeout{}), state: Master, acts: "Transition(BACKUP->MASTER) SendAdvert(100) AddVIPs Announce", deadline: 4600 * ms, master: "10.0.0.4"},

		// No amplification: a master answers at most once per Advertisement_Interval.
		{name: "master: lower priority again within the interval → suppressed, timer runs on", given: seq(master, at(4*sec, adv(hi, 50, sec))),
			when: at(4500*ms, adv(hi, 50, sec)), state: Master, acts: "SplitBrain(10.0.0.3) AnswerSuppressed(10.0.0.3)", deadline: 5 * sec},
		{name: "master: lower priority one interval after the answer → answered", given: seq(master, at(4*sec, adv(hi, 50, sec)), at(4500*ms, adv(hi, 50, sec))),
			when: at(5*sec, adv(hi, 50, sec)), state: Master, acts: "SplitBrain(10.0.0.3) SendAdvert(100) Reannounce", deadline: 6 * sec},
		{name: "master: priority 0 again within the interval → suppressed", given: seq(master, at(4*sec, adv(lo, 0, sec))),
			when: at(4999*ms, adv(lo, 0, sec)), state: Master, acts: "AnswerSuppressed(10.0.0.1)", deadline: 5 * sec},
		{name: "master: priority 0 right after a split-brain answer → suppressed", given: seq(master, at(4*sec, adv(hi, 50, sec))),
			when: at(4100*ms, adv(lo, 0, sec)), state: Master, acts: "AnswerSuppressed(10.0.0.1)", deadline: 5 * sec},
		{name: "master: suppressed answer leaves the advert timer alone, its advert announces", given: seq(master, at(4*sec, adv(hi, 50, sec)), at(4500*ms, adv(hi, 50, sec))),
			when: at(5*sec, timeout{}), state: Master, acts: "SendAdvert(100) Reannounce", deadline: 6 * sec},
		{name: "master: the advert that answered counts as an answer", given: seq(master, at(4*sec, adv(hi, 50, sec)), at(4500*ms, adv(hi, 50, sec)), at(5*sec, timeout{})),
			when: at(5001*ms, adv(hi, 50, sec)), state: Master, acts: "SplitBrain(10.0.0.3) AnswerSuppressed(10.0.0.3)", deadline: 6 * sec},
		{name: "master: nothing owed after that advert", given: seq(master, at(4*sec, adv(hi, 50, sec)), at(4500*ms, adv(hi, 50, sec)), at(5*sec, timeout{})),
			when: at(6*sec, timeout{}), state: Master, acts: "SendAdvert(100)", deadline: 7 * sec},
		{name: "master: suppressed priority 0 owes no announcement", given: seq(master, at(4*sec, adv(lo, 0, sec)), at(4500*ms, adv(lo, 0, sec))),
			when: at(5*sec, timeout{}), state: Master, acts: "SendAdvert(100)", deadline: 6 * sec},
		{name: "master: the advert that answered priority 0 counts as an answer", given: seq(master, at(4*sec, adv(lo, 0, sec)), at(4500*ms, adv(lo, 0, sec)),
			at(5*sec, timeout{})), when: at(5*sec, adv(lo, 0, sec)), state: Master, acts: "AnswerSuppressed(10.0.0.1)", deadline: 6 * sec},
		{name: "master: a plain advert is no answer", given: seq(master, at(4*sec, adv(lo, 0, sec)), at(5*sec, timeout{})),
			when: at(5001*ms, adv(lo, 0, sec)), state: Master, acts: "SendAdvert(100)", deadline: 6001 * ms},
		{name: "master: owed announcement paid by an answer in time", given: seq(master, at(4*sec, adv(hi, 50, sec)), at(4500*ms, adv(hi, 50, sec)),
			at(5*sec, adv(hi, 50, sec))), when: at(6*sec, timeout{}), state: Master, acts: "SendAdvert(100)", deadline: 7 * sec},
		{name: "master: a new term owes nothing", given: seq(master, at(4*sec, adv(hi, 50, sec)), at(4500*ms, adv(hi, 50, sec)), at(4600*ms, adv(lo, 150, sec)),
			at(8200*ms, timeout{})), when: at(9200*ms, timeout{}), state: Master, acts: "SendAdvert(100)", deadline: 10200 * ms},
		{name: "master: clock stepped back before the last answer → answered", given: seq(master, at(4*sec, adv(hi, 50, sec))),
			when: at(3900*ms, adv(hi, 50, sec)), state: Master, acts: "SplitBrain(10.0.0.3) SendAdvert(100) Reannounce", deadline: 4900 * ms},
		{name: "master: a new term answers at once", given: seq(master, at(4*sec, adv(hi, 50, sec)), at(4100*ms, adv(lo, 150, sec)), at(7700*ms, timeout{})),
			when: at(7750*ms, adv(hi, 50, sec)), state: Master, acts: "SplitBrain(10.0.0.3) SendAdvert(100) Reannounce", deadline: 8750 * ms},

		// One forged advert must not silence the VIP: an interval is adopted after 3 in a row.
		{name: "backup: forged 254 at 40.95s → down timer at most own MDI + 1s", given: backup, when: at(sec, adv(hi, 254, 4095*centisecond)),
			state: Backup, acts: "IntervalDiffers(10.0.0.3 40.95s 1)", deadline: 5600 * ms, master: "10.0.0.3"},
		{name: "master: forged 254 at 40.95s → steps down, back within own MDI + 1s", given: master, when: at(4*sec, adv(hi, 254, 4095*centisecond)),
			state: Backup, acts: "Transition(MASTER->BACKUP) SplitBrain(10.0.0.3) RemoveVIPs HandOver(10.0.0.3) IntervalDiffers(10.0.0.3 40.95s 1)",
			deadline: 8600 * ms},
		{name: "backup: forged master silent → takes over at own MDI + 1s", given: seq(backup, at(sec, adv(hi, 254, 4095*centisecond))),
			when: at(5600*ms, timeout{}), state: Master, acts: "Transition(BACKUP->MASTER) SendAdvert(100) AddVIPs Announce", deadline: 6600 * ms},
		{name: "backup: second advert at 2s → still bounded", given: seq(backup, at(sec, adv(hi, 150, 2*sec))),
			when: at(3*sec, adv(hi, 150, 2*sec)), state: Backup, acts: "IntervalDiffers(10.0.0.3 2s 2)", deadline: 7600 * ms},
		{name: "backup: third advert at 2s in a row → adopted, 3×2s+1.21s", given: seq(backup, at(sec, adv(hi, 150, 2*sec)), at(3*sec, adv(hi, 150, 2*sec))),
			when: at(5*sec, adv(hi, 150, 2*sec)), state: Backup, deadline: 12210 * ms},
		{name: "backup: adopted interval kept by the next advert", given: seq(backup, at(sec, adv(hi, 150, 2*sec)), at(3*sec, adv(hi, 150, 2*sec)),
			at(5*sec, adv(hi, 150, 2*sec))), when: at(7*sec, adv(hi, 150, 2*sec)), state: Backup, deadline: 14210 * ms},
		{name: "backup: our interval in between restarts the count", given: seq(backup, at(sec, adv(hi, 150, 2*sec)), at(2*sec, adv(hi, 150, sec))),
			when: at(3*sec, adv(hi, 150, 2*sec)), state: Backup, acts: "IntervalDiffers(10.0.0.3 2s 1)", deadline: 7600 * ms},
		{name: "backup: another interval restarts the count", given: seq(backup, at(sec, adv(hi, 150, 2*sec)), at(2*sec, adv(hi, 150, 3*sec))),
			when: at(3*sec, adv(hi, 150, 2*sec)), state: Backup, acts: "IntervalDiffers(10.0.0.3 2s 1)", deadline: 7600 * ms},
		{name: "backup: another sender restarts the count", given: seq(backup, at(sec, adv(hi, 150, 2*sec)), at(2*sec, adv(hi, 150, 2*sec))),
			when: at(3*sec, adv(lo, 150, 2*sec)), state: Backup, acts: "IntervalDiffers(10.0.0.1 2s 1)", deadline: 7600 * ms},
		{name: "backup at 100ms: keepalived at 1s, second advert → 1.36s, its next comes in 1s",
			cfg: func(c *machineConfig) { c.Interval = 100 * ms }, given: seq(backup, at(200*ms, adv(hi, 150, sec))),
			when: at(1200*ms, adv(hi, 150, sec)), state: Backup, acts: "IntervalDiffers(10.0.0.3 1s 2)", deadline: 2560 * ms},
		{name: "backup at 100ms: keepalived at 1s, third advert → adopted, 3.6s",
			cfg: func(c *machineConfig) { c.Interval = 100 * ms }, given: seq(backup, at(200*ms, adv(hi, 150, sec)), at(1200*ms, adv(hi, 150, sec))),
			when: at(2200*ms, adv(hi, 150, sec)), state: Backup, deadline: 5800 * ms},
		{name: "backup: priority 0 leaves the count alone", given: seq(backup, at(sec, adv(hi, 150, 2*sec)), at(3*sec, adv(hi, 150, 2*sec)), at(4*sec, adv(hi, 0, 2*sec))),
			when: at(4100*ms, adv(hi, 150, 2*sec)), state: Backup, deadline: 11310 * ms},
		{name: "backup: lower priority discarded, not counted", given: seq(backup, at(sec, adv(lo, 50, 2*sec)), at(2*sec, adv(lo, 50, 2*sec))),
			when: at(3*sec, adv(hi, 150, 2*sec)), state: Backup, acts: "IntervalDiffers(10.0.0.3 2s 1)", deadline: 7600 * ms},
		{name: "fault cleared → count starts over", given: seq(backup, at(sec, adv(hi, 150, 2*sec)), at(3*sec, adv(hi, 150, 2*sec)),
			at(4*sec, setFault{true}), at(4*sec, setFault{false})),
			when: at(5*sec, adv(hi, 150, 2*sec)), state: Backup, acts: "IntervalDiffers(10.0.0.3 2s 1)", deadline: 9600 * ms},

		// Split brain shown by ARP: another station answers for a VIP.
		{name: "master: address conflict → split brain, advert and announce", given: master, when: at(4*sec, conflict),
			state: Master, acts: "SplitBrain(02:00:00:00:00:09) SendAdvert(100) Reannounce", deadline: 5 * sec},
		{name: "master: address conflict within the interval → suppressed", given: seq(master, at(4*sec, conflict)), when: at(4200*ms, conflict),
			state: Master, acts: "SplitBrain(02:00:00:00:00:09) AnswerSuppressed(02:00:00:00:00:09)", deadline: 5 * sec},
		{name: "master: suppressed later conflict owes no announcement", given: seq(master, at(4*sec, conflict), at(4200*ms, conflict)), when: at(5*sec, timeout{}),
			state: Master, acts: "SendAdvert(100)", deadline: 6 * sec},
		{name: "master: later conflict in the term → advert only, no ARP war", given: seq(master, at(4*sec, conflict)), when: at(5500*ms, conflict),
			state: Master, acts: "SplitBrain(02:00:00:00:00:09) SendAdvert(100)", deadline: 6500 * ms},
		{name: "master: first conflict suppressed → its announcement comes with the next advert", given: seq(master, at(4*sec, adv(lo, 0, sec)), at(4200*ms, conflict)),
			when: at(5*sec, timeout{}), state: Master, acts: "SendAdvert(100) Reannounce", deadline: 6 * sec},
		{name: "master: a new term announces against a conflict again", given: seq(master, at(4*sec, conflict), at(4100*ms, adv(lo, 150, sec)), at(7700*ms, timeout{})),
			when: at(7750*ms, conflict), state: Master, acts: "SplitBrain(02:00:00:00:00:09) SendAdvert(100) Reannounce", deadline: 8750 * ms},
		{name: "backup: address conflict ignored", given: backup, when: at(sec, conflict), state: Backup, deadline: 3600 * ms},
		{name: "stopping: address conflict ignored", given: stopping, when: at(4500*ms, conflict), state: Master, deadline: 8 * sec},
		{name: "fault: address conflict ignored", given: seq(backup, at(sec, setFault{true})), when: at(2*sec, conflict), state: Fault, deadline: none},

		// Effective priority.
		{name: "master: new priority advertised at once", given: master, when: at(4*sec, setPriority{50}),
			state: Master, acts: "SendAdvert(50)", deadline: 5 * sec, prio: 50},
		{name: "master: priority lowered below a peer's → backup when it is heard", given: seq(master, at(4*sec, setPriority{50})),
			when: at(4200*ms, adv(lo, 80, sec)), state: Backup,
			acts: "Transition(MASTER->BACKUP) SplitBrain(10.0.0.1) RemoveVIPs HandOver(10.0.0.1)", deadline: 8 * sec, master: "10.0.0.1"},
		{name: "master: same priority → nothing", given: master, when: at(4*sec, setPriority{100}), state: Master, deadline: 4600 * ms},
		{name: "backup: priority 200 moves down timer by ΔMDI → 3.21s", given: backup, when: at(sec, setPriority{200}),
			state: Backup, deadline: 3210 * ms, prio: 200},
		{name: "backup: priority 0 clamps to 1 → 3.99s", given: backup, when: at(sec, setPriority{0}), state: Backup, deadline: 3990 * ms, prio: 1},
		{name: "backup: priority 255 clamps to 254", given: backup, when: at(sec, setPriority{255}), state: Backup, deadline: 3 * sec, prio: 254},
		{name: "owner: priority fixed at 255", cfg: owner, given: backup, when: at(sec, setPriority{50}), state: Master, deadline: sec, prio: 255},

		// keepalived's FAULT state.
		{name: "master: fault → priority 0, VIPs removed, fault", given: master, when: at(4*sec, setFault{true}),
			state: Fault, acts: "Transition(MASTER->FAULT) SendAdvert(0) RemoveVIPs", deadline: none, master: "none"},
		{name: "backup: fault → fault", given: backup, when: at(sec, setFault{true}), state: Fault, acts: "Transition(BACKUP->FAULT)", deadline: none},
		{name: "fault: lower advert → no takeover, master tracked", given: seq(backup, at(sec, setFault{true})), when: at(2*sec, adv(lo, 50, sec)),
			state: Fault, deadline: none, master: "10.0.0.1"},
		{name: "fault: timeout ignored", given: seq(backup, at(sec, setFault{true})), when: at(4*sec, timeout{}), state: Fault, deadline: none},
		{name: "fault: set again → nothing", given: seq(backup, at(sec, setFault{true})), when: at(2*sec, setFault{true}), state: Fault, deadline: none},
		{name: "fault cleared → backup, fresh down timer", given: seq(backup, at(sec, setFault{true})), when: at(5*sec, setFault{false}),
			state: Backup, acts: "Transition(FAULT->BACKUP)", deadline: 8600 * ms},
		{name: "fault cleared → own interval again", given: seq(backup, at(sec, adv(hi, 150, 250*ms)), at(1200*ms, setFault{true})),
			when: at(2*sec, setFault{false}), state: Backup, acts: "Transition(FAULT->BACKUP)", deadline: 5600 * ms},
		{name: "fault cleared, owner healthy → master", cfg: owner, given: seq(backup, at(sec, setFault{true})), when: at(2*sec, setFault{false}),
			state: Master, acts: "Transition(FAULT->MASTER) SendAdvert(255) AddVIPs Announce", deadline: 3 * sec},
		{name: "fault cleared restarts preempt delay", cfg: func(c *machineConfig) { c.PreemptDelay = 5 * sec },
			given: seq(backup, at(sec, setFault{true}), at(10*sec, setFault{false})), when: at(12*sec, adv(lo, 50, sec)), state: Backup, deadline: 15600 * ms},
		{name: "fault cleared without fault → nothing", given: backup, when: at(sec, setFault{false}), state: Backup, deadline: 3600 * ms},

		// Planned stop: hand over before letting go.
		{name: "master: shutdown → priority 0, keeps VIPs, waits", given: master, when: at(4*sec, shutdown{}),
			state: Master, acts: "SendAdvert(0)", deadline: 8 * sec},
		{name: "stopping: new master heard → VIPs kept one more interval", given: stopping, when: at(4700*ms, adv(lo, 50, sec)),
			state: Master, deadline: 5700 * ms},
		{name: "stopping: an interval after the new master → stop, VIPs removed", given: seq(stopping, at(4700*ms, adv(lo, 50, sec))), when: at(5700*ms, timeout{}),
			state: Stopped, acts: "Transition(MASTER->STOP) RemoveVIPs", deadline: none},
		{name: "stopping: new master heard again → the end stays", given: seq(stopping, at(4700*ms, adv(lo, 50, sec))), when: at(5600*ms, adv(lo, 50, sec)),
			state: Master, deadline: 5700 * ms},
		{name: "stopping: new master heard just before StopWait ends → StopWait holds", given: stopping, when: at(7500*ms, adv(lo, 50, sec)),
			state: Master, deadline: 8 * sec},
		{name: "stopping: priority 0 from another → keeps waiting", given: stopping, when: at(4500*ms, adv(lo, 0, sec)), state: Master, deadline: 8 * sec},
		{name: "stopping: no adverts at the old advert time", given: stopping, when: at(4600*ms, timeout{}), state: Master, deadline: 8 * sec},
		{name: "stopping: StopWait passes → stop", given: stopping, when: at(8*sec, timeout{}),
			state: Stopped, acts: "Transition(MASTER->STOP) RemoveVIPs", deadline: none},
		{name: "stopping: fault → stop at once", given: stopping, when: at(5*sec, setFault{true}),
			state: Stopped, acts: "Transition(MASTER->STOP) RemoveVIPs", deadline: none},
		{name: "stopping: shutdown again → nothing", given: stopping, when: at(5*sec, shutdown{}), state: Master, deadline: 8 * sec},
		{name: "stopping: new priority not advertised", given: stopping, when: at(5*sec, setPriority{50}), state: Master, deadline: 8 * sec},
		{name: "master, StopWait 0: shutdown → stop at once", cfg: func(c *machineConfig) { c.StopWait = 0 }, given: master, when: at(4*sec, shutdown{}),
			state: Stopped, acts: "Transition(MASTER->STOP) SendAdvert(0) RemoveVIPs", deadline: none},
		{name: "backup: shutdown → stop at once", given: backup, when: at(sec, shutdown{}), state: Stopped, acts: "Transition(BACKUP->STOP)", deadline: none},
		{name: "fault: shutdown → stop", given: seq(backup, at(sec, setFault{true})), when: at(2*sec, shutdown{}),
			state: Stopped, acts: "Transition(FAULT->STOP)", deadline: none},
		{name: "stopped: everything ignored", given: seq(backup, at(sec, shutdown{})), when: at(2*sec, start{}), state: Stopped, deadline: none},

		// Hard stop: every state goes to STOP through the machine.
		{name: "master: release → stop, priority 0, VIPs removed", given: master, when: at(4*sec, release{}),
			state: Stopped, acts: "Transition(MASTER->STOP) SendAdvert(0) RemoveVIPs", deadline: none, master: "none"},
		{name: "stopping: release → stop, VIPs removed, no second priority 0", given: stopping, when: at(5*sec, release{}),
			state: Stopped, acts: "Transition(MASTER->STOP) RemoveVIPs", deadline: none},
		{name: "backup: release → stop", given: backup, when: at(sec, release{}), state: Stopped, acts: "Transition(BACKUP->STOP)", deadline: none},
		{name: "fault: release → stop", given: seq(backup, at(sec, setFault{true})), when: at(2*sec, release{}),
			state: Stopped, acts: "Transition(FAULT->STOP)", deadline: none},
		{name: "init: release → stop", when: at(0, release{}), state: Stopped, acts: "Transition(INIT->STOP)", deadline: none},
		{name: "stopped: release ignored", given: seq(backup, at(sec, shutdown{})), when: at(2*sec, release{}), state: Stopped, deadline: none},
		{name: "released: later events ignored", given: seq(master, at(4*sec, release{})), when: at(5*sec, setFault{false}), state: Stopped, deadline: none},
	}
}

func TestMachine(t *testing.T) {
	for _, tc := range fsmCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fsmConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			m := newMachine(cfg)
			for _, s := range tc.given {
				m.Handle(fsmT0.Add(s.at), s.ev)
			}
			acts := m.Handle(fsmT0.Add(tc.when.at), tc.when.ev)
			want := fsmResult(tc, tc.state, tc.deadline, tc.prio, tc.master, tc.acts)
			got := fsmResult(tc, m.State(), fsmSince(m.Deadline()), m.EffectivePriority(), fsmAddr(m.Master()), fsmActions(acts))
			if got != want {
				t.Errorf("after %T at +%v (-want +got):\n-%s\n+%s", tc.when.ev, tc.when.at, want, got)
			}
		})
	}
}

// fsmConfig is the instance every table row starts from.
func fsmConfig() machineConfig {
	return machineConfig{Version: 3, Priority: 100, Interval: time.Second, Preempt: true,
		PrimaryIP: netip.MustParseAddr("10.0.0.2"), StopWait: 4 * time.Second}
}

// fsmResult formats what row tc checks, for a (-want +got) report.
func fsmResult(tc fsmCase, s State, deadline time.Duration, prio uint8, master, acts string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state=%v deadline=", s)
	if deadline == noDeadline {
		b.WriteString("none")
	} else {
		fmt.Fprintf(&b, "+%v", deadline)
	}
	if tc.prio != 0 {
		fmt.Fprintf(&b, " prio=%d", prio)
	}
	if tc.master != "" {
		fmt.Fprintf(&b, " master=%s", master)
	}
	fmt.Fprintf(&b, " actions=[%s]", acts)
	return b.String()
}

// fsmActions formats actions as their String forms, space-separated.
func fsmActions(acts []action) string {
	s := make([]string, len(acts))
	for i, a := range acts {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// fsmSince returns a deadline as an offset from fsmT0, or noDeadline.
func fsmSince(d time.Time) time.Duration {
	if d.IsZero() {
		return noDeadline
	}
	return d.Sub(fsmT0)
}

// fsmAddr formats an address, "none" for the zero Addr.
func fsmAddr(a netip.Addr) string {
	if !a.IsValid() {
		return "none"
	}
	return a.String()
}
