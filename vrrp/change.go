package vrrp

import (
	"net/netip"
	"time"
)

// Change is a state transition, as the supervisor reports it: to NOTIFY,
// to systemd and to the log.
type Change struct {
	From, To State
	Priority uint8      // effective priority at the time
	Master   netip.Addr // the master as known after the change
	At       time.Time
}

// InstanceStatus is a snapshot of the instance for /status and STATUS=.
type InstanceStatus struct {
	State    string            `json:"state"`
	Priority uint8             `json:"priority"`
	Master   string            `json:"master,omitempty"`
	Primary  string            `json:"primary"`
	VRID     int               `json:"vrid"`
	VIPs     string            `json:"vips"`
	Faults   []string          `json:"faults,omitempty"`
	Drops    map[string]uint64 `json:"drops,omitempty"`
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
