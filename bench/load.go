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
	kinds        string // the failures by kind, most first: "!refused×12 !reset×1"
}

func countLoad(ss lab.Samples) loadCount {
	c := loadCount{made: len(ss)}
	byKind := map[string]int{}
	for _, s := range ss {
		if !s.OK() {
			c.failed++
			byKind[s.Who()]++
		}
	}
	kinds := slices.SortedFunc(maps.Keys(byKind), func(x, y string) int {
		return cmp.Or(cmp.Compare(byKind[y], byKind[x]), cmp.Compare(x, y))
	})
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s×%d", k, byKind[k])
	}
	c.kinds = strings.Join(parts, " ")
	return c
}
