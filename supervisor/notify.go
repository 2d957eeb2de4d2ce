package supervisor

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Notifier reports to systemd through NOTIFY_SOCKET (sd_notify(3)). Without
// NOTIFY_SOCKET every method does nothing. A failed send is logged once per
// kind of message, not per call: a wedged socket must not flood the log.
type Notifier struct {
	log      *slog.Logger
	watchdog time.Duration // ping interval: half of WATCHDOG_USEC, 0 when off
	active   bool          // NOTIFY_SOCKET is set

	mu     sync.Mutex
	status string
	failed map[string]bool
}

// NewNotifier reads the watchdog settings systemd passed, if any.
func NewNotifier(log *slog.Logger) *Notifier {
	n := &Notifier{log: log, failed: map[string]bool{}, active: os.Getenv("NOTIFY_SOCKET") != ""}
	if d, err := daemon.SdWatchdogEnabled(false); err != nil {
		log.Warn("ignoring systemd watchdog settings", "err", err)
	} else if d > 0 {
		n.watchdog = d / 2
	}
	return n
}

// WatchdogInterval is how often the main loop must call Watchdog; zero
// when systemd's watchdog is off.
func (n *Notifier) WatchdogInterval() time.Duration { return n.watchdog }

// Active reports whether systemd listens.
func (n *Notifier) Active() bool { return n.active }

// Ready tells systemd that startup (or a reload) is finished.
func (n *Notifier) Ready(status string) {
	n.send("READY", fmt.Sprintf("READY=1\nSTATUS=%s", status))
	n.setStatus(status)
}

// Status sends a STATUS= line when status differs from the last one sent.
func (n *Notifier) Status(status string) {
	if n.setStatus(status) {
		n.send("STATUS", "STATUS="+status)
	}
}

// Reloading tells systemd a reload began. MONOTONIC_USEC lets systemd 253
// and later (Type=notify-reload) match it to the reload request.
func (n *Notifier) Reloading() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	n.send("RELOADING", fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}

// Stopping tells systemd that shutdown began.
func (n *Notifier) Stopping(status string) {
	n.send("STOPPING", "STOPPING=1\nSTATUS="+status)
	n.setStatus(status)
}

// Watchdog pings systemd's watchdog.
func (n *Notifier) Watchdog() { n.send("WATCHDOG", daemon.SdNotifyWatchdog) }

// lastStatus is the STATUS= line last sent.
func (n *Notifier) lastStatus() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status
}

func (n *Notifier) setStatus(s string) (changed bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	changed = n.status != s
	n.status = s
	return changed
}

func (n *Notifier) send(kind, msg string) {
	_, err := daemon.SdNotify(false, msg)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil && !n.failed[kind] {
		n.log.Warn("sd_notify failed", "message", kind, "err", err)
	}
	n.failed[kind] = err != nil
}
