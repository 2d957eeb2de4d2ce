package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// watchEvery is how often a watcher asks vipvisor for its /status.
const watchEvery = 20 * time.Millisecond

// status is the part of vipvisor's /status the demo shows.
type status struct {
	Yielded bool `json:"yielded"`
	VRRP    struct {
		State    string `json:"state"`
		Priority int    `json:"priority"`
		Master   string `json:"master"`
		Primary  string `json:"primary"`
	} `json:"vrrp"`
	Child struct {
		PID      int    `json:"pid"`
		Running  bool   `json:"running"`
		Healthy  bool   `json:"healthy"`
		Health   string `json:"health"`
		Restarts int    `json:"restarts"`
	} `json:"child"`
}

// String is one line for a person on call: state, priority, master, nginx.
func (s status) String() string {
	line := fmt.Sprintf("%-6s priority %3d", s.VRRP.State, s.VRRP.Priority)
	child := "nginx not running"
	switch {
	case s.Child.Running && s.Child.Healthy:
		child = fmt.Sprintf("nginx pid %d healthy", s.Child.PID)
	case s.Child.Running:
		child = fmt.Sprintf("nginx pid %d not healthy", s.Child.PID)
	}
	if s.Child.Health != "" && !s.Child.Healthy {
		child += " (" + s.Child.Health + ")"
	}
	line += "  " + child
	if s.VRRP.Master != "" && s.VRRP.Master != s.VRRP.Primary {
		line += "  master " + s.VRRP.Master
	}
	if s.Yielded {
		line += "  yielded"
	}
	return line
}

// change is a VRRP state a watcher saw vipvisor enter; "gone" when /status
// did not answer.
type change struct {
	At    time.Time
	State string
}

// watcher asks one vipvisor for its /status every 20ms, from inside its
// node, and keeps every change of state with the time it saw it.
type watcher struct {
	node *lab.Node
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	started bool
	last    status
	ok      bool
	changes []change
}

// newWatcher returns a watcher of the vipvisor on n, not yet started; a
// cleanup stops it.
func newWatcher(t lab.T, n *lab.Node) *watcher {
	w := &watcher{node: n, stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(w.close)
	return w
}

func (w *watcher) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		w.started = true
		go w.run()
	}
}

// close stops the watcher and waits for its request in flight.
func (w *watcher) close() {
	w.mu.Lock()
	started := w.started
	w.started = true // so that start does not run it after close
	w.mu.Unlock()
	close(w.stop)
	if started {
		<-w.done
	}
}

func (w *watcher) run() {
	defer close(w.done)
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	for {
		w.record(w.get())
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
	}
}

func (w *watcher) get() (status, error) {
	var s status
	code, body, err := w.node.HTTPGet("http://"+statusAddr+"/status", 200*time.Millisecond)
	if err == nil && code != 200 {
		err = fmt.Errorf("status %d", code)
	}
	if err == nil {
		err = json.Unmarshal([]byte(body), &s)
	}
	return s, err
}

func (w *watcher) record(s status, err error) {
	state := s.VRRP.State
	if err != nil {
		state = "gone"
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last, w.ok = s, err == nil
	n := len(w.changes)
	if n == 0 && err != nil {
		return // still starting
	}
	if n == 0 || w.changes[n-1].State != state {
		w.changes = append(w.changes, change{At: time.Now(), State: state})
	}
}

// current returns the last status, and whether /status answered.
func (w *watcher) current() (status, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.ok
}

// entered returns the first change the watcher saw, at or after since,
// into one of states.
func (w *watcher) entered(since time.Time, states ...string) (change, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes {
		if !c.At.Before(since) && slices.Contains(states, c.State) {
			return c, true
		}
	}
	return change{}, false
}

// trail shows the states seen from since on, each with its time after
// since: "MASTER → FAULT +12ms → BACKUP +1.35s". The state held at since
// comes first, unmarked.
func (w *watcher) trail(since time.Time) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var parts []string
	for i, c := range w.changes {
		switch {
		case c.At.Before(since) && (i+1 == len(w.changes) || !w.changes[i+1].At.Before(since)):
			parts = append(parts, c.State)
		case !c.At.Before(since):
			parts = append(parts, fmt.Sprintf("%s %s", c.State, plus(c.At.Sub(since))))
		}
	}
	return strings.Join(parts, " → ")
}
