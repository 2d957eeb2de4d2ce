// Package progrun runs a program that drives an internal/lab lab, such as
// the demo or the benchmark, the way the testing package runs a test: it
// is the lab.T of a program, printing failures, keeping a stack of
// cleanups and running it exactly once, when the program's story ends, on
// Fatalf, or on SIGINT, SIGTERM or SIGHUP; then it exits.
package progrun
