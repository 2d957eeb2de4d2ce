package vrrp

import "sync/atomic"

// counter names one of an Instance's event counters. They follow
// keepalived_exporter's set (become_master, release_master,
// advertisements received and sent, priority 0 received and sent) and
// add what vipvisor itself decides: announcements, suppressed answers,
// split brains and intervals not adopted.
type counter int

const (
	// ctrAdvertsReceived: adverts the socket accepted and handed on.
	ctrAdvertsReceived counter = iota
	// ctrAdvertsSent: adverts sent without error, priority 0 included.
	ctrAdvertsSent
	// ctrPriorityZeroReceived: accepted adverts of priority 0.
	ctrPriorityZeroReceived
	// ctrPriorityZeroSent: adverts of priority 0 sent without error.
	ctrPriorityZeroSent
	// ctrBecomeMaster: transitions to MASTER.
	ctrBecomeMaster
	// ctrReleaseMaster: transitions out of MASTER, for any reason.
	ctrReleaseMaster
	// ctrAnnouncements: rounds of gratuitous ARP, one per call to the
	// announcer whatever GARP_REPEAT, hand-overs included.
	ctrAnnouncements
	// ctrAnswersSuppressed: answers not sent because of the rate limit.
	ctrAnswersSuppressed
	// ctrSplitBrain: another master heard, or a VIP claimed by another MAC.
	ctrSplitBrain
	// ctrIntervalMismatch: adverts whose interval was not adopted (yet).
	ctrIntervalMismatch

	numCounters
)

var counterNames = [numCounters]string{
	ctrAdvertsReceived:      "adverts_received",
	ctrAdvertsSent:          "adverts_sent",
	ctrPriorityZeroReceived: "priority_zero_received",
	ctrPriorityZeroSent:     "priority_zero_sent",
	ctrBecomeMaster:         "become_master",
	ctrReleaseMaster:        "release_master",
	ctrAnnouncements:        "announcements",
	ctrAnswersSuppressed:    "answers_suppressed",
	ctrSplitBrain:           "split_brain",
	ctrIntervalMismatch:     "interval_mismatch",
}

// counters holds an Instance's event counters. The loop and its helper
// goroutines add to them; Status reads them from any goroutine.
type counters [numCounters]atomic.Uint64

func (c *counters) inc(k counter) uint64 { return c[k].Add(1) }

func (c *counters) get(k counter) uint64 { return c[k].Load() }

// snapshot returns every counter by name, zeros included, so that a
// reader sees the whole set from the start.
func (c *counters) snapshot() map[string]uint64 {
	m := make(map[string]uint64, numCounters)
	for k := range numCounters {
		m[counterNames[k]] = c[k].Load()
	}
	return m
}
