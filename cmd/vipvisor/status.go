package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/vipvisor/vipvisor/internal/envconf"
	"github.com/vipvisor/vipvisor/supervisor"
)

// serveStatus starts the status endpoint, unless it is off. A port already
// in use is a runtime failure, reported before the child is started.
func serveStatus(addr string, sup *supervisor.Supervisor) (stop func(), err error) {
	if addr == "off" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status endpoint (VIPVISOR_STATUS_ADDR): %w", err)
	}
	srv := &http.Server{Handler: supervisor.StatusHandler(sup.Status), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

// status asks a running vipvisor for its state.
func status(args []string, w io.Writer) error {
	asJSON := false
	for _, a := range args {
		if a != "--json" {
			return fmt.Errorf("%w: status takes only --json", errUsage)
		}
		asJSON = true
	}
	var ops Ops
	if err := envconf.LoadSome(envconf.Section{Spec: &ops}); err != nil {
		return err
	}
	if ops.StatusAddr == "off" {
		return envconf.Invalid("STATUS_ADDR", "the status endpoint is off", "host:port of a running vipvisor")
	}
	body, err := fetchStatus(dialAddr(ops.StatusAddr))
	if err != nil {
		return err
	}
	if asJSON {
		_, err = w.Write(body)
		return err
	}
	var s supervisor.Status
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return printStatus(w, s)
}

// dialAddr turns a listen address into one to connect to: an empty or
// unspecified host means this machine.
func dialAddr(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func fetchStatus(addr string) ([]byte, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + "/status")
	if err != nil {
		return nil, fmt.Errorf("status: is vipvisor running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status: %s answered %s", addr, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func printStatus(w io.Writer, s supervisor.Status) error {
	c := s.Child
	_, err := fmt.Fprintf(w, "vipvisor %s: %s\nchild: %s, started %d time(s), %d crash(es)",
		s.Version, s.Summary(), c.Command, c.Starts, c.Crashes)
	if err == nil && c.Running {
		_, err = fmt.Fprintf(w, ", up %s", time.Since(c.Since).Round(time.Second))
	}
	if err == nil && c.LastExit != "" {
		_, err = fmt.Fprintf(w, ", last exit: %s", c.LastExit)
	}
	if err == nil {
		_, err = fmt.Fprintln(w)
	}
	return err
}
