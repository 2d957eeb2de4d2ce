package probes

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vipvisor/vipvisor/internal/envconf"
)

// Bounds of CHECK_INTERVAL and CHECK_TIMEOUT. keepalived's vrrp_script runs
// at most once a second; vipvisor's probes are in-process and cheap, so a
// tenth of that is allowed, which still keeps a round from hammering the
// child (at 10ms, a hundred HTTP requests a second to nginx's health URL
// would show in its logs and its load) and leaves CHECK_FALL rounds
// meaningful. An hour between rounds is no longer health checking. A
// probe given less than 10ms fails on an ordinary scheduling delay, not
// on a sick child; one given longer than the interval overlaps the next
// round, so CHECK_TIMEOUT may not exceed CHECK_INTERVAL (unset, it is 1s
// or CHECK_INTERVAL, whichever is shorter).
const (
	MinCheckInterval = 100 * time.Millisecond
	MaxCheckInterval = time.Hour
	MinCheckTimeout  = 10 * time.Millisecond
)

// Config is the probes' settings, read from VIPVISOR_* variables.
type Config struct {
	CheckTCP        string        `split_words:"true" accept:"host:port" desc:"address that must accept a TCP connection"`
	CheckHTTP       string        `split_words:"true" accept:"an http:// or https:// URL" desc:"URL that must answer"`
	CheckHTTPStatus StatusSet     `split_words:"true" default:"200-399" accept:"codes and ranges, e.g. 200,204,300-399" desc:"accepted status codes"`
	CheckHTTPBody   string        `split_words:"true" accept:"any text" desc:"text the body must contain"`
	CheckExec       envconf.Words `split_words:"true" accept:"a command line; quotes as in a shell, no expansion" desc:"command whose exit status 0 means healthy"`
	CheckInterval   time.Duration `split_words:"true" default:"1s" accept:"a duration from 100ms to 1h" desc:"time between probe rounds"`
	CheckTimeout    time.Duration `split_words:"true" default:"1s" accept:"a duration from 10ms up to CHECK_INTERVAL" desc:"per probe (unset: 1s, or CHECK_INTERVAL if that is shorter)"`
	CheckFall       int           `split_words:"true" default:"2" accept:"1-100" desc:"consecutive failures that make the child unhealthy"`
	CheckRise       int           `split_words:"true" default:"1" accept:"1-100" desc:"consecutive successes that make it healthy again"`
	TrackGateway    netip.Addr    `split_words:"true" accept:"an IPv4 or IPv6 unicast address, link-local too, without a zone" desc:"address that must answer ARP (IPv4) or neighbour solicitation (IPv6) for this node to hold or take the VIP"`
}

// Validate checks syntax and ranges. Each error names its variable. An
// unset CHECK_TIMEOUT longer than CHECK_INTERVAL is shortened to it.
func (c *Config) Validate() []error {
	var errs []error
	bad := func(key, reason, accept string) { errs = append(errs, envconf.Invalid(key, reason, accept)) }
	if c.CheckTCP != "" {
		if err := checkHostPort(c.CheckTCP); err != nil {
			bad("CHECK_TCP", err.Error(), "host:port, e.g. 127.0.0.1:80")
		}
	}
	if c.CheckHTTP != "" {
		if err := checkURL(c.CheckHTTP); err != nil {
			bad("CHECK_HTTP", err.Error(), "an http:// or https:// URL, e.g. http://127.0.0.1/health")
		}
	} else if c.CheckHTTPBody != "" {
		bad("CHECK_HTTP_BODY", "set without VIPVISOR_CHECK_HTTP", "empty, or set VIPVISOR_CHECK_HTTP too")
	}
	intervalOK := c.CheckInterval >= MinCheckInterval && c.CheckInterval <= MaxCheckInterval
	if !intervalOK {
		bad("CHECK_INTERVAL", "out of range", "a duration from 100ms to 1h")
	}
	if _, set := os.LookupEnv(envconf.Prefix + "_CHECK_TIMEOUT"); !set && intervalOK {
		c.CheckTimeout = min(c.CheckTimeout, c.CheckInterval)
	}
	switch {
	case c.CheckTimeout < MinCheckTimeout:
		bad("CHECK_TIMEOUT", "out of range", "a duration from 10ms up to VIPVISOR_CHECK_INTERVAL")
	case intervalOK && c.CheckTimeout > c.CheckInterval:
		bad("CHECK_TIMEOUT", fmt.Sprintf("longer than VIPVISOR_CHECK_INTERVAL (%s)", c.CheckInterval),
			"a duration from 10ms up to VIPVISOR_CHECK_INTERVAL")
	}
	if c.CheckFall < 1 || c.CheckFall > 100 {
		bad("CHECK_FALL", "out of range", "1-100")
	}
	if c.CheckRise < 1 || c.CheckRise > 100 {
		bad("CHECK_RISE", "out of range", "1-100")
	}
	if gw := c.TrackGateway; gw.IsValid() {
		if reason := gatewayAddrProblem(gw); reason != "" {
			bad("TRACK_GATEWAY", reason, "an IPv4 or IPv6 unicast address without a zone (it is asked on VIPVISOR_INTERFACE), such as 10.0.0.1 or fe80::1")
		}
	}
	return errs
}

// Any reports whether at least one probe is configured; without one the
// child is judged by being alive.
func (c *Config) Any() bool {
	return c.CheckTCP != "" || c.CheckHTTP != "" || len(c.CheckExec) > 0
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("not host:port")
	}
	if host == "" {
		return fmt.Errorf("no host")
	}
	if n, err := envconf.Decimal(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not 1-65535", port)
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("no host")
	}
	if p := u.Port(); p != "" {
		if n, err := envconf.Decimal(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not 1-65535", p)
		}
	}
	return nil
}

// StatusSet is a set of accepted HTTP status codes, written as a comma list
// of codes and inclusive ranges: 200,204,300-399.
type StatusSet []StatusRange

// StatusRange is an inclusive range of status codes.
type StatusRange struct{ Lo, Hi int }

// Decode implements envconfig.Decoder.
func (s *StatusSet) Decode(v string) error {
	var out StatusSet
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isRange := strings.Cut(item, "-")
		r, err := statusRange(lo, hi, isRange)
		if err != nil {
			return fmt.Errorf("%q: %w", item, err)
		}
		out = append(out, r)
	}
	*s = out
	return nil
}

func statusRange(lo, hi string, isRange bool) (StatusRange, error) {
	if !isRange {
		hi = lo
	}
	a, errA := envconf.Decimal(strings.TrimSpace(lo))
	b, errB := envconf.Decimal(strings.TrimSpace(hi))
	switch {
	case errA != nil || errB != nil:
		return StatusRange{}, fmt.Errorf("not a status code or range")
	case a < 100 || b > 599:
		return StatusRange{}, fmt.Errorf("status codes are 100-599")
	case a > b:
		return StatusRange{}, fmt.Errorf("range runs backwards")
	}
	return StatusRange{a, b}, nil
}

// Contains reports whether code is accepted.
func (s StatusSet) Contains(code int) bool {
	for _, r := range s {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

func (s StatusSet) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = strconv.Itoa(r.Lo)
		if r.Hi != r.Lo {
			parts[i] += "-" + strconv.Itoa(r.Hi)
		}
	}
	return strings.Join(parts, ",")
}
