package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// summary is every run of one scenario with one setup.
type summary struct {
	scen  *scenario
	setup *setup
	runs  []result // sorted by outage, shortest first
	// outage and failed requests: the median and the worst run.
	medOutage, maxOutage time.Duration
	medToEnd, maxToEnd   bool // that run's outage lasted to the window's end
	medFailed, maxFailed int
	// the load's failed requests: median and worst run, and the
	// failures of the worst by kind.
	medLoad, maxLoad int
	worstKinds       string
	// toB: the median and worst time to b's first answer, over the runs
	// in which b answered (bRuns of them).
	medToB, maxToB time.Duration
	bRuns          int
	last           string // who answered last, counted: "a ×5"
}

// summarize groups results by scenario and setup, in the order of
// scenarios and setups.
func summarize(results []result) []summary {
	var out []summary
	for _, sc := range scenarios {
		for _, s := range setups {
			var runs []result
			for _, r := range results {
				if r.scen == sc && r.setup == s {
					runs = append(runs, r)
				}
			}
			if len(runs) > 0 {
				out = append(out, summarize1(sc, s, runs))
			}
		}
	}
	return out
}

func summarize1(sc *scenario, s *setup, runs []result) summary {
	runs = slices.Clone(runs)
	slices.SortStableFunc(runs, func(x, y result) int { return cmp.Compare(x.outage, y.outage) })
	sm := summary{scen: sc, setup: s, runs: runs}
	med, worst := runs[(len(runs)-1)/2], runs[len(runs)-1]
	sm.medOutage, sm.medToEnd = medianDuration(outages(runs)), med.toEnd
	sm.maxOutage, sm.maxToEnd = worst.outage, worst.toEnd
	var failed, load []int
	var toB []time.Duration
	lasts := map[string]int{}
	for _, r := range runs {
		failed = append(failed, r.failed)
		load = append(load, r.load.failed)
		if r.load.failed >= sm.maxLoad {
			sm.maxLoad, sm.worstKinds = r.load.failed, r.load.kinds
		}
		if r.toB >= 0 {
			toB = append(toB, r.toB)
		}
		lasts[r.last]++
	}
	sm.medFailed, sm.maxFailed = medianInt(failed), slices.Max(failed)
	sm.medLoad = medianInt(load)
	sm.bRuns = len(toB)
	if len(toB) > 0 {
		sm.medToB, sm.maxToB = medianDuration(toB), slices.Max(toB)
	}
	sm.last = countWho(lasts)
	return sm
}

// median returns the median run, the one the pictures show: with an even
// number of runs, the shorter of the middle two.
func (sm summary) median() result { return sm.runs[(len(sm.runs)-1)/2] }

func outages(runs []result) []time.Duration {
	out := make([]time.Duration, len(runs))
	for i, r := range runs {
		out[i] = r.outage
	}
	return out
}

// medianDuration returns the median; of an even number of values, the
// mean of the middle two.
func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianInt(xs []int) int {
	ds := make([]time.Duration, len(xs))
	for i, x := range xs {
		ds[i] = time.Duration(x)
	}
	return int(medianDuration(ds))
}

// countWho formats a count of answers, most frequent first: "a ×4, b ×1".
func countWho(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y string) int { return cmp.Or(cmp.Compare(m[y], m[x]), cmp.Compare(x, y)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		if k == "" {
			k = "none"
		}
		parts[i] = fmt.Sprintf("%s ×%d", k, m[keys[i]])
	}
	return strings.Join(parts, ", ")
}

// ratio formats vipvisor's figure over another's: "0.04×"; "—" when the
// other is zero.
func ratio(ours, theirs time.Duration) string {
	switch {
	case theirs <= 0:
		return "—"
	case ours == 0:
		return "0×"
	}
	r := float64(ours) / float64(theirs)
	if r < 0.1 {
		return fmt.Sprintf("%.3f×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

// lookup returns the summary of scenario sc with setup s.
func lookup(sums []summary, sc *scenario, s *setup) (summary, bool) {
	for _, sm := range sums {
		if sm.scen == sc && sm.setup == s {
			return sm, true
		}
	}
	return summary{}, false
}
