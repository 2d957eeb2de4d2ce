package lab

import (
	"fmt"
	"os"
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

// Gone reports whether pid has ended: it does not exist, or it is a
// zombie, whose reaping is its parent's business.
func Gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}
