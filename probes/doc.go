// Package probes judges health: TCP, HTTP and exec probes of the child, a
// probe of the gateway (ARP for IPv4, neighbour solicitation for IPv6), and
// rise/fall counting that turns their results into a verdict.
//
// A Probe checks one thing once and returns a Result with a short reason
// on failure ("connection refused", "status 503", "killed after timeout
// 1s", "no ARP reply from 10.0.0.1", "no neighbour advertisement from
// fe80::1"). Every Check returns by its context's
// deadline whatever the other side does: TCP and HTTP hand the context to
// the dialer and the transport, exec kills the command's whole process
// group, and the gateway probe ends its read with a deadline in the past.
//
// A Prober runs its probes in rounds, all at once with one timeout, logs
// every failure, and counts rounds with a Counter: fall failing rounds in
// a row make a healthy verdict unhealthy, rise passing rounds make it
// healthy again, and it starts unhealthy. It sends a Verdict only when the
// judgement changes. The supervisor runs one Prober for the child's probes
// (Config.ChildProbes) and another for the gateway (NewGateway), and calls
// Reset when it restarts the child.
//
// Read in this order: probe.go (Result, Probe, reasons), counter.go,
// prober.go, then the probes: tcp.go, http.go, exec.go, gateway.go with
// gateway4.go and gateway6.go.
package probes
