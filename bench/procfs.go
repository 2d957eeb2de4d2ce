package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTick is USER_HZ, the unit of the times in /proc/PID/stat: 100 on
// every Linux architecture Go supports.
const clockTick = 100

// stat is the part of /proc/PID/stat the benchmark reads.
type stat struct {
	comm  string
	state byte
	ppid  int
	// own is utime+stime, children cutime+cstime: CPU time in ticks of
	// the process and of its children it has reaped.
	own, children int64
}

func readStat(pid int) (stat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, false
	}
	return parseStat(string(b))
}

// parseStat parses a /proc/PID/stat line; comm may hold spaces and
// parentheses, so the fields are counted from the last ')'.
func parseStat(s string) (stat, bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return stat{}, false
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state); utime..cstime are fields 14..17.
	if len(f) < 15 || len(f[0]) != 1 {
		return stat{}, false
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(f[i-3], 10, 64); return v }
	return stat{comm: s[open+1 : end], state: f[0][0], ppid: int(n(4)),
		own: n(14) + n(15), children: n(16) + n(17)}, true
}

// childrenNamed returns the pids of pid's children called comm.
func childrenNamed(pid int, comm string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(p); ok && st.ppid == pid && st.comm == comm {
			out = append(out, p)
		}
	}
	return out
}

// rssKiB returns VmRSS of pid in KiB, or 0.
func rssKiB(pid int) int64 { return kibField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:") }

// pssKiB returns the proportional set size of pid in KiB, or 0: each page
// shared with other processes counts for its share only, so two processes
// of one binary (keepalived's parent and VRRP child, vipvisor and its
// guard) are not charged its pages twice.
func pssKiB(pid int) int64 { return kibField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:") }

// anonKiB returns the proportional share of pid's anonymous memory in
// KiB (smaps_rollup's Pss_Anon, Linux 5.6 on), else its Anonymous, or 0.
func anonKiB(pid int) int64 {
	path := fmt.Sprintf("/proc/%d/smaps_rollup", pid)
	if v := kibField(path, "Pss_Anon:"); v > 0 {
		return v
	}
	return kibField(path, "Anonymous:")
}

// kibField returns the number after name in a /proc file of "name: N kB"
// lines, or 0.
func kibField(path, name string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, name); ok {
			v, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return v
		}
	}
	return 0
}
