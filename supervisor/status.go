package supervisor

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vipvisor/vipvisor/vrrp"
)

// Status is a snapshot of vipvisor's state, served at /status and read by
// `vipvisor status`. The driver loop publishes a new one on every change.
type Status struct {
	Version     string `json:"version"`
	Stopping    bool   `json:"stopping"`
	Yielded     bool   `json:"yielded"`      // the child failed again: VRRP is in FAULT for it
	GatewayDown bool   `json:"gateway_down"` // TRACK_GATEWAY does not answer
	// VRRP is the first instance: the only one without VIPVISOR_INSTANCES.
	VRRP vrrp.InstanceStatus `json:"vrrp"`
	// Instances is every instance, in the order of VIPVISOR_INSTANCES.
	Instances []vrrp.InstanceStatus `json:"instances"`
	Child     ChildStatus           `json:"child"`
}

func (s *Status) setVRRP(all []vrrp.InstanceStatus) {
	s.Instances = all
	s.VRRP = vrrp.InstanceStatus{}
	if len(all) > 0 {
		s.VRRP = all[0]
	}
}

// all returns every instance: Instances, or VRRP in a snapshot made
// without them.
func (s Status) all() []vrrp.InstanceStatus {
	if len(s.Instances) == 0 {
		return []vrrp.InstanceStatus{s.VRRP}
	}
	return s.Instances
}

// fault reports whether any instance is in FAULT.
func (s Status) fault() bool {
	for _, v := range s.all() {
		if v.State == "FAULT" {
			return true
		}
	}
	return false
}

// ChildStatus is the child's part of Status.
type ChildStatus struct {
	Command  string    `json:"command"`
	PID      int       `json:"pid"`
	Running  bool      `json:"running"`
	Since    time.Time `json:"since,omitzero"` // when the running process started
	Starts   int       `json:"starts"`         // processes started, the first included
	Crashes  int       `json:"crashes"`        // runs that ended on their own
	LastExit string    `json:"last_exit,omitempty"`
	Healthy  bool      `json:"healthy"`          // passed its probes (or runs, with none)
	Health   string    `json:"health,omitempty"` // "healthy", or why not
	Restarts int       `json:"restarts"`         // restarts used in the current window
	// RestartsAllowed is VIPVISOR_RESTARTS.
	RestartsAllowed int `json:"restarts_allowed"`
}

// splitBrainShown is how long after a split brain was last detected
// Summary still mentions it.
const splitBrainShown = time.Minute

// Summary is the one line systemd shows as the unit's status: VRRP
// state, priority and master, a split brain detected in the last minute
// ("split brain 3s ago with 10.77.0.12"), then the child's state. With
// several instances each is named, and their parts are separated by ";".
func (s Status) Summary() string {
	var parts []string
	all := s.all()
	for _, v := range all {
		part := instanceSummary(v)
		if len(all) > 1 {
			part = v.Name + " " + part
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ") + s.childSummary()
}

// instanceSummary is one instance's part of Summary.
func instanceSummary(v vrrp.InstanceStatus) string {
	line := fmt.Sprintf("%s prio %d", v.State, v.Priority)
	if v.Master != "" && v.Master != v.Primary {
		line += ", master " + v.Master
	}
	if len(v.Faults) > 0 {
		line += fmt.Sprintf(", fault: %s", strings.Join(v.Faults, ","))
	}
	if ago := time.Since(v.SplitBrainAt); !v.SplitBrainAt.IsZero() && ago < splitBrainShown {
		line += fmt.Sprintf("; split brain %v ago with %s", max(ago, 0).Round(time.Second), v.SplitBrainWith)
	}
	return line
}

// childSummary is the child's part of Summary.
func (s Status) childSummary() string {
	line := ""
	c := s.Child
	switch {
	case s.Stopping:
		return "; stopping " + c.Command
	case c.Running && c.Healthy:
		line += fmt.Sprintf("; %s healthy (pid %d)", c.Command, c.PID)
	case c.Running:
		line += fmt.Sprintf("; %s running (pid %d), not healthy", c.Command, c.PID)
	default:
		line += "; " + c.Command + " not running"
	}
	if c.Health != "" && !c.Healthy {
		line += ": " + c.Health
	}
	if s.Yielded {
		line += "; yielded"
	}
	return line + fmt.Sprintf("; restarts %d/%d", c.Restarts, c.RestartsAllowed)
}

// StatusHandler serves /status (JSON), /metrics (Prometheus text format)
// and /healthz (200 while the child is healthy and no instance is in
// FAULT, else 503) from snapshots that status returns.
func StatusHandler(status func() Status) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(status())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		s := status()
		if !s.Child.Healthy || s.Stopping || s.fault() {
			http.Error(w, s.Summary(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, s.Summary())
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeMetrics(w, status())
	})
	return mux
}

func writeMetrics(w http.ResponseWriter, s Status) {
	metric := func(name, kind, help string, value any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, kind, name, value)
	}
	fmt.Fprintf(w, "# HELP vipvisor_build_info Build information.\n# TYPE vipvisor_build_info gauge\nvipvisor_build_info{version=%q} 1\n", s.Version)
	metric("vipvisor_child_up", "gauge", "1 while the child process runs.", b2i(s.Child.Running))
	writeVRRPMetrics(w, s.all())
	metric("vipvisor_child_starts_total", "counter", "Child processes started, the first included.", s.Child.Starts)
	metric("vipvisor_child_crashes_total", "counter", "Child runs that ended on their own.", s.Child.Crashes)
	metric("vipvisor_child_healthy", "gauge", "1 while the child passes its probes.", b2i(s.Child.Healthy))
	metric("vipvisor_child_restarts", "gauge", "Restarts used in the current RESTART_WINDOW.", s.Child.Restarts)
	metric("vipvisor_yielded", "gauge", "1 while this node yields the VIP because the child failed again.", b2i(s.Yielded))
}

// writeVRRPMetrics writes the series of every instance, each labelled
// with the instance's name and VRID.
func writeVRRPMetrics(w io.Writer, all []vrrp.InstanceStatus) {
	header := func(name, kind, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	}
	series := func(v vrrp.InstanceStatus, name, extra string, value any) {
		fmt.Fprintf(w, "%s{instance=%q,vrid=\"%d\"%s} %v\n", name, v.Name, v.VRID, extra, value)
	}
	header("vipvisor_vrrp_master", "gauge", "1 while this node is the VRRP master.")
	for _, v := range all {
		series(v, "vipvisor_vrrp_master", "", b2i(v.State == "MASTER"))
	}
	header("vipvisor_vrrp_priority", "gauge", "The priority this node advertises.")
	for _, v := range all {
		series(v, "vipvisor_vrrp_priority", "", v.Priority)
	}
	header("vipvisor_vrrp_state", "gauge", "The VRRP state, 1 for the current one.")
	for _, v := range all {
		for _, st := range []string{"INIT", "BACKUP", "MASTER", "FAULT", "STOP"} {
			series(v, "vipvisor_vrrp_state", fmt.Sprintf(",state=%q", st), b2i(v.State == st))
		}
	}
	header("vipvisor_vrrp_dropped_adverts_total", "counter", "Received adverts dropped, by reason.")
	for _, v := range all {
		for _, reason := range slices.Sorted(maps.Keys(v.Drops)) {
			series(v, "vipvisor_vrrp_dropped_adverts_total", fmt.Sprintf(",reason=%q", reason), v.Drops[reason])
		}
	}
	for _, c := range vrrpCounters {
		name := "vipvisor_vrrp_" + c.key + "_total"
		header(name, "counter", c.help)
		for _, v := range all {
			series(v, name, "", v.Counters[c.key])
		}
	}
}

// vrrpCounters are the keys of vrrp.InstanceStatus.Counters, each
// exported as vipvisor_vrrp_<key>_total.
var vrrpCounters = []struct{ key, help string }{
	{"adverts_received", "VRRP adverts received and accepted."},
	{"adverts_sent", "VRRP adverts sent, priority 0 included."},
	{"priority_zero_received", "VRRP adverts of priority 0 (a master leaving) received."},
	{"priority_zero_sent", "VRRP adverts of priority 0 sent."},
	{"become_master", "Transitions to MASTER."},
	{"release_master", "Transitions out of MASTER, for any reason."},
	{"announcements", "Rounds of gratuitous ARP sent for the VIPs, hand-overs to a new master included."},
	{"answers_suppressed", "Answers to lower-priority or priority-0 adverts and VIP conflicts not sent at once: one per advert interval at most; the next advert answers the rest."},
	{"split_brain", "Split brains detected: another master heard while master, or a VIP answered by another MAC address."},
	{"interval_mismatch", "Adverts from the master whose interval was not adopted (yet): adopted after 3 in a row."},
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
