package main

import (
	"encoding/binary"
	"encoding/xml"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

func TestMedianDuration(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want time.Duration
	}{
		{"empty", nil, 0},
		{"one", []time.Duration{7}, 7},
		{"odd, unsorted", []time.Duration{9, 1, 5}, 5},
		{"even: mean of the middle two", []time.Duration{4, 1, 10, 2}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := medianDuration(tc.in); got != tc.want {
				t.Errorf("medianDuration(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// samples makes a client timeline from t0: one sample every 10ms per
// letter of who ('a', 'b', or 'x' for a timeout).
func samples(t0 time.Time, who string) lab.Samples {
	var ss lab.Samples
	for i, c := range who {
		s := lab.Sample{At: t0.Add(time.Duration(i) * 10 * time.Millisecond), Took: time.Millisecond, Status: 200, Body: string(c)}
		if c == 'x' {
			s = lab.Sample{At: s.At, Took: 100 * time.Millisecond, Err: errors.New("timeout")}
		}
		ss = append(ss, s)
	}
	return ss
}

func TestMeasureAndSummarize(t *testing.T) {
	t0 := time.Unix(1000, 0)
	mk := func(who string) result {
		// Five samples before the fault, then who.
		all := samples(t0.Add(-50*time.Millisecond), "aaaaa"+who)
		return measure(scenKill, setVipvisor, all, nil, t0, t0.Add(time.Hour))
	}
	r := mk("axxxbbb")
	// b's first answer arrived 41ms after the fault: started at 40ms, it
	// took 1ms.
	if r.outage != 30*time.Millisecond || r.failed != 3 || r.toB != 41*time.Millisecond || r.last != "b" || r.toEnd {
		t.Errorf("measure = outage %v failed %d toB %v last %q toEnd %v, want 30ms 3 41ms b false",
			r.outage, r.failed, r.toB, r.last, r.toEnd)
	}
	if len(r.view) != 12 {
		t.Errorf("view has %d samples, want 12 (500ms before the fault)", len(r.view))
	}
	end := mk("axx")
	if !end.toEnd || end.toB != -1 {
		t.Errorf("outage to the end: toEnd %v toB %v, want true -1", end.toEnd, end.toB)
	}
	sm := summarize([]result{mk("aaaa"), r, mk("axa"), end, mk("xxxxxxxa")})[0]
	// Outages 0, 10, 30, 70 and 110ms (to the end of the last request).
	if sm.medOutage != 30*time.Millisecond || sm.maxOutage != 110*time.Millisecond || !sm.maxToEnd ||
		sm.medFailed != 2 || sm.maxFailed != 7 {
		t.Errorf("summary = median %v worst %v failed %d (%d), want 30ms 110ms (to the end) 2 (7)",
			sm.medOutage, sm.maxOutage, sm.medFailed, sm.maxFailed)
	}
	if sm.bRuns != 1 || sm.last != "a ×3, !error ×1, b ×1" {
		t.Errorf("summary: b in %d runs, last %q", sm.bRuns, sm.last)
	}
	if got := sm.median(); got.outage != 30*time.Millisecond {
		t.Errorf("median run has outage %v, want 30ms", got.outage)
	}
}

// TestMeasureLoad: the load's failures count from the picture's start,
// scenario.before ahead of the fault (a request in flight when nginx is
// killed started before it), to the end of the window.
func TestMeasureLoad(t *testing.T) {
	t0 := time.Unix(1000, 0)
	// 10ms apart from 510ms before the fault: the first is out of the
	// picture, as are the two at and after the end.
	load := samples(t0.Add(-510*time.Millisecond), "x"+strings.Repeat("a", 50)+"xaxx"+"a"+"xx")
	load[51].Err = &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	end := load[len(load)-2].At
	// b answered the request that started at +10 ms a second later, its
	// SYN lost, and the one of +40 ms at once: b served from +41 ms.
	load[52].Body, load[52].Took = "b", time.Second
	load[55].Body = "b"
	r := measure(scenKill, setListen, nil, load, t0, end)
	if r.toB != 41*time.Millisecond {
		t.Errorf("toB = %v, want 41ms, b's first answer to arrive", r.toB)
	}
	if r.load.made != 55 || r.load.failed != 3 || r.load.kinds != "!error×2 (+20…+30 ms) !refused×1 (+0 ms)" {
		t.Errorf("load = %+v, want 55 made, 3 failed: !error×2 (+20…+30 ms) !refused×1 (+0 ms)", r.load)
	}
	sm := summarize([]result{r, measure(scenKill, setListen, nil, load[:52], t0, end)})[0]
	if sm.medLoad != 2 || sm.maxLoad != 3 || sm.worstKinds != "!error×2 (+20…+30 ms) !refused×1 (+0 ms)" {
		t.Errorf("summary: load median %d worst %d (%s), want 2, 3 (!error×2 !refused×1)", sm.medLoad, sm.maxLoad, sm.worstKinds)
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct {
		ours, theirs time.Duration
		want         string
	}{
		{10, 1000, "0.010×"}, {500, 1000, "0.50×"}, {10, 0, "—"},
	} {
		if got := ratio(tc.ours, tc.theirs); got != tc.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", tc.ours, tc.theirs, got, tc.want)
		}
	}
}

func TestParseStat(t *testing.T) {
	st, ok := parseStat("42 (keep alived) S 7 42 42 0 -1 4194560 1 2 3 4 11 22 33 44 20 0 1 0 5 6 7")
	if !ok || st.comm != "keep alived" || st.state != 'S' || st.ppid != 7 || st.own != 33 || st.children != 77 {
		t.Errorf("parseStat = %+v, %v", st, ok)
	}
	if _, ok := parseStat("garbage"); ok {
		t.Error("parseStat(garbage) ok")
	}
}

func TestPcap(t *testing.T) {
	le := binary.LittleEndian
	hdr := make([]byte, 24)
	le.PutUint32(hdr, 0xa1b2c3d4)
	le.PutUint32(hdr[20:], 1)
	arp := make([]byte, 42)
	copy(arp[6:12], []byte{2, 0, 0, 0, 0, 0xb})
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	copy(arp[14+14:], []byte{10, 77, 0, 100})
	copy(arp[14+24:], []byte{10, 77, 0, 100})
	vrrp := make([]byte, 14+20+8)
	binary.BigEndian.PutUint16(vrrp[12:], 0x0800)
	vrrp[14], vrrp[14+9] = 0x45, 112
	copy(vrrp[14+12:], []byte{10, 77, 0, 12})
	vrrp[14+20+2], vrrp[14+20+3] = 90, 1
	file := hdr
	for i, f := range [][]byte{vrrp, arp} {
		rec := make([]byte, 16)
		le.PutUint32(rec, 1000)
		le.PutUint32(rec[4:], uint32(i*1500))
		le.PutUint32(rec[8:], uint32(len(f)))
		le.PutUint32(rec[12:], uint32(len(f)))
		file = append(append(file, rec...), f...)
	}
	frames, err := parsePcap(append(file, 1, 2, 3)) // a cut-off record at the end
	if err != nil || len(frames) != 2 {
		t.Fatalf("parsePcap: %d frames, %v", len(frames), err)
	}
	if d := frames[1].at.Sub(frames[0].at); d != 1500*time.Microsecond {
		t.Errorf("frames %v apart, want 1.5ms", d)
	}
	v, ok := decode(frames[0])
	if !ok || !v.advert || v.src.String() != "10.77.0.12" || v.prio != 90 || v.count != 1 {
		t.Errorf("decode(advert) = %+v, %v", v, ok)
	}
	a, ok := decode(frames[1])
	if !ok || !a.garp || a.ip.String() != "10.77.0.100" || a.mac.String() != "02:00:00:00:00:0b" {
		t.Errorf("decode(garp) = %+v, %v", a, ok)
	}
}

// TestWriters checks that the SVG is well-formed XML with a lane per
// setup and that the Markdown tables have a row per scenario and setup.
func TestWriters(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var results []result
	for _, sc := range scenarios {
		for _, s := range setups {
			all := samples(t0.Add(-sc.before), strings.Repeat("a", 60)+"xx"+strings.Repeat("b", 30))
			results = append(results, measure(sc, s, all, all, t0, t0.Add(sc.window)))
		}
	}
	sums := summarize(results)
	var svg strings.Builder
	var lanes []lane
	for _, sm := range sums {
		if sm.scen == scenKill {
			lanes = append(lanes, laneOf(sm))
		}
	}
	drawTimeline(&svg, scenKill, lanes)
	dec := xml.NewDecoder(strings.NewReader(svg.String()))
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("SVG is not well-formed: %v\n%s", err, svg.String())
			}
			break
		}
	}
	for _, s := range setups {
		if !strings.Contains(svg.String(), ">"+s.name+"<") {
			t.Errorf("SVG has no lane %q", s.name)
		}
	}
	if svg.Len() > 20000 {
		t.Errorf("SVG is %d bytes; keep pictures small", svg.Len())
	}
	rep := &report{date: "2026-01-01", machine: "test", reps: 1, idle: time.Minute, results: results,
		res: []usage{{setup: setVipvisor, rss: 1, pss: 4, anon: 7}, {setup: setGuides, rss: 2, pss: 5, anon: 8}, {setup: setTuned, rss: 3, pss: 6, anon: 9}}}
	var md strings.Builder
	rep.markdown(&md, sums)
	rows := 0
	for line := range strings.Lines(md.String()) {
		if strings.HasPrefix(line, "| (") && strings.Contains(line, " window |") {
			rows++
		}
	}
	if want := len(scenarios) * len(setups); rows != want {
		t.Errorf("outage table has %d rows, want %d:\n%s", rows, want, md.String())
	}
	if !strings.Contains(md.String(), "| memory (PSS) ≤ keepalived's (tuned) | PSS 4 KiB vs 6 KiB; anonymous 7 KiB vs 9 KiB | yes |") {
		t.Errorf("no memory target row:\n%s", md.String())
	}
}

func TestDroppedByKernel(t *testing.T) {
	for _, tc := range []struct {
		log  string
		want int
	}{
		{"listening on br0\n412 packets captured\n412 packets received by filter\n0 packets dropped by kernel\n", 0},
		{"412 packets captured\n500 packets received by filter\n88 packets dropped by kernel\n", 88},
		{"3 packets dropped by kernel\n2 packets dropped by interface\n", 5},
		{"listening on br0\n", 1}, // no statistics: not vouched for
	} {
		if got := droppedByKernel([]byte(tc.log)); got != tc.want {
			t.Errorf("droppedByKernel(%q) = %d, want %d", tc.log, got, tc.want)
		}
	}
}
