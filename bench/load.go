package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// The load: besides the client polling every 10ms, which times the
// outage, a second client on the same node asks the VIP at a site's
// pace, open loop, every other request over a kept-alive connection, with
// the timeout of an impatient user. It counts the requests a fault costs
// when many are in flight: those refused while nginx restarts, those
// reset with a crashed worker's connections, those lost to a hand-over.
const (
	loadRate    = 2000 // requests a second
	loadTimeout = 2 * time.Second
)

// loadCount is what the load saw in one scenario.
type loadCount struct {
	made, failed int
	// kinds are the failures by kind, most first, with when the first
	// and last of each started, from t0: "!refused×12 (+1…+14 ms) !reset×1 (+0 ms)".
	kinds string
}

func countLoad(ss lab.Samples, t0 time.Time) loadCount {
	c := loadCount{made: len(ss)}
	byKind := map[string]int{}
	first, last := map[string]time.Duration{}, map[string]time.Duration{}
	for _, s := range ss {
		if !s.OK() {
			c.failed++
			k, at := s.Who(), s.At.Sub(t0)
			if byKind[k] == 0 {
				first[k] = at
			}
			byKind[k]++
			last[k] = at
		}
	}
	kinds := slices.SortedFunc(maps.Keys(byKind), func(x, y string) int {
		return cmp.Or(cmp.Compare(byKind[y], byKind[x]), cmp.Compare(x, y))
	})
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		when := fmt.Sprintf("%+d ms", first[k].Milliseconds())
		if byKind[k] > 1 {
			when = fmt.Sprintf("%+d…%+d ms", first[k].Milliseconds(), last[k].Milliseconds())
		}
		parts[i] = fmt.Sprintf("%s×%d (%s)", k, byKind[k], when)
	}
	c.kinds = strings.Join(parts, " ")
	return c
}
