package vrrp

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	type event struct {
		key            string
		at             time.Duration // after t0
		ok             bool
		suppressedWant uint64
	}
	tests := []struct {
		name   string
		events []event
	}{
		{
			name:   "first event of a key is logged",
			events: []event{{"bad_ttl", 0, true, 0}},
		},
		{
			name: "repeats within the period are counted, then reported",
			events: []event{
				{"bad_ttl", 0, true, 0},
				{"bad_ttl", 1 * time.Second, false, 0},
				{"bad_ttl", 9 * time.Second, false, 0},
				{"bad_ttl", 9999 * time.Millisecond, false, 0},
				{"bad_ttl", 10 * time.Second, true, 3},
				{"bad_ttl", 11 * time.Second, false, 0},
				{"bad_ttl", 25 * time.Second, true, 1},
				{"bad_ttl", 40 * time.Second, true, 0},
			},
		},
		{
			name: "keys are independent",
			events: []event{
				{"bad_ttl", 0, true, 0},
				{"bad_auth", 1 * time.Second, true, 0},
				{"bad_ttl", 2 * time.Second, false, 0},
				{"bad_auth", 3 * time.Second, false, 0},
				{"bad_auth", 4 * time.Second, false, 0},
				{"bad_ttl", 10 * time.Second, true, 1},
				{"bad_auth", 10 * time.Second, false, 0},
				{"bad_auth", 11 * time.Second, true, 3},
			},
		},
		{
			name: "a clock stepped back starts a new period",
			events: []event{
				{"bad_ttl", time.Hour, true, 0},
				{"bad_ttl", time.Hour + time.Second, false, 0},
				{"bad_ttl", 0, true, 1},
				{"bad_ttl", time.Second, false, 0},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newRateLimiter(10 * time.Second)
			for i, e := range tc.events {
				ok, n := l.Allow(e.key, t0.Add(e.at))
				if ok != e.ok || n != e.suppressedWant {
					t.Errorf("event %d (%s at %v): Allow = (%v, %d), want (%v, %d)",
						i, e.key, e.at, ok, n, e.ok, e.suppressedWant)
				}
			}
		})
	}
}

// TestRateLimiterConcurrent checks, under -race, that concurrent callers
// lose no event: every one is either logged or counted as suppressed.
func TestRateLimiterConcurrent(t *testing.T) {
	l := newRateLimiter(time.Hour)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const workers, each = 8, 1000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Allow(fmt.Sprint("k", (w+i)%3), t0)
			}
		}()
	}
	wg.Wait()
	var total uint64
	for k := range 3 {
		ok, n := l.Allow(fmt.Sprint("k", k), t0.Add(2*time.Hour))
		if !ok {
			t.Fatalf("k%d: not allowed after the period", k)
		}
		total += n + 1 // the first event of each key was logged
	}
	if total != workers*each {
		t.Errorf("logged + suppressed = %d, want %d", total, workers*each)
	}
}
