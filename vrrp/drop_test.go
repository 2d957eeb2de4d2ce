package vrrp

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

func TestDropReasonString(t *testing.T) {
	seen := map[string]dropReason{}
	for r := range numDropReasons {
		s := r.String()
		if s == "" || strings.ToLower(s) != s || strings.ContainsAny(s, " -") {
			t.Errorf("DropReason(%d).String() = %q, want a snake_case word", int(r), s)
		}
		if prev, ok := seen[s]; ok {
			t.Errorf("%v and %d share the name %q", prev, int(r), s)
		}
		seen[s] = r
	}
	for _, r := range []dropReason{-1, numDropReasons} {
		if got, want := r.String(), fmt.Sprintf("DropReason(%d)", int(r)); got != want {
			t.Errorf("String of out-of-range reason (-want +got):\n-%s\n+%s", want, got)
		}
	}
}

func TestDropReasonOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want dropReason
	}{
		{"nil", nil, unknownReason},
		{"foreign", io.EOF, unknownReason},
		{"malformed", malformed(badType, "type %d", 2), badType},
		{"truncated", truncated(3, 8), badLength},
		{"wrapped", fmt.Errorf("read from 192.0.2.1: %w", malformed(badChecksum, "x")), badChecksum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := dropReasonOf(tc.err); got != tc.want {
				t.Errorf("dropReasonOf(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	err := truncated(3, 8)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, errMalformed) {
		t.Errorf("truncated error %q should match both io.ErrUnexpectedEOF and errMalformed", err)
	}
	if !strings.HasPrefix(err.Error(), "vrrp: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
}

func TestDropCounts(t *testing.T) {
	var c dropCounts
	if _, ok := c.Snapshot()["unknown"]; ok {
		t.Error("Snapshot lists the unknown reason before any such drop")
	}
	var wg sync.WaitGroup
	const workers, each = 4, 1000
	for range workers {
		wg.Go(func() {
			for range each {
				c.Add(badChecksum)
				c.Add(notPeer)
				_ = c.Snapshot() // concurrent reads, for the race detector
			}
		})
	}
	wg.Wait()
	c.Add(dropReason(-3)) // out of range: counted as unknown
	c.Add(numDropReasons + 5)

	want := map[string]uint64{}
	for r := range numDropReasons {
		want[r.String()] = 0
	}
	want["bad_checksum"] = workers * each
	want["not_peer"] = workers * each
	want["unknown"] = 2
	got := c.Snapshot()
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("Snapshot()[%q] (-want +got):\n-%d\n+%d (present %v)", k, w, g, ok)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Snapshot has %d reasons, want %d", len(got), len(want))
	}
	if g := c.Get(badChecksum); g != workers*each {
		t.Errorf("Get(BadChecksum) = %d, want %d", g, workers*each)
	}
	if g := c.Get(numDropReasons); g != 0 {
		t.Errorf("Get(out of range) = %d, want 0", g)
	}
}
