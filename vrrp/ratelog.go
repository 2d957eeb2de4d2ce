package vrrp

import (
	"sync"
	"time"
)

// dropLogPeriod is how often Conn logs one kind of dropped or odd advert:
// often enough to notice a misconfigured peer, seldom enough that a peer
// sending ten adverts a second cannot flood the log.
const dropLogPeriod = 10 * time.Second

// rateLimiter decides when a repeated event is worth a log line: at most
// once per period for each key, and the line reports how many events of
// that key went unlogged since the previous one. It holds no clock: the
// caller passes the time, so tests need no waiting.
//
// Keys must come from a bounded set (a dropReason's name, say), never from
// packet contents such as a source address, or a stream of forged packets
// could grow the map without end.
//
// The zero value is not usable; make one with newRateLimiter. Its methods
// may be called concurrently.
type rateLimiter struct {
	period time.Duration

	mu   sync.Mutex
	keys map[string]*rateState
}

// rateState is what rateLimiter remembers of one key.
type rateState struct {
	logged     time.Time // when the key last got a line
	suppressed uint64    // events since then that got none
}

// newRateLimiter returns a limiter that lets one event per key through
// every period.
func newRateLimiter(period time.Duration) *rateLimiter {
	return &rateLimiter{period: period, keys: make(map[string]*rateState)}
}

// Allow reports whether an event of key happening at now should be logged.
// When it should, suppressed is the number of events of the same key that
// Allow turned down since the previous line; the count then starts again.
// The first event of a key is always allowed. A now earlier than the last
// logged event (a clock stepped back) is treated as a new period, so a
// wrong clock cannot silence a key.
func (l *rateLimiter) Allow(key string, now time.Time) (ok bool, suppressed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.keys[key]
	if s == nil {
		l.keys[key] = &rateState{logged: now}
		return true, 0
	}
	if since := now.Sub(s.logged); since >= 0 && since < l.period {
		s.suppressed++
		return false, 0
	}
	suppressed = s.suppressed
	*s = rateState{logged: now}
	return true, suppressed
}
