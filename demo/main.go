// Command demo is `make demo`: a narrated, measured run of two vipvisor
// nodes sharing one virtual IP, with nginx under each, in a lab of network
// namespaces built by internal/lab. A client node asks the VIP every 10ms
// throughout while nginx on the master crashes once (restarted, the VIP
// stays), crashes again (the master yields, the backup serves), heals
// (the master rejoins and preempts), and is stopped as planned (the
// backup serves with no failed request). It then prints what it measured
// and removes everything it made, also on Ctrl-C. It needs root.
//
// Usage:
//
//	demo [-v] [-vipvisor bin/vipvisor]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"

	"github.com/vipvisor/vipvisor/internal/progrun"
)

func main() {
	vipvisor := flag.String("vipvisor", "bin/vipvisor", "the vipvisor binary to run (make build)")
	verbose := flag.Bool("v", false, "on a failure, print the lab's diagnostics too")
	flag.Parse()
	nginx, err := preflight(*vipvisor)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
	r := progrun.New(*verbose)
	r.Run(func() { demo(r, *vipvisor, nginx) })
}

// preflight checks what the demo needs before it makes anything, and
// returns nginx's path.
func preflight(vipvisor string) (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("run me as root: the lab is made of network namespaces")
	}
	if _, err := os.Stat(vipvisor); err != nil {
		return "", fmt.Errorf("%w (make build makes it)", err)
	}
	for _, p := range []string{"nginx", "/usr/sbin/nginx", "/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", errors.New("nginx is not installed (make demo installs it: apt-get install nginx)")
}
