// Package probes judges the child's health: TCP, HTTP and exec probes run
// in rounds, and rise/fall counting turns their results into a verdict.
package probes
