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
	}{
		{"a started child is eligible once healthy", defaults, up, phHealthy},
		{"a sick verdict while starting waits for START_TIMEOUT", defaults, []step{
			{0, started, acts(acResetHealth{})},
			{time.Second, sick, nil},
			{29 * time.Second, timeout, nil},
		}, phStarting},
		{"a crash is restarted at once", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
		}), phStarting},
		{"a sick child is stopped, then restarted", defaults, script(up, []step{
			{time.Second, sick, acts(acEligible{false}, acStop{})},
			{time.Second, healthy, nil}, // too late: it is being stopped
			{2 * time.Second, stopped, acts(acStart{})},
		}), phStarting},
		{"no health within START_TIMEOUT counts as a failure", defaults, []step{
			{0, started, acts(acResetHealth{})},
			{30 * time.Second, timeout, acts(acEligible{false}, acStop{})},
			{31 * time.Second, stopped, acts(acStart{})},
		}, phStarting},
		{"a second failure within the window yields", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, healthy, acts(acEligible{true})},
			{3 * time.Second, crashed, yieldCrash},
		}), phWaiting},
		{"a failure exactly RESTART_WINDOW after the last still counts", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, healthy, acts(acEligible{true})},
			{61 * time.Second, crashed, yieldCrash},
		}), phWaiting},
		{"a failure more than RESTART_WINDOW later starts a fresh count", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, healthy, acts(acEligible{true})},
			{61*time.Second + time.Millisecond, crashed, acts(acEligible{false}, acStart{})},
		}), phStarting},
		{"a restarted child that never gets healthy yields", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{31 * time.Second, timeout, acts(acEligible{false}, acYield{"not healthy within START_TIMEOUT (30s)"}, acStop{})},
			{32 * time.Second, stopped, nil},
		}), phWaiting},
		{"RESTARTS=0 yields at the first failure", none, script(up, []step{
			{time.Second, sick, acts(acEligible{false}, acYield{"status 500"}, acStop{})},
		}), phStopping},
		{"RESTARTS=2 restarts twice", two, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, healthy, acts(acEligible{true})},
			{3 * time.Second, crashed, acts(acEligible{false}, acStart{})},
			{3 * time.Second, started, acts(acResetHealth{})},
			{4 * time.Second, healthy, acts(acEligible{true})},
			{5 * time.Second, crashed, yieldCrash},
		}), phWaiting},
		{"ON_YIELD=exit gives up", exit, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{time.Second, healthy, acts(acEligible{true})},
			{2 * time.Second, sick, acts(acEligible{false}, acYield{"status 500"}, acGiveUp{"status 500"})},
			{3 * time.Second, stopped, nil},
			{time.Hour, timeout, nil},
		}), phGaveUp},
		{"after a yield the child is tried again after 1 s and rejoins once healthy", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, crashed, yieldCrash},
			{2*time.Second + 999*time.Millisecond, timeout, nil},
			{3 * time.Second, timeout, acts(acStart{})},
			{3 * time.Second, started, acts(acResetHealth{})},
			{4 * time.Second, healthy, acts(acEligible{true}, acRejoin{})},
		}), phHealthy},
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
		}), phStarting},
		{"a try that starts but stays sick is stopped and retried later", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, started, acts(acResetHealth{})},
			{2 * time.Second, crashed, yieldCrash},
			{3 * time.Second, timeout, acts(acStart{})},
			{3 * time.Second, started, acts(acResetHealth{})},
			{33 * time.Second, timeout, acts(acEligible{false}, acStop{})},
			{34 * time.Second, stopped, nil}, // waits 2 s
			{36 * time.Second, timeout, acts(acStart{})},
		}), phStarting},
		{"a start that fails counts as a crash", defaults, script(up, []step{
			{time.Second, crashed, acts(acEligible{false}, acStart{})},
			{time.Second, evExited{reason: "start nginx: no such file"}, acts(acEligible{false}, acYield{"start nginx: no such file"})},
		}), phWaiting},
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
		})
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
