// Package supervisor runs the web server as vipvisor's child and ties its
// health to the VRRP instance.
//
// Child starts, signals, stops and restarts the server process; Reaper is
// the one place that waits for processes, so that vipvisor can reap
// orphans as PID 1 or as a subreaper without stealing the child's exit
// status; Notifier reports to systemd; Supervisor is the driver loop that
// turns signals and child exits into actions.
package supervisor
