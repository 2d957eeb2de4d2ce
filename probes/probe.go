package probes

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"syscall"
	"time"
)

// Result is the outcome of one probe.
type Result struct {
	// OK reports whether the probe passed.
	OK bool
	// Reason says why the probe failed, short and specific enough for a
	// log line: "connection refused", "timeout after 1s", "status 503".
	// It is empty when OK is true.
	Reason string
	// Took is how long the check ran.
	Took time.Duration
}

// Probe checks one thing once.
//
// Check must return by ctx's deadline (give or take the few milliseconds
// it takes to abandon a connection or kill a process), whatever the
// server or command it checks does; the Prober relies on that to keep
// its rounds on time. Check may be called again while an earlier call is
// still returning, but the Prober never runs two checks of one probe at
// once.
type Probe interface {
	// Name names what is checked, for logs: "tcp 127.0.0.1:80",
	// "http http://127.0.0.1/health", "exec check.sh", "gateway 10.0.0.1".
	Name() string
	// Check checks once.
	Check(ctx context.Context) Result
}

// pass is the Result of a check that began at start and passed.
func pass(start time.Time) Result {
	return Result{OK: true, Took: time.Since(start)}
}

// fail is the Result of a check that began at start and failed.
func fail(start time.Time, reason string) Result {
	return Result{Reason: reason, Took: time.Since(start)}
}

// isTimeout reports whether err, or the state of ctx, means the check ran
// out of time (or was cancelled) rather than being answered.
func isTimeout(ctx context.Context, err error) bool {
	return ctx.Err() != nil ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded)
}

// timeoutReason says that a check begun at start ran out of time: "timeout
// after 1s", with the time the check was given, or "canceled" when ctx was
// cancelled before its deadline.
func timeoutReason(ctx context.Context, start time.Time) string {
	if b, ok := allowed(ctx, start); ok {
		return "timeout after " + b.String()
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return "canceled"
	}
	return "timeout"
}

// timeoutKey is the context key under which withTimeout records the time
// a check was given.
type timeoutKey struct{}

// withTimeout is context.WithTimeout that also records timeout, so that a
// probe's reason names the time it was given ("timeout after 500ms"), not
// what was left of it when the check began: on a busy machine a check may
// start a millisecond or more after its deadline was set.
func withTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithValue(ctx, timeoutKey{}, timeout), timeout)
}

// allowed returns the time a check begun at start was given: the one
// withTimeout recorded, or else the time from start to the deadline,
// rounded for display (the deadline was set a little before the check
// began, so 999.98ms is "1s"). It is false when ctx was cancelled before
// its deadline or has none.
func allowed(ctx context.Context, start time.Time) (time.Duration, bool) {
	deadline, ok := ctx.Deadline()
	if !ok || (errors.Is(ctx.Err(), context.Canceled) && time.Now().Before(deadline)) {
		return 0, false
	}
	if d, ok := ctx.Value(timeoutKey{}).(time.Duration); ok {
		return d, true
	}
	d := deadline.Sub(start)
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond), true
	}
	return d.Round(time.Microsecond), true
}

// errReason turns the error that ended a check into a short reason: the
// kernel's words for a socket error ("connection refused", "no route to
// host"), the resolver's for a name, "timeout after 1s" when the deadline
// passed.
func errReason(ctx context.Context, start time.Time, err error) string {
	if isTimeout(ctx, err) {
		return timeoutReason(ctx, start)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "lookup " + dnsErr.Name + ": " + dnsErr.Err
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err.Error()
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err.Error()
	}
	return err.Error()
}
