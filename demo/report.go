package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// dur formats a measured time for people: "0ms", "42ms", "1.35s".
func dur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Round(time.Millisecond).Milliseconds())
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// plus formats a time after an event: "+42ms".
func plus(d time.Duration) string { return "+" + dur(d) }

// failed formats a count of failed requests: "no failed request",
// "1 failed request", "12 failed requests".
func failed(n int) string {
	switch n {
	case 0:
		return "no failed request"
	case 1:
		return "1 failed request"
	}
	return fmt.Sprintf("%d failed requests", n)
}

// maxSpans bounds the spans a timeline line shows.
const maxSpans = 8

// timeline is a client line for a step: who answered, in order, and what
// failed, such as "a×20 !refused×3 a×70 (longest outage 30ms, 3 failed
// requests)".
func timeline(ss lab.Samples) string {
	spans := ss.Spans()
	parts := make([]string, 0, len(spans))
	for i, s := range spans {
		if i == maxSpans-1 && len(spans) > maxSpans {
			parts = append(parts, fmt.Sprintf("… %d more", len(spans)-i))
			break
		}
		parts = append(parts, s.String())
	}
	line := strings.Join(parts, " ")
	if n := ss.Failures(); n > 0 {
		return fmt.Sprintf("%s  (longest outage %s, %s)", line, dur(ss.Outage()), failed(n))
	}
	return line + "  (" + failed(0) + ")"
}

// result is one row of the final table.
type result struct {
	what, value string
}

// results collects what the story measured, for the table at its end.
type results []result

func (rs *results) add(what, format string, args ...any) {
	*rs = append(*rs, result{what, fmt.Sprintf(format, args...)})
}

// print writes the table with the values aligned.
func (rs results) print(w io.Writer) {
	width := 0
	for _, r := range rs {
		width = max(width, len([]rune(r.what)))
	}
	for _, r := range rs {
		pad := strings.Repeat(" ", width-len([]rune(r.what)))
		fmt.Fprintf(w, "  %s%s   %s\n", r.what, pad, r.value)
	}
}
