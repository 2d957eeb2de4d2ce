package main

import (
	"fmt"
	"html"
	"io"
	"strings"
	"time"
)

// lane is one setup's row of a timeline picture: who answered the client,
// from the median run.
type lane struct {
	name   string
	bars   []bar
	outage time.Duration
	toEnd  bool
	failed int
}

// bar is a stretch of time, relative to the fault, in which one party
// answered every request (or every request failed).
type bar struct {
	from, to time.Duration
	who      string
}

// laneOf draws the median run of a summary.
func laneOf(sm summary) lane {
	r := sm.median()
	l := lane{name: sm.setup.name, outage: r.outage, toEnd: r.toEnd, failed: r.failed}
	spans := r.view.Spans()
	for i, sp := range spans {
		to := sp.To
		if i+1 < len(spans) {
			to = spans[i+1].From
		} else if len(r.view) > 0 {
			last := r.view[len(r.view)-1]
			to = last.At.Add(last.Took)
		}
		l.bars = append(l.bars, bar{from: sp.From.Sub(r.t0), to: to.Sub(r.t0), who: sp.Who})
	}
	return l
}

// colour of a bar: node a, node b, a failed request, anything else.
func colour(who string) string {
	switch {
	case who == "a":
		return "#4c72b0"
	case who == "b":
		return "#55a868"
	case strings.HasPrefix(who, "!"):
		return "#c44e52"
	default:
		return "#999999"
	}
}

const (
	svgWidth  = 760
	labelW    = 170 // the column of setup names
	plotW     = svgWidth - labelW - 20
	laneH     = 26
	laneGap   = 16
	titleH    = 44
	axisH     = 26
	legendH   = 26
	fontStyle = `font-family="sans-serif" font-size="12"`
)

// drawTimeline writes an SVG picture of the lanes of scenario sc: time on
// x from sc.before before the fault to the end of the window, t=0 marked.
func drawTimeline(w io.Writer, sc *scenario, lanes []lane) {
	from, to := -sc.before, sc.window
	x := func(d time.Duration) float64 {
		d = min(max(d, from), to)
		return labelW + float64(d-from)/float64(to-from)*plotW
	}
	height := titleH + len(lanes)*(laneH+laneGap) + axisH + legendH
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s>`+"\n",
		svgWidth, height, svgWidth, height, fontStyle)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="18" font-size="14" font-weight="bold">(%s) %s</text>`+"\n", sc.key, html.EscapeString(sc.title))
	fmt.Fprintf(w, `<text x="10" y="34" fill="#555">who answered the VIP; the median of the runs for each setup; t=0 is the fault</text>`+"\n")
	for i, l := range lanes {
		y := titleH + i*(laneH+laneGap)
		fmt.Fprintf(w, `<text x="10" y="%d">%s</text>`+"\n", y+11, html.EscapeString(l.name))
		out := "no failed request"
		if l.failed > 0 {
			out = fmt.Sprintf("outage %s, %d failed", atLeast(l.outage, l.toEnd), l.failed)
		}
		fmt.Fprintf(w, `<text x="10" y="%d" font-size="11" fill="#555">%s</text>`+"\n", y+25, html.EscapeString(out))
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="#eee"/>`+"\n", labelW, y, plotW, laneH)
		for _, b := range l.bars {
			if b.to < from || b.from > to {
				continue
			}
			x0, x1 := x(b.from), x(b.to)
			fmt.Fprintf(w, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n",
				x0, y, max(x1-x0, 0.8), laneH, colour(b.who))
		}
	}
	top, bottom := titleH-4, titleH+len(lanes)*(laneH+laneGap)-laneGap+4
	fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000" stroke-dasharray="4 3"/>`+"\n",
		x(0), top, x(0), bottom)
	drawAxis(w, from, to, x, bottom)
	drawLegend(w, bottom+axisH+14)
	fmt.Fprintln(w, "</svg>")
}

// drawAxis draws ticks under the lanes, every 0.5s or 1s.
func drawAxis(w io.Writer, from, to time.Duration, x func(time.Duration) float64, y int) {
	step := 500 * time.Millisecond
	if to-from > 5*time.Second {
		step = time.Second
	}
	for t := from.Truncate(step); t <= to; t += step {
		if t < from {
			continue
		}
		label := fmt.Sprintf("%gs", t.Seconds())
		if t == 0 {
			label = "t=0 fault"
		}
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000"/>`+"\n", x(t), y, x(t), y+4)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11">%s</text>`+"\n", x(t), y+16, label)
	}
}

func drawLegend(w io.Writer, y int) {
	items := []struct{ who, label string }{{"a", "node a (the master)"}, {"b", "node b (the backup)"}, {"!", "failed request"}}
	xpos := labelW
	for _, it := range items {
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`+"\n", xpos, y-10, colour(it.who))
		fmt.Fprintf(w, `<text x="%d" y="%d">%s</text>`+"\n", xpos+16, y, it.label)
		xpos += 170
	}
}
