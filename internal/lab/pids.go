package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PIDs lists the processes running in the node's network namespace
// (leaving out the test process, whose threads only visit it): a test
// that kills vipvisor asks it whether anything of the node's run is left.
func (n *Node) PIDs() []int {
	n.t.Helper()
	pids, err := namespacePIDs(n.NS)
	if err != nil {
		n.t.Fatalf("%s: list processes: %v", n.Name, err)
	}
	return pids
}

// ProcState returns the state letter and parent pid of pid from
// /proc/PID/stat, or "" if there is no such process.
func ProcState(pid int) (state string, ppid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return "", 0
	}
	fields := strings.Fields(s[i+2:])
	if len(fields) < 2 {
		return "", 0
	}
	ppid, _ = strconv.Atoi(fields[1])
	return fields[0], ppid
}

// Gone reports whether pid has ended: it does not exist, or it is a
// zombie, whose reaping is its parent's business.
func Gone(pid int) bool {
	state, _ := ProcState(pid)
	return state == "" || state == "Z"
}

// Cmdline is pid's command line, its arguments joined by spaces.
func Cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// Children lists the live children of ppid.
func Children(ppid int) []int {
	var kids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, p := ProcState(pid); p == ppid && state != "Z" {
			kids = append(kids, pid)
		}
	}
	return kids
}
