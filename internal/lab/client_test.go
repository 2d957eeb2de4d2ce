package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// at returns a sample that started ms milliseconds after t0 and took 5ms.
func at(ms int, who string) Sample {
	s := Sample{At: t0.Add(time.Duration(ms) * time.Millisecond), Took: 5 * time.Millisecond}
	switch who {
	case "!refused":
		s.Err = &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	case "!timeout":
		s.Err, s.Took = context.DeadlineExceeded, 100*time.Millisecond
	case "!reset":
		s.Err = &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	case "!eof":
		s.Err = io.EOF
	case "!502":
		s.Status, s.Body = 502, "bad gateway"
	default:
		s.Status, s.Body = 200, who+"\n"
	}
	return s
}

func TestTimeline(t *testing.T) {
	tests := []struct {
		name         string
		samples      []Sample
		wantSpans    []string
		wantOutage   time.Duration
		wantFailures int
	}{
		{name: "empty"},
		{
			name:      "no failures",
			samples:   []Sample{at(0, "a"), at(10, "a"), at(20, "b")},
			wantSpans: []string{"a×2", "b×1"},
		},
		{
			name:         "failover",
			samples:      []Sample{at(0, "a"), at(10, "!refused"), at(20, "!refused"), at(30, "b")},
			wantSpans:    []string{"a×1", "!refused×2", "b×1"},
			wantOutage:   20 * time.Millisecond,
			wantFailures: 2,
		},
		{
			name:         "ends failing",
			samples:      []Sample{at(0, "a"), at(10, "!timeout")},
			wantSpans:    []string{"a×1", "!timeout×1"},
			wantOutage:   100 * time.Millisecond,
			wantFailures: 1,
		},
		{
			name: "longest of two",
			samples: []Sample{at(0, "!502"), at(10, "a"), at(20, "!refused"), at(30, "!timeout"),
				at(140, "!timeout"), at(250, "b")},
			wantSpans:    []string{"!502×1", "a×1", "!refused×1", "!timeout×2", "b×1"},
			wantOutage:   230 * time.Millisecond,
			wantFailures: 4,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range spans(tc.samples) {
				got = append(got, s.String())
			}
			if !slices.Equal(got, tc.wantSpans) {
				t.Errorf("spans: (-want +got)\n-%v\n+%v", tc.wantSpans, got)
			}
			if got := longestOutage(tc.samples); got != tc.wantOutage {
				t.Errorf("longestOutage = %v, want %v", got, tc.wantOutage)
			}
			if got := failures(tc.samples); got != tc.wantFailures {
				t.Errorf("failures = %d, want %d", got, tc.wantFailures)
			}
		})
	}
}

func TestSamplesBetween(t *testing.T) {
	all := Samples{at(0, "a"), at(10, "!refused"), at(20, "b"), at(30, "b")}
	tests := []struct {
		name     string
		from, to time.Time
		want     string
	}{
		{"all", t0, time.Time{}, "a×1 !refused×1 b×2"},
		{"from is inclusive", t0.Add(10 * time.Millisecond), time.Time{}, "!refused×1 b×2"},
		{"to is exclusive", t0, t0.Add(20 * time.Millisecond), "a×1 !refused×1"},
		{"none", t0.Add(time.Second), time.Time{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := all.Between(tc.from, tc.to).String(); got != tc.want {
				t.Errorf("Between = %q, want %q", got, tc.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

func TestErrKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "timeout"},
		{&url.Error{Op: "Get", URL: "http://x", Err: timeoutErr{}}, "timeout"},
		{&net.OpError{Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "refused"},
		{&net.OpError{Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, "unreachable"},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), "reset"},
		{&url.Error{Op: "Get", URL: "http://x", Err: io.EOF}, "eof"},
		{errors.New("odd"), "error"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := errKind(tc.err); got != tc.want {
				t.Errorf("errKind(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestClientSeesVIPMove(t *testing.T) {
	requireNginx(t)
	l := New(t, netip.MustParsePrefix("10.77.3.0/24"))
	a, b, c := l.AddNode("a", l.Host(11)), l.AddNode("b", l.Host(12)), l.AddNode("c", l.Host(20))
	for _, n := range []*Node{a, b} {
		conf := NginxConf(t, t.TempDir(), netip.AddrPortFrom(netip.IPv4Unspecified(), 80), n.Name)
		startNginx(t, n.Command("nginx", "-c", conf, "-g", "daemon off;"), func(url string) (int, string, error) {
			return c.HTTPGet(url, time.Second)
		}, "http://"+n.Addr.Addr().String())
	}
	vip := l.Host(100).Addr().String() + "/32"
	a.Run("ip", "addr", "add", vip, "dev", a.Iface)

	cl := NewClient(c, "http://"+l.Host(100).Addr().String()+"/")
	cl.Start()
	waitAnswer(t, cl, "a")
	a.Run("ip", "addr", "del", vip, "dev", a.Iface)
	b.Run("ip", "addr", "add", vip, "dev", b.Iface)
	// No gratuitous ARP here: c forgets a's MAC and asks again.
	c.Run("ip", "neigh", "flush", "dev", c.Iface)
	waitAnswer(t, cl, "b")
	cl.Stop()

	t.Logf("timeline: %s; %d failures, longest outage %v", cl, cl.Failures(), cl.Outages())
	// The first request may time out waiting for ARP; only answers count.
	var who []string
	for _, s := range cl.WhoAnswered() {
		if !strings.HasPrefix(s.Who, "!") {
			who = append(who, s.Who)
		}
	}
	if want := []string{"a", "b"}; !slices.Equal(who, want) {
		t.Errorf("answers came from %v, want %v", who, want)
	}
	if n := len(cl.Samples()); n < 2 || n > 10000 {
		t.Errorf("%d samples, want a handful", n)
	}
}

func waitAnswer(t *testing.T, cl *Client, who string) {
	t.Helper()
	WaitFor(t, 5*time.Second, who+" to answer", func() bool {
		s := cl.WhoAnswered()
		return len(s) > 0 && s[len(s)-1].Who == who
	})
}

func TestHandOverLosses(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want string // the timeline left
		left int
	}{
		{"a reset at the hand-over", []string{"a", "a", "!reset", "b", "b"}, "a×2 b×2", 1},
		{"an EOF at the hand-over", []string{"a", "!eof", "b"}, "a×1 b×1", 1},
		{"a reset away from a hand-over", []string{"a", "!reset", "a", "b"}, "a×1 !reset×1 a×1 b×1", 0},
		{"two resets", []string{"a", "!reset", "!reset", "b"}, "a×1 !reset×2 b×1", 0},
		{"a refusal at the hand-over", []string{"a", "!refused", "b"}, "a×1 !refused×1 b×1", 0},
		{"a timeout at the hand-over", []string{"a", "!timeout", "b"}, "a×1 !timeout×1 b×1", 0},
		{"a reset first", []string{"!reset", "b"}, "!reset×1 b×1", 0},
		{"a reset last", []string{"a", "!reset"}, "a×1 !reset×1", 0},
		{"two hand-overs", []string{"a", "!reset", "b", "!eof", "a"}, "a×1 b×1 a×1", 2},
	} {
		var ss Samples
		for i, who := range tc.in {
			ss = append(ss, at(10*i, who))
		}
		got, left := ss.HandOverLosses()
		if got.String() != tc.want || left != tc.left {
			t.Errorf("%s: %s, %d left out; want %s, %d", tc.name, got, left, tc.want, tc.left)
		}
	}
}
