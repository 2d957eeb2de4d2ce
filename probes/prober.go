package probes

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cutGrace is how long past the timeout a round waits for a probe that has
// not returned. Every probe in this package returns by its deadline; the
// grace only lets one that is a few milliseconds late report its own
// reason, and keeps a probe that hangs from stalling the verdicts.
const cutGrace = 100 * time.Millisecond

// Verdict is a change of judgement, delivered by a Prober.
type Verdict struct {
	// Healthy is the new judgement.
	Healthy bool
	// Reason says why, for logs and sd_notify STATUS: the failing probes
	// and their reasons ("http http://127.0.0.1/health: status 503"), or
	// how many rounds passed.
	Reason string
	// At is when the round that decided it ended.
	At time.Time
}

// Prober runs rounds of probes and reports changes of judgement. Every
// interval it runs all its probes concurrently, each with the timeout; a
// round passes when every probe passes. It logs every failure with its
// reason, counts rounds with a Counter (so it starts unhealthy) and sends
// a Verdict on every change.
//
// Its schedule runs on the standard clock, and its tests run it inside a
// testing/synctest bubble, where that clock is fake: the Prober is
// goroutines, timers and channels around probes, which the tests replace
// with fakes.
type Prober struct {
	probes   []Probe
	interval time.Duration
	timeout  time.Duration
	rise     int
	log      *slog.Logger
	busy     []atomic.Bool  // busy[i] while a check of probes[i] runs
	checks   sync.WaitGroup // every check started and not yet returned

	mu      sync.Mutex
	counter *Counter
	gen     uint64    // bumped by Reset: a round begun before is discarded
	pending *delivery // the verdict Run is sending, or nil
}

// delivery is one verdict on its way out, which Reset can withdraw.
type delivery struct {
	cancel chan struct{} // closed by Reset
	done   chan struct{} // closed by Run once the send is over, either way
}

// NewProber returns a Prober for probes, which are checked every interval
// with timeout each; rise and fall are as for NewCounter, and interval and
// timeout must be positive. With no probes every round passes. A nil log
// discards messages.
func NewProber(probes []Probe, interval, timeout time.Duration, rise, fall int, log *slog.Logger) *Prober {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Prober{
		probes:   append([]Probe(nil), probes...),
		interval: interval,
		timeout:  timeout,
		rise:     max(rise, 1),
		log:      log,
		busy:     make([]atomic.Bool, len(probes)),
		counter:  NewCounter(rise, fall),
	}
}

// Run runs rounds until ctx is done, the first at once and each next one
// interval after the previous one began (or as soon as it ended, if it
// took longer), and sends a Verdict on out whenever the judgement changes.
// Out is best unbuffered: then no verdict decided before a Reset is
// received after it. Run must not be called twice at once; it returns
// once every check it started has returned.
func (p *Prober) Run(ctx context.Context, out chan<- Verdict) {
	defer p.checks.Wait()
	next := time.NewTimer(0)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		}
		began := time.Now()
		gen := p.generation()
		results := p.round(ctx)
		if ctx.Err() != nil {
			return
		}
		p.logFailures(results)
		v, d, kept := p.judge(gen, results)
		if !kept {
			p.log.Debug("probe round discarded: reset while it ran")
		}
		if d != nil && !p.deliver(ctx, out, v, d) {
			return
		}
		next.Reset(p.interval - time.Since(began))
	}
}

// Reset starts the counting over: the Prober is unhealthy again, without
// a verdict saying so, and the next verdict needs rise passing rounds.
// The round in progress, if any, is discarded, and a verdict not yet
// received is withdrawn. It is safe to call from any goroutine, also the
// one that receives the verdicts; the supervisor calls it when it
// restarts the child.
func (p *Prober) Reset() {
	p.mu.Lock()
	p.counter.Reset()
	p.gen++
	d := p.pending
	p.pending = nil
	if d != nil {
		close(d.cancel)
	}
	p.mu.Unlock()
	if d != nil {
		<-d.done
	}
}

func (p *Prober) generation() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen
}

// indexed is a probe's result with its place in the round.
type indexed struct {
	i int
	Result
}

// round checks every probe concurrently under one deadline and returns
// their results in order. A probe still running from an earlier round is
// not started again, and one that has not returned by timeout plus
// cutGrace is left behind; both count as failures.
func (p *Prober) round(ctx context.Context) []Result {
	rctx, cancel := withTimeout(ctx, p.timeout)
	defer cancel()
	results := make([]Result, len(p.probes))
	reported := make([]bool, len(p.probes))
	got := make(chan indexed, len(p.probes)) // room for all: a late check never blocks
	waiting := 0
	for i, pr := range p.probes {
		if !p.busy[i].CompareAndSwap(false, true) {
			results[i], reported[i] = Result{Reason: "still running since an earlier round"}, true
			continue
		}
		waiting++
		p.checks.Go(func() {
			r := pr.Check(rctx)
			p.busy[i].Store(false) // before the result: the next round may start at once
			got <- indexed{i, r}
		})
	}
	cut := time.NewTimer(p.timeout + cutGrace)
	defer cut.Stop()
	for ; waiting > 0; waiting-- {
		select {
		case r := <-got:
			results[r.i], reported[r.i] = r.Result, true
		case <-cut.C:
			for i := range results {
				if !reported[i] {
					results[i] = Result{Reason: "did not return within timeout " + p.timeout.String(), Took: p.timeout + cutGrace}
				}
			}
			return results
		}
	}
	return results
}

// logFailures logs every failed probe of a round with its reason.
func (p *Prober) logFailures(results []Result) {
	for i, r := range results {
		if !r.OK {
			p.log.Warn("probe failed", "probe", p.probes[i].Name(), "reason", r.Reason, "took", r.Took.Round(time.Microsecond))
		}
	}
}

// judge counts a round begun in generation gen. It returns kept false if
// a Reset came in between; otherwise, if the judgement changed, the
// verdict and its delivery, which Reset can withdraw from then on.
func (p *Prober) judge(gen uint64, results []Result) (Verdict, *delivery, bool) {
	ok, why := summary(p.probes, results)
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen {
		return Verdict{}, nil, false
	}
	healthy, changed := p.counter.Observe(ok)
	if !changed {
		return Verdict{}, nil, true
	}
	v := Verdict{Healthy: healthy, Reason: why, At: time.Now()}
	if healthy {
		v.Reason = "probes passed"
		if p.rise > 1 {
			v.Reason = fmt.Sprintf("probes passed %d rounds in a row", p.rise)
		}
	}
	d := &delivery{cancel: make(chan struct{}), done: make(chan struct{})}
	p.pending = d
	return v, d, true
}

// summary says whether a round passed and, if not, which probes failed
// and why: "tcp 127.0.0.1:80: connection refused; exec check.sh: exit
// status 1".
func summary(probes []Probe, results []Result) (bool, string) {
	var failed []string
	for i, r := range results {
		if !r.OK {
			failed = append(failed, probes[i].Name()+": "+r.Reason)
		}
	}
	return len(failed) == 0, strings.Join(failed, "; ")
}

// deliver sends v on out unless Reset withdraws it first; it returns
// false when ctx ended first.
func (p *Prober) deliver(ctx context.Context, out chan<- Verdict, v Verdict, d *delivery) bool {
	defer func() {
		p.mu.Lock()
		if p.pending == d {
			p.pending = nil
		}
		p.mu.Unlock()
		close(d.done)
	}()
	select {
	case out <- v:
		p.log.Debug("probe verdict", "healthy", v.Healthy, "reason", v.Reason)
		return true
	case <-d.cancel:
		p.log.Debug("probe verdict withdrawn: reset before it was received", "healthy", v.Healthy)
		return true
	case <-ctx.Done():
		return false
	}
}
