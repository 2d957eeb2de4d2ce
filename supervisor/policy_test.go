package supervisor

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// step is one event fed to the policy at a time after the start, and the
// actions it must answer with.
type step struct {
	at   time.Duration
	ev   policyEvent
	want []policyAction
}

var (
	started = evStarted{}
	healthy = evHealth{healthy: true}
	sick    = evHealth{healthy: false, reason: "status 500"}
	crashed = evExited{reason: "killed by signal KILL"}
	stopped = evExited{reason: "exit status 0"}
	timeout = evTimeout{}
)

// up is the start of every script: the child starts and becomes healthy.
var up = []step{
	{0, started, []policyAction{acResetHealth{}}},
	{10 * time.Millisecond, healthy, []policyAction{acEligible{true}}},
}

func acts(a ...policyAction) []policyAction { return a }

func script(steps ...[]step) []step {
	var all []step
	for _, s := range steps {
		all = append(all, s...)
	}
	return all
}

func TestPolicy(t *testing.T) {
	defaults := Config{Restarts: 1, RestartWindow: time.Minute, StartTimeout: 30 * time.Second, OnYield: "retry"}
	exit := defaults
	exit.OnYield = "exit"
	none := defaults
	none.Restarts = 0
	two := defaults
	two.Restarts = 2
	yieldCrash := acts(acEligible{false}, acYield{"killed by signal KILL"})

	for _, tc := range []struct {
		name      string
		cfg       Config
		steps     []step
		wantPhase phase
		counts    *counts // when set, the restarts used and the backoff at the end
	}{
		{"a started child is eligible once healthy", defaults, up, phHealthy, nil},
		{"a sick verdict while starting waits for START_TIMEOUT", defaults, []step{
			{0, started, acts(acResetHealth{})},
			{time.Second, sick, nil},
			{29 * time.Second, timeout, nil},
		}, phStarting, nil},
		{"a crash is restarted at once", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
		}), phStarting, nil},
		{"a sick child is stopped, then restarted", defaults, script(up, []step{
			{time.Second, sick, acts(acEligible{false}, acStop{})},
			{time.Second, healthy, nil}, // too late: it is being stopped
			{2 * time.Second, stopped, acts(acStart{})},
		}), phStarting, nil},
		{"no health within START_TIMEOUT counts as a failure", defaults, []step{
			{0, started, acts(acResetHealth{})},
			{30 * time.Second, timeout, acts(acEligible{false}, acStop{})},
			{31 * time.Second, stopped, acts(acStart{})},
		}, phStarting, nil},
		{"a second failure within the window yields", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, healthy, acts(acEligible{true})},
			{3 * time.Second, crashed, yieldCrash},
		}), phWaiting, nil},
		{"a failure exactly RESTART_WINDOW after the last still counts", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, healthy, acts(acEligible{true})},
			{61 * time.Second, crashed, yieldCrash},
		}), phWaiting, nil},
		{"a failure more than RESTART_WINDOW later starts a fresh count", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, healthy, acts(acEligible{true})},
			{61*time.Second + time.Millisecond, crashed, acts(acEligible{false}, acStart{})},
		}), phStarting, nil},
		{"a restarted child that never gets healthy yields", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{31 * time.Second, timeout, acts(acEligible{false}, acYield{"not healthy within START_TIMEOUT (30s)"}, acStop{})},
			{32 * time.Second, stopped, nil},
		}), phWaiting, nil},
		{"RESTARTS=0 yields at the first failure", none, script(up, []step{
			{time.Second, sick, acts(acEligible{false}, acYield{"status 500"}, acStop{})},
		}), phStopping, nil},
		{"RESTARTS=2 restarts twice", two, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, healthy, acts(acEligible{true})},
			{3 * time.Second, crashed, acts(acEligible{false}, acStart{})},
			{3 * time.Second, started, acts(acResetHealth{})},
			{4 * time.Second, healthy, acts(acEligible{true})},
			{5 * time.Second, crashed, yieldCrash},
		}), phWaiting, nil},
		{"ON_YIELD=exit gives up", exit, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{time.Second, healthy, acts(acEligible{true})},
			{2 * time.Second, sick, acts(acEligible{false}, acYield{"status 500"}, acGiveUp{"status 500"})},
			{3 * time.Second, stopped, nil},
			{time.Hour, timeout, nil},
		}), phGaveUp, nil},
		{"after a yield the child is tried again after 1 s and rejoins once healthy", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, crashed, yieldCrash},
			{2*time.Second + 999*time.Millisecond, timeout, nil},
			{3 * time.Second, timeout, acts(acStart{})},
			{3 * time.Second, started, acts(acResetHealth{})},
			{4 * time.Second, healthy, acts(acEligible{true}, acRejoin{})},
		}), phHealthy, nil},
		{"the backoff doubles up to 30 s while tries fail", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, crashed, yieldCrash}, // next try at 3 s
			{3 * time.Second, timeout, acts(acStart{})},
			{3 * time.Second, started, acts(acResetHealth{})},
			{3 * time.Second, crashed, acts(acEligible{false})}, // 2 s: 5 s
			{5 * time.Second, timeout, acts(acStart{})},
			{5 * time.Second, crashed, acts(acEligible{false})}, // 4 s: 9 s
			{9 * time.Second, timeout, acts(acStart{})},
			{9 * time.Second, crashed, acts(acEligible{false})}, // 8 s: 17 s
			{17 * time.Second, timeout, acts(acStart{})},
			{17 * time.Second, crashed, acts(acEligible{false})}, // 16 s: 33 s
			{33 * time.Second, timeout, acts(acStart{})},
			{33 * time.Second, crashed, acts(acEligible{false})}, // 30 s, the cap: 63 s
			{62 * time.Second, timeout, nil},
			{63 * time.Second, timeout, acts(acStart{})},
			{63 * time.Second, crashed, acts(acEligible{false})}, // 30 s again: 93 s
			{93 * time.Second, timeout, acts(acStart{})},
		}), phStarting, nil},
		{"a try that starts but stays sick is stopped and retried later", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, crashed, yieldCrash},
			{3 * time.Second, timeout, acts(acStart{})},
			{3 * time.Second, started, acts(acResetHealth{})},
			{33 * time.Second, timeout, acts(acEligible{false}, acStop{})},
			{34 * time.Second, stopped, nil}, // waits 2 s
			{36 * time.Second, timeout, acts(acStart{})},
		}), phStarting, nil},
		{"a start that fails counts as a crash", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, evExited{reason: "start nginx: no such file"}, acts(acEligible{false}, acYield{"start nginx: no such file"})},
		}), phWaiting, nil},
		{"a brief healthy spell after a try does not reset the backoff", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, crashed, yieldCrash}, // 1 s: next try at 3 s
			{3 * time.Second, timeout, acts(acStart{})},
			{3 * time.Second, started, acts(acResetHealth{})},
			{3 * time.Second, healthy, acts(acEligible{true}, acRejoin{})},
			{4 * time.Second, crashed, yieldCrash}, // 2 s, not 1 s again: 6 s
			{6*time.Second - time.Millisecond, timeout, nil},
			{6 * time.Second, timeout, acts(acStart{})},
		}), phStarting, &counts{used: 1, backoff: 2 * time.Second}},
		{"a try healthy for RESTART_WINDOW settles: restarts and backoff start over", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, crashed, yieldCrash},
			{3 * time.Second, timeout, acts(acStart{})},
			{3 * time.Second, started, acts(acResetHealth{})},
			{3 * time.Second, healthy, acts(acEligible{true}, acRejoin{})},
			{63*time.Second - time.Millisecond, timeout, nil},
			{63 * time.Second, timeout, acts(acSettled{})},
			{70 * time.Second, crashed, acts(acEligible{false}, acStart{})}, // a restart, not a yield
			{70 * time.Second, started, acts(acResetHealth{})},
			{70 * time.Second, crashed, yieldCrash}, // 1 s again: 71 s
			{71*time.Second - time.Millisecond, timeout, nil},
			{71 * time.Second, timeout, acts(acStart{})},
		}), phStarting, &counts{used: 1, backoff: time.Second}},
		{"a restarted child healthy for RESTART_WINDOW settles the restart count", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, healthy, acts(acEligible{true})},
			{62 * time.Second, timeout, acts(acSettled{})},
		}), phHealthy, &counts{used: 0, backoff: 0}},
		{"a healthy child with nothing to start over does not settle", defaults, script(up, []step{
			{time.Hour, timeout, nil},
		}), phHealthy, &counts{used: 0, backoff: 0}},
		{"a failure before settling keeps the count and the backoff", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, crashed, yieldCrash},
			{3 * time.Second, timeout, acts(acStart{})},
			{3 * time.Second, started, acts(acResetHealth{})},
			{3 * time.Second, healthy, acts(acEligible{true}, acRejoin{})},
			{62 * time.Second, sick, acts(acEligible{false}, acYield{"status 500"}, acStop{})},
			{63 * time.Second, timeout, nil}, // the settling it had before is off
			{64 * time.Second, stopped, nil},
		}), phWaiting, &counts{used: 1, backoff: 2 * time.Second}},
		{"a child healthy from its start (no probe) that exits at once backs off 1, 2, 4, 8, 16, 30, 30 s", defaults, script(
			[]step{
				{0, started, acts(acResetHealth{})},
				{0, healthy, acts(acEligible{true})},
				{0, crashed, acts(acEligible{false}, acStart{})},
				{0, started, acts(acResetHealth{})},
				{0, healthy, acts(acEligible{true})},
				{0, crashed, yieldCrash},
			},
			tryHealthyCrash(1*time.Second), tryHealthyCrash(3*time.Second), tryHealthyCrash(7*time.Second),
			tryHealthyCrash(15*time.Second), tryHealthyCrash(31*time.Second), tryHealthyCrash(61*time.Second),
			[]step{
				{91*time.Second - time.Millisecond, timeout, nil},
				{91 * time.Second, timeout, acts(acStart{})},
			},
		), phStarting, &counts{used: 1, backoff: 30 * time.Second}},
		{"a verdict decided before the current child started is discarded", defaults, script(up, []step{
			{5 * time.Second, crashed, acts(acEligible{false}, acStart{})},
			{5 * time.Second, started, acts(acResetHealth{})},
			{4 * time.Second, healthy, nil}, // judged the run that crashed
			{6 * time.Second, healthy, acts(acEligible{true})},
		}), phHealthy, nil},
		{"a verdict while no child runs is discarded", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, crashed, yieldCrash},
			{2500 * time.Millisecond, healthy, nil}, // something else answers the port
			{2600 * time.Millisecond, sick, nil},
			{3 * time.Second, timeout, acts(acStart{})},
		}), phStarting, nil},
		{"a verdict while the failed child is being stopped is discarded", defaults, script(up, []step{
			{time.Second, sick, acts(acEligible{false}, acStop{})},
			{1500 * time.Millisecond, sick, nil},
			{1600 * time.Millisecond, healthy, nil},
			{2 * time.Second, stopped, acts(acStart{})},
			{2 * time.Second, started, acts(acResetHealth{})},
		}), phStarting, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPolicy(&tc.cfg)
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i, s := range tc.steps {
				got := p.handle(t0.Add(s.at), s.ev)
				if !reflect.DeepEqual(got, s.want) {
					t.Fatalf("step %d (%T at %v): (-want +got)\n-%v\n+%v", i, s.ev, s.at, fmtActs(s.want), fmtActs(got))
				}
			}
			if p.phase != tc.wantPhase {
				t.Errorf("phase = %s, want %s", p.phase, tc.wantPhase)
			}
			if tc.counts != nil && (p.used != tc.counts.used || p.backoff != tc.counts.backoff) {
				t.Errorf("restarts used %d, backoff %v; want %d, %v", p.used, p.backoff, tc.counts.used, tc.counts.backoff)
			}
		})
	}
}

// counts are the policy's restarts used and backoff.
type counts struct {
	used    int
	backoff time.Duration
}

// tryHealthyCrash is a try after a yield, at the given time, of a child
// that counts as healthy from its start (no probe) and exits at once.
func tryHealthyCrash(at time.Duration) []step {
	return []step{
		{at - time.Millisecond, timeout, nil},
		{at, timeout, acts(acStart{})},
		{at, started, acts(acResetHealth{})},
		{at, healthy, acts(acEligible{true}, acRejoin{})},
		{at, crashed, acts(acEligible{false}, acYield{"killed by signal KILL"})},
	}
}

func fmtActs(a []policyAction) string {
	s := "["
	for i, x := range a {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%T%+v", x, x)
	}
	return s + "]"
}
