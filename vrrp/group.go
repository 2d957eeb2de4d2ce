package vrrp

import (
	"context"
	"log/slog"
	"time"
)

// Group is the node's virtual routers driven as one: each instance has
// its own socket, state machine, timers and addresses, but one child's
// health decides for all of them, so a verdict or a fault is given to
// every instance. The supervisor drives a Group of one for a plain
// configuration.
type Group struct {
	instances []*instance
	changes   chan Change
}

// NewGroup opens every instance's socket and resolves its interface;
// nothing on the host changes until Run. If one cannot be opened, those
// opened before it are closed.
func NewGroup(cfgs []*Config, log *slog.Logger) (*Group, error) {
	var opened []*instance
	for _, c := range cfgs {
		l := log
		if c.Name != "" {
			l = log.With("instance", c.Name)
		}
		in, err := openInstance(c, l)
		if err != nil {
			for _, o := range opened {
				o.conn.Close()
			}
			return nil, err
		}
		opened = append(opened, in)
	}
	return newGroup(opened), nil
}

// newGroup drives instances, which have not run yet, as one.
func newGroup(instances []*instance) *Group {
	// Room for a burst in which every instance changes state a few times
	// (a yield, a rejoin) before the supervisor reads.
	g := &Group{instances: instances, changes: make(chan Change, 64+16*len(instances))}
	for _, in := range instances {
		in.changes = g.changes
	}
	return g
}

// Run drives every instance until all have stopped. The first to fail
// stops the others at once (their addresses removed) and its error is
// returned.
func (g *Group) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, len(g.instances))
	for _, in := range g.instances {
		go func() { done <- in.Run(ctx) }()
	}
	var first error
	for range g.instances {
		if err := <-done; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// SetHealthy gives the child's health to every instance.
func (g *Group) SetHealthy(healthy bool) {
	for _, in := range g.instances {
		in.SetHealthy(healthy)
	}
}

// SetFault sets or clears a fault of the node (the child yielded, the
// gateway is gone) in every instance.
func (g *Group) SetFault(source string, on bool) {
	for _, in := range g.instances {
		in.SetFault(source, on)
	}
}

// Shutdown begins the planned stop of every instance; the channel is
// closed once all of them have let their addresses go.
func (g *Group) Shutdown() <-chan struct{} {
	stopped := make([]<-chan struct{}, len(g.instances))
	for k, in := range g.instances {
		stopped[k] = in.Shutdown()
	}
	all := make(chan struct{})
	go func() {
		for _, c := range stopped {
			<-c
		}
		close(all)
	}()
	return all
}

// Changes delivers every instance's transitions, each in order; Change
// names its instance.
func (g *Group) Changes() <-chan Change { return g.changes }

// Status returns each instance's snapshot, in configuration order.
func (g *Group) Status() []InstanceStatus {
	out := make([]InstanceStatus, len(g.instances))
	for k, in := range g.instances {
		out[k] = in.Status()
	}
	return out
}

// LeaseVIPs makes every instance hold its addresses with lifetime d
// (see vipSet.SetLease).
func (g *Group) LeaseVIPs(d time.Duration) error {
	for _, in := range g.instances {
		if err := in.LeaseVIPs(d); err != nil {
			return err
		}
	}
	return nil
}
