// Command vipvisor runs a web server as its child and owns a floating
// virtual IP over VRRP only while that child is healthy. It is configured
// by VIPVISOR_* environment variables alone; `vipvisor help` lists them.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vipvisor/vipvisor/internal/envconf"
	"github.com/vipvisor/vipvisor/supervisor"
)

// Exit codes, as the user-facing contract states them.
const (
	exitOK      = 0 // stopped cleanly on SIGTERM/SIGINT
	exitRuntime = 1 // socket, netlink, permission, child could not start
	exitConfig  = 2 // configuration error; nothing on the host changed
	exitGaveUp  = 3 // gave up on the child (VIPVISOR_ON_YIELD=exit)
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == supervisor.GuardArg {
		os.Exit(supervisor.GuardMain(os.Stdin, os.Stderr))
	}
	os.Exit(exitCode(dispatch(os.Args[1:], os.Stdout), os.Stderr))
}

// exitCode prints err, if any, and maps it to the contract's exit code.
func exitCode(err error, stderr io.Writer) int {
	var cfg envconf.Errors
	var ce *envconf.VarError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &cfg), errors.As(err, &ce):
		fmt.Fprint(stderr, configError(err))
		return exitConfig
	case errors.Is(err, supervisor.ErrGaveUp):
		fmt.Fprintf(stderr, "vipvisor: %v\n", err)
		return exitGaveUp
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "vipvisor: %v\n", err)
		return exitConfig
	}
	fmt.Fprintf(stderr, "vipvisor: %v\n", err)
	return exitRuntime
}
