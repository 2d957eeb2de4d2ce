package probes

// Counter turns consecutive results into a verdict: Fall consecutive
// failures make healthy → unhealthy, Rise consecutive successes make
// unhealthy → healthy. It starts unhealthy, so a new child must pass Rise
// rounds before it is trusted. A result that agrees with the current
// verdict clears the count towards the other one: fall 3 means three
// failures in a row, not three in all.
//
// A Counter is a plain value with no clock or lock; the Prober guards it.
type Counter struct {
	rise, fall int
	healthy    bool
	run        int // consecutive results against the current verdict
}

// NewCounter returns an unhealthy Counter. Rise and fall below 1 count as 1.
func NewCounter(rise, fall int) *Counter {
	return &Counter{rise: max(rise, 1), fall: max(fall, 1)}
}

// Observe counts one result and returns the verdict after it, and whether
// this result changed it.
func (c *Counter) Observe(ok bool) (healthy, changed bool) {
	if ok == c.healthy {
		c.run = 0
		return c.healthy, false
	}
	c.run++
	need := c.rise
	if c.healthy {
		need = c.fall
	}
	if c.run < need {
		return c.healthy, false
	}
	c.healthy, c.run = ok, 0
	return c.healthy, true
}

// Healthy returns the current verdict.
func (c *Counter) Healthy() bool { return c.healthy }

// Reset goes back to unhealthy with no count, as for a restarted child
// that must start over.
func (c *Counter) Reset() {
	c.healthy, c.run = false, 0
}
