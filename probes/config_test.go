package probes

import (
	"os"
	"strings"
	"testing"
	"time"
)

// validConfig is the defaults, as decoding leaves them.
func validConfig() Config {
	return Config{CheckHTTPStatus: StatusSet{{200, 399}}, CheckInterval: time.Second,
		CheckTimeout: time.Second, CheckFall: 2, CheckRise: 1}
}

func TestConfigDurationBounds(t *testing.T) {
	for _, tc := range []struct {
		name            string
		interval, tmout time.Duration
		timeoutSet      bool
		badKey          string // "" when accepted
		wantTimeout     time.Duration
	}{
		{"defaults", time.Second, time.Second, false, "", time.Second},
		{"lowest interval", 100 * time.Millisecond, 10 * time.Millisecond, true, "", 10 * time.Millisecond},
		{"highest interval", time.Hour, time.Hour, true, "", time.Hour},
		{"unset timeout follows a shorter interval", 500 * time.Millisecond, time.Second, false, "", 500 * time.Millisecond},
		{"unset timeout stays under a longer interval", 5 * time.Second, time.Second, false, "", time.Second},
		{"interval too short", 99 * time.Millisecond, 10 * time.Millisecond, true, "CHECK_INTERVAL", 0},
		{"interval 1ns", time.Nanosecond, 10 * time.Millisecond, true, "CHECK_INTERVAL", 0},
		{"interval too long", time.Hour + time.Second, time.Second, true, "CHECK_INTERVAL", 0},
		{"timeout too short", time.Second, 9 * time.Millisecond, true, "CHECK_TIMEOUT", 0},
		{"timeout zero", time.Second, 0, true, "CHECK_TIMEOUT", 0},
		{"timeout above the interval", 200 * time.Millisecond, 500 * time.Millisecond, true, "CHECK_TIMEOUT", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("VIPVISOR_CHECK_TIMEOUT", tc.tmout.String())
			if !tc.timeoutSet {
				os.Unsetenv("VIPVISOR_CHECK_TIMEOUT")
			}
			c := validConfig()
			c.CheckInterval, c.CheckTimeout = tc.interval, tc.tmout
			errs := c.Validate()
			if tc.badKey == "" {
				if len(errs) != 0 {
					t.Fatalf("%v, want accepted", errs)
				}
				if c.CheckTimeout != tc.wantTimeout {
					t.Errorf("timeout %s, want %s", c.CheckTimeout, tc.wantTimeout)
				}
				return
			}
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "VIPVISOR_"+tc.badKey) || !strings.Contains(errs[0].Error(), "accepted: ") {
				t.Errorf("%v, want one error about VIPVISOR_%s saying what is accepted", errs, tc.badKey)
			}
		})
	}
}

func TestStatusSetIsDecimal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" for an error
	}{
		{"200", "200"},
		{"0200", "200"},
		{"200-0299", "200-299"},
		{"+200", ""},
		{"0xc8", ""},
		{"2_00", ""},
		{"200-+299", ""},
	} {
		var s StatusSet
		err := s.Decode(tc.in)
		if tc.want == "" && err == nil {
			t.Errorf("Decode(%q) = %s, want an error", tc.in, s)
		}
		if tc.want != "" && (err != nil || s.String() != tc.want) {
			t.Errorf("Decode(%q) = %s, %v; want %s", tc.in, s, err, tc.want)
		}
	}
}

func TestHostPortIsDecimal(t *testing.T) {
	for _, s := range []string{"127.0.0.1:+80", "127.0.0.1:0x50", "127.0.0.1:8_0", "127.0.0.1:0", "127.0.0.1:65536"} {
		if checkHostPort(s) == nil {
			t.Errorf("checkHostPort(%q) accepted it", s)
		}
		if checkURL("http://"+s+"/") == nil {
			t.Errorf("checkURL(http://%s/) accepted it", s)
		}
	}
	if err := checkHostPort("127.0.0.1:080"); err != nil {
		t.Errorf("127.0.0.1:080: %v, want port 80", err)
	}
}
