package probes

import (
	"fmt"
	"testing"
)

func TestCounter(t *testing.T) {
	type step struct{ healthy, changed bool }
	h, u := true, false
	tests := []struct {
		name       string
		rise, fall int
		results    string // '+' pass, '-' fail
		want       []step
	}{
		{"1/1 starts unhealthy", 1, 1, "-", []step{{u, false}}},
		{"1/1 first pass", 1, 1, "+", []step{{h, true}}},
		{"1/1 flap", 1, 1, "+-+-", []step{{h, true}, {u, true}, {h, true}, {u, true}}},
		{"1/1 steady", 1, 1, "++--", []step{{h, true}, {h, false}, {u, true}, {u, false}}},
		{"2/3 rise", 2, 3, "+-++", []step{{u, false}, {u, false}, {u, false}, {h, true}}},
		{"2/3 fall", 2, 3, "++---", []step{{u, false}, {h, true}, {h, false}, {h, false}, {u, true}}},
		{"2/3 interrupted fall", 2, 3, "++--+---", []step{
			{u, false}, {h, true}, {h, false}, {h, false}, {h, false}, {h, false}, {h, false}, {u, true}}},
		{"3/1 interrupted rise", 3, 1, "++-+++", []step{
			{u, false}, {u, false}, {u, false}, {u, false}, {u, false}, {h, true}}},
		{"0/0 counts as 1/1", 0, 0, "+-", []step{{h, true}, {u, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCounter(tc.rise, tc.fall)
			for i, r := range tc.results {
				healthy, changed := c.Observe(r == '+')
				if got := (step{healthy, changed}); got != tc.want[i] {
					t.Errorf("after %q: (-want +got)\n-%+v\n+%+v", tc.results[:i+1], tc.want[i], got)
				}
			}
		})
	}
}

func TestCounterReset(t *testing.T) {
	c := NewCounter(2, 2)
	c.Observe(true)
	c.Observe(true)
	if !c.Healthy() {
		t.Fatal("not healthy after rise passes")
	}
	c.Observe(false) // one failure towards fall
	c.Reset()
	if c.Healthy() {
		t.Fatal("healthy after Reset")
	}
	var got []string
	for _, ok := range []bool{true, true} {
		h, ch := c.Observe(ok)
		got = append(got, fmt.Sprint(h, ch))
	}
	if want := "[false false true true]"; fmt.Sprint(got) != want {
		t.Errorf("after Reset, two passes: (-want +got)\n-%s\n+%s", want, fmt.Sprint(got))
	}
	// A Reset halfway through a rise starts the count over.
	c.Reset()
	c.Observe(true)
	c.Reset()
	if h, _ := c.Observe(true); h {
		t.Error("one pass after Reset made a rise-2 counter healthy")
	}
}
