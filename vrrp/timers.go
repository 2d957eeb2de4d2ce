package vrrp

import (
	"net/netip"
	"time"
)

// A Machine runs one timer at a time, kept as Deadline: the Adver_Timer as
// master, the Master_Down_Timer as backup (RFC 5798 §6.2), and the bounded
// wait of a planned stop. This file holds their arithmetic and what happens
// when they fire.

// centisecond is the unit of VRRPv3 timers (RFC 5798 §5.2.7).
const centisecond = 10 * time.Millisecond

// downAdverts is how many advertisement intervals a backup waits before it
// declares the master down (RFC 5798 §6.1, RFC 3768 §6.1).
const downAdverts = 3

// skewTime returns Skew_Time for a router of the given priority that
// listens to a master advertising every masterInterval.
//
// VRRPv3 (RFC 5798 §6.1) computes in whole centiseconds:
// ((256 − Priority) × Master_Adver_Interval) / 256, the division truncating,
// so an interval that is not a multiple of 10 ms is first truncated to one.
// VRRPv2 (RFC 3768 §6.1) defines Skew_Time as (256 − Priority) / 256
// seconds whatever the interval; that value is exact in nanoseconds.
// Any version other than 2 is computed as VRRPv3. keepalived computes the
// VRRPv3 value in microseconds without truncating, so its down timers can
// run up to 10 ms longer than these.
func skewTime(version int, priority uint8, masterInterval time.Duration) time.Duration {
	weight := int64(256 - int(priority))
	if version == 2 {
		return time.Duration(weight) * time.Second / 256
	}
	cs := int64(masterInterval / centisecond)
	return time.Duration(weight*cs/256) * centisecond
}

// MasterDownInterval returns Master_Down_Interval, 3 × Master_Adver_Interval
// + Skew_Time (RFC 5798 §6.1; RFC 3768 §6.1 with Advertisement_Interval).
// VRRPv3 works in whole centiseconds like skewTime.
func MasterDownInterval(version int, priority uint8, masterInterval time.Duration) time.Duration {
	skew := skewTime(version, priority, masterInterval)
	if version == 2 {
		return downAdverts*masterInterval + skew
	}
	return downAdverts*masterInterval.Truncate(centisecond) + skew
}

// Deadline returns when the caller must deliver Timeout; zero means no
// timer is armed. A Timeout handled before Deadline is ignored, so a stale
// timer in the caller does no harm.
func (m *machine) Deadline() time.Time { return m.deadline }

// timeout handles the expiry of whichever timer Deadline holds.
func (m *machine) timeout(now time.Time) []action {
	if m.deadline.IsZero() || now.Before(m.deadline) {
		return nil
	}
	switch {
	case m.stopping:
		return m.finishStop()
	case m.state == Master:
		return m.advertTimer(now)
	case m.healthy: // Backup: Master_Down_Timer fired (RFC 5798 §6.4.2)
		return m.becomeMaster(now)
	}
	// An unhealthy backup keeps waiting with no timer: SetHealthy{true}
	// takes over at once, an accepted advert re-arms the down timer.
	m.deadline = time.Time{}
	m.master = netip.Addr{}
	return nil
}

// advertise sends an advert now and restarts the Adver_Timer.
func (m *machine) advertise(now time.Time) []action {
	m.deadline = now.Add(m.cfg.Interval)
	return []action{sendAdvert{Priority: m.prio}}
}

// adoptAfter is how many adverts in a row a master must send with an
// interval before a backup adopts it.
const adoptAfter = 3

// intervalSlack is how much longer than its own Master_Down_Interval a
// backup waits for a master whose interval it has not adopted yet.
const intervalSlack = time.Second

// candidate is an advertised interval that differs from
// Master_Adver_Interval, counted until it is adopted.
type candidate struct {
	src      netip.Addr
	interval time.Duration
	seen     int // adverts in a row from src with interval
}

// follow handles the interval of an accepted advert from the master this
// router now follows and returns the Master_Down_Interval to wait.
//
// RFC 5798 §6.4.2 has a VRRPv3 backup adopt the master's interval at
// once. Then one forged advert with priority 254 and interval 40.95 s
// makes the master step down and every backup wait more than two
// minutes, with nobody holding the addresses. So a different interval is
// adopted only once the same master has sent it in adoptAfter adverts in
// a row; until then the down timer is the one the advert asks for, but
// no longer than our own Master_Down_Interval plus intervalSlack, and the
// advert is reported as IntervalDiffers. A real master that advertises
// more slowly than we do (keepalived at 1 s against our 100 ms) still
// holds: its next advert comes well within that bound. VRRPv2 routers
// share one configured interval (RFC 3768 §7.1; others are dropped).
func (m *machine) follow(a advertReceived) (time.Duration, []action) {
	if m.cfg.Version == 2 || a.Interval <= 0 || a.Interval == m.masterInt {
		m.candidate = candidate{}
		return m.downInterval(), nil
	}
	if m.candidate.src == a.Src && m.candidate.interval == a.Interval {
		m.candidate.seen++
	} else {
		m.candidate = candidate{src: a.Src, interval: a.Interval, seen: 1}
	}
	if m.candidate.seen >= adoptAfter {
		m.masterInt = a.Interval
		m.candidate = candidate{}
		return m.downInterval(), nil
	}
	bound := MasterDownInterval(m.cfg.Version, m.prio, m.cfg.Interval) + intervalSlack
	down := min(MasterDownInterval(m.cfg.Version, m.prio, a.Interval), bound)
	return down, []action{intervalDiffers{From: a.Src, Interval: a.Interval, Seen: m.candidate.seen}}
}

func (m *machine) skew() time.Duration {
	return skewTime(m.cfg.Version, m.prio, m.masterInt)
}

func (m *machine) downInterval() time.Duration {
	return MasterDownInterval(m.cfg.Version, m.prio, m.masterInt)
}
