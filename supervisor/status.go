package supervisor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Status is a snapshot of vipvisor's state, served at /status and read by
// `vipvisor status`. The driver loop publishes a new one on every change.
type Status struct {
	Version  string      `json:"version"`
	Stopping bool        `json:"stopping"`
	Child    ChildStatus `json:"child"`
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
}

// Summary is the one line systemd shows as the unit's status.
func (s Status) Summary() string {
	c := s.Child
	switch {
	case s.Stopping:
		return fmt.Sprintf("stopping %s", c.Command)
	case c.Running:
		return fmt.Sprintf("%s running (pid %d)", c.Command, c.PID)
	}
	return c.Command + " not running"
}

// StatusHandler serves /status (JSON), /metrics (Prometheus text format)
// and /healthz (200 while the child runs, else 503) from snapshots that
// status returns.
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
		if !s.Child.Running || s.Stopping {
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
	metric("vipvisor_child_starts_total", "counter", "Child processes started, the first included.", s.Child.Starts)
	metric("vipvisor_child_crashes_total", "counter", "Child runs that ended on their own.", s.Child.Crashes)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
