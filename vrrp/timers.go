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

// SkewTime returns Skew_Time for a router of the given priority that
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
func SkewTime(version int, priority uint8, masterInterval time.Duration) time.Duration {
	weight := int64(256 - int(priority))
	if version == 2 {
		return time.Duration(weight) * time.Second / 256
	}
	cs := int64(masterInterval / centisecond)
	return time.Duration(weight*cs/256) * centisecond
}

// MasterDownInterval returns Master_Down_Interval, 3 × Master_Adver_Interval
// + Skew_Time (RFC 5798 §6.1; RFC 3768 §6.1 with Advertisement_Interval).
// VRRPv3 works in whole centiseconds like SkewTime.
func MasterDownInterval(version int, priority uint8, masterInterval time.Duration) time.Duration {
	skew := SkewTime(version, priority, masterInterval)
	if version == 2 {
		return downAdverts*masterInterval + skew
	}
	return downAdverts*masterInterval.Truncate(centisecond) + skew
}

// Deadline returns when the caller must deliver Timeout; zero means no
// timer is armed. A Timeout handled before Deadline is ignored, so a stale
// timer in the caller does no harm.
func (m *Machine) Deadline() time.Time { return m.deadline }

// timeout handles the expiry of whichever timer Deadline holds.
func (m *Machine) timeout(now time.Time) []Action {
	if m.deadline.IsZero() || now.Before(m.deadline) {
		return nil
	}
	switch {
	case m.stopping:
		return m.finishStop()
	case m.state == Master:
		return m.advertise(now)
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
func (m *Machine) advertise(now time.Time) []Action {
	m.deadline = now.Add(m.cfg.Interval)
	return []Action{SendAdvert{Priority: m.prio}}
}

// adoptInterval sets Master_Adver_Interval from an accepted VRRPv3 advert
// (RFC 5798 §6.4.2). VRRPv2 routers share one configured interval.
func (m *Machine) adoptInterval(d time.Duration) {
	if m.cfg.Version != 2 && d > 0 {
		m.masterInt = d
	}
}

func (m *Machine) skew() time.Duration {
	return SkewTime(m.cfg.Version, m.prio, m.masterInt)
}

func (m *Machine) downInterval() time.Duration {
	return MasterDownInterval(m.cfg.Version, m.prio, m.masterInt)
}
