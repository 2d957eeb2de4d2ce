package lab

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
