package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sample is one request made by a Client.
type Sample struct {
	// At is when the request started.
	At time.Time
	// Took is how long it took, up to the Client's timeout.
	Took time.Duration
	// Status is the HTTP status code, 0 if no response came.
	Status int
	// Body is the response body; the lab's nginx answers with the node name.
	Body string
	// Err is why no full response came, or nil.
	Err error
	// Local is the client's end of the connection the request went
	// over, or, if it got none, of the one it dialed: the port that
	// finds the request in a capture. Zero if it never had a socket.
	Local netip.AddrPort
	// Reused says the connection had served earlier requests
	// (keep-alive).
	Reused bool
}

// OK reports whether the request got a 2xx response.
func (s Sample) OK() bool { return s.Err == nil && s.Status >= 200 && s.Status <= 299 }

// Who names the answer: the trimmed body of a 2xx response, else "!" and
// the kind of failure: "!timeout", "!refused", "!unreachable", "!reset",
// "!eof", "!error" or "!" and the status code, as in "!502".
func (s Sample) Who() string {
	switch {
	case s.Err != nil:
		return "!" + errKind(s.Err)
	case !s.OK():
		return "!" + strconv.Itoa(s.Status)
	default:
		return strings.TrimSpace(s.Body)
	}
}

func errKind(err error) string {
	var to interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &to) && to.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	default:
		return "error"
	}
}

// Span is a run of consecutive samples with the same Who.
type Span struct {
	// Who is the samples' Who: a node name, or "!" and a failure.
	Who string
	// From and To are the start times of the first and last sample.
	From, To time.Time
	// Count is the number of samples.
	Count int
}

// String formats the span as who×count.
func (s Span) String() string { return fmt.Sprintf("%s×%d", s.Who, s.Count) }

// Samples is a run of a Client's samples, oldest first, such as those of
// one step of a test, which Between cuts out.
type Samples []Sample

// Between returns the samples that started at or after from and before
// to; a zero to means no end.
func (ss Samples) Between(from, to time.Time) Samples {
	var out Samples
	for _, s := range ss {
		if !s.At.Before(from) && (to.IsZero() || s.At.Before(to)) {
			out = append(out, s)
		}
	}
	return out
}

// Failures counts the samples that got no 2xx response.
func (ss Samples) Failures() int { return failures(ss) }

// Outage returns the longest outage among the samples, measured as
// Client.Outages does. Zero means none failed.
func (ss Samples) Outage() time.Duration { return longestOutage(ss) }

// Spans returns the timeline of answers: runs of consecutive samples with
// the same Who.
func (ss Samples) Spans() []Span { return spans(ss) }

// String summarises the timeline: "a×120 !refused×3 b×300".
func (ss Samples) String() string {
	var b strings.Builder
	for i, s := range spans(ss) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.String())
	}
	return b.String()
}

// spans folds samples into runs of the same Who.
func spans(samples []Sample) []Span {
	var out []Span
	for _, s := range samples {
		who := s.Who()
		if len(out) > 0 && out[len(out)-1].Who == who {
			last := &out[len(out)-1]
			last.To = s.At
			last.Count++
			continue
		}
		out = append(out, Span{Who: who, From: s.At, To: s.At, Count: 1})
	}
	return out
}

// longestOutage measures every run of failed samples from the start of its
// first request to the start of the next successful one, or to the end of
// its last request if none followed, and returns the longest.
func longestOutage(samples []Sample) time.Duration {
	var longest time.Duration
	for i := 0; i < len(samples); {
		if samples[i].OK() {
			i++
			continue
		}
		j := i
		for j < len(samples) && !samples[j].OK() {
			j++
		}
		var end time.Time
		if j < len(samples) {
			end = samples[j].At
		} else {
			end = samples[j-1].At.Add(samples[j-1].Took)
		}
		longest = max(longest, end.Sub(samples[i].At))
		i = j
	}
	return longest
}

// failures counts the samples that did not get a 2xx response.
func failures(samples []Sample) int {
	n := 0
	for _, s := range samples {
		if !s.OK() {
			n++
		}
	}
	return n
}

// HandOverLosses returns ss without the requests a hand-over of the VIP
// may cost, and how many it left out: one reset or early EOF between the
// last answer of one node and the first of another. A connection the
// client opened to the old master just before the new master's
// gratuitous ARP sends its next packets to the new master, which knows no
// such connection and resets it; no failover at layer 2 can keep it
// without sharing connection state. Everything else that failed stays:
// a refused connection, a timeout, a second loss, a loss away from a
// hand-over.
func (ss Samples) HandOverLosses() (Samples, int) {
	var out Samples
	left := 0
	for i, s := range ss {
		kind := s.Who()
		if !s.OK() && (kind == "!reset" || kind == "!eof") && i > 0 && i+1 < len(ss) {
			prev, next := ss[i-1], ss[i+1]
			if prev.OK() && next.OK() && prev.Who() != next.Who() {
				left++
				continue
			}
		}
		out = append(out, s)
	}
	return out, left
}
