package lab

import "sync"

// background is the goroutine of a Client or a Load: started at most
// once at a time, stopped and waited for.
type background struct {
	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}
}

// start, unless the goroutine runs already, calls setup and runs what it
// returns in the background with a channel that closes on end; setup
// runs with the goroutine's lock held, so it may set what the goroutine
// will read. It reports whether it started one.
func (b *background) start(setup func() func(stop <-chan struct{})) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stop != nil {
		return false
	}
	run := setup()
	stop, done := make(chan struct{}), make(chan struct{})
	b.stop, b.done = stop, done
	go func() {
		defer close(done)
		run(stop)
	}()
	return true
}

// end stops the goroutine and waits for it to return. It may be called
// more than once, and before start.
func (b *background) end() {
	b.mu.Lock()
	stop, done := b.stop, b.done
	b.stop, b.done = nil, nil
	b.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	<-done
}
