package probes

// ChildProbes builds the child's probes from the configuration: TCP, HTTP
// and exec, in that order, each only if configured. It returns none when
// no probe is configured; then the supervisor judges the child by being
// alive. Exec probes start their command with start.
func (c *Config) ChildProbes(start Starter) []Probe {
	var ps []Probe
	if c.CheckTCP != "" {
		ps = append(ps, NewTCP(c.CheckTCP))
	}
	if c.CheckHTTP != "" {
		ps = append(ps, NewHTTP(c.CheckHTTP, c.CheckHTTPStatus, c.CheckHTTPBody))
	}
	if len(c.CheckExec) > 0 {
		ps = append(ps, NewExec(c.CheckExec, start))
	}
	return ps
}
