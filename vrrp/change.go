package vrrp

import (
	"net/netip"
	"time"
)

// Change is a state transition, as the supervisor reports it: to NOTIFY,
// to systemd and to the log.
type Change struct {
	Instance string // Config.DisplayName
	From, To State
	Priority uint8      // effective priority at the time
	Master   netip.Addr // the master as known after the change
	At       time.Time
}

// InstanceStatus is a snapshot of the instance for /status and STATUS=.
type InstanceStatus struct {
	Name     string            `json:"name"` // Config.DisplayName
	State    string            `json:"state"`
	Priority uint8             `json:"priority"`
	Master   string            `json:"master,omitempty"`
	Primary  string            `json:"primary"`
	VRID     int               `json:"vrid"`
	VIPs     string            `json:"vips"`
	Faults   []string          `json:"faults,omitempty"`
	Drops    map[string]uint64 `json:"drops,omitempty"`
	// Counters counts what the instance received, sent and decided, by
	// name: adverts_received, adverts_sent, priority_zero_received,
	// priority_zero_sent, become_master, release_master, announcements,
	// answers_suppressed, split_brain, interval_mismatch. Every name is
	// present from the start.
	Counters map[string]uint64 `json:"counters"`
	// SplitBrain counts the split brains detected: another master heard
	// while master, or a VIP answered by another MAC address.
	SplitBrain uint64 `json:"split_brain"`
	// SplitBrainAt is when the last one was detected, and SplitBrainWith
	// the other side: its address, or the MAC address that answered.
	SplitBrainAt   time.Time `json:"split_brain_at,omitzero"`
	SplitBrainWith string    `json:"split_brain_with,omitempty"`
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
