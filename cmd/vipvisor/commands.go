package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/vipvisor/vipvisor/internal/envconf"
)

// version is stamped by `make build`.
var version = "dev"

var errUsage = errors.New("usage")

// dispatch runs the command args name; anything that is not a command of
// vipvisor's is the child's command line.
func dispatch(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return run(nil)
	}
	switch args[0] {
	case "--":
		return run(args[1:])
	case "help", "-h", "--help":
		return help(stdout)
	case "version", "--version":
		return printVersion(stdout)
	case "check":
		return check(args[1:], stdout)
	case "status":
		return status(args[1:], stdout)
	case manArg:
		return writeMan(stdout)
	case "_cleanup":
		return cleanup()
	}
	return run(args)
}

const usage = `vipvisor runs a web server as its child and owns a virtual IP over VRRP
only while that child is healthy.

Usage:
  vipvisor [--] CMD [ARG...]   run CMD as the supervised child (else VIPVISOR_COMMAND)
  vipvisor check               validate the environment and print the resolved settings
  vipvisor status [--json]     ask a running vipvisor (at VIPVISOR_STATUS_ADDR) for its state
  vipvisor help                this text
  vipvisor version             version and build information

Exit codes: 0 stopped cleanly, 1 runtime failure, 2 configuration error,
3 gave up on the child (VIPVISOR_ON_YIELD=exit).

` + instancesHelp + `

Environment (unknown VIPVISOR_* variables are an error):
`

// instancesHelp explains VIPVISOR_INSTANCES, for help and the manual.
const instancesHelp = `Several virtual routers (active/active, or an IPv4 and an IPv6 one):
VIPVISOR_INSTANCES=web1,web2 runs one VRRP instance per name, all tied to
the one child. Instance web1 reads VIPVISOR_WEB1_<VAR> for each VRRP
variable but NOTIFY and INSTANCES, with VIPVISOR_<VAR> as its default:
  VIPVISOR_INTERFACE=eth0 VIPVISOR_INSTANCES=web1,web2
  VIPVISOR_WEB1_VRID=51 VIPVISOR_WEB1_VIPS=192.0.2.100/24 VIPVISOR_WEB1_PRIORITY=150
  VIPVISOR_WEB2_VRID=52 VIPVISOR_WEB2_VIPS=192.0.2.101/24 VIPVISOR_WEB2_PRIORITY=100
No two instances of one address family on one interface share a VRID; a
dual-stack node is an IPv4 and an IPv6 instance, which may:
  VIPVISOR_INTERFACE=eth0 VIPVISOR_VRID=51 VIPVISOR_INSTANCES=web4,web6
  VIPVISOR_WEB4_VIPS=192.0.2.100/24 VIPVISOR_WEB6_VIPS=2001:db8::100/64
A child that fails again puts every instance in FAULT; NOTIFY gets the
instance's name. Probes and TRACK_GATEWAY are one for all (the gateway is
asked on the first instance's interface).`

func help(w io.Writer) error {
	fmt.Fprint(w, usage)
	return envconf.Help(w, new(Settings).sections()...)
}

func printVersion(w io.Writer) error {
	fmt.Fprintf(w, "vipvisor %s\n", version)
	fmt.Fprintf(w, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision", "vcs.time", "vcs.modified", "CGO_ENABLED":
				fmt.Fprintf(w, "%s: %s\n", s.Key, s.Value)
			}
		}
	}
	return nil
}

// check validates the environment and prints what it resolved to. It
// touches nothing on the host.
func check(args []string, w io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: check takes no arguments", errUsage)
	}
	s, err := loadSettings()
	if err != nil {
		return err
	}
	if err := envconf.Print(w, s.sections()...); err != nil {
		return err
	}
	if err := printChild(w, &s.Child); err != nil {
		return err
	}
	if argv, err := s.Child.Argv(nil); err == nil {
		return checkListen(context.Background(), s, argv, s.Ops.Logger())
	}
	return nil
}
