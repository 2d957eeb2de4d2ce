package main

import (
	"testing"
	"time"
)

func TestDur(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0ms"},
		{1400 * time.Microsecond, "1ms"},
		{999 * time.Millisecond, "999ms"},
		{1346 * time.Millisecond, "1.35s"},
	}
	for _, tc := range tests {
		if got := dur(tc.d); got != tc.want {
			t.Errorf("dur(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestTrail(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	w := &watcher{changes: []change{
		{ms(0), "BACKUP"}, {ms(400), "MASTER"}, {ms(1012), "FAULT"}, {ms(2350), "BACKUP"}, {ms(2700), "MASTER"},
	}}
	tests := []struct {
		name  string
		since time.Time
		want  string
	}{
		{"from the start", ms(0), "BACKUP +0ms → MASTER +400ms → FAULT +1.01s → BACKUP +2.35s → MASTER +2.70s"},
		{"state held first", ms(1000), "MASTER → FAULT +12ms → BACKUP +1.35s → MASTER +1.70s"},
		{"no change since", ms(3000), "MASTER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := w.trail(tc.since); got != tc.want {
				t.Errorf("trail:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
	if c, ok := w.entered(ms(1000), "BACKUP", "MASTER"); !ok || c.State != "BACKUP" || !c.At.Equal(ms(2350)) {
		t.Errorf("entered = %+v, %v; want BACKUP at +2350ms", c, ok)
	}
}
