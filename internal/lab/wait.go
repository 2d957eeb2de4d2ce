package lab

import (
	"time"
)

// waitPoll is how often WaitFor checks its condition.
const waitPoll = 10 * time.Millisecond

// WaitFor checks cond every 10ms until it holds, failing the test with what
// in the message if it does not within timeout. It is for conditions that
// only real time brings about: a VIP moving, a process answering.
func WaitFor(t T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("lab: waited %v for %s", timeout, what)
		}
		time.Sleep(waitPoll)
	}
}
