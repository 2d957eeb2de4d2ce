package main

import (
	"context"
	"fmt"
	"io"

	"github.com/vipvisor/vipvisor/internal/envconf"
	"github.com/vipvisor/vipvisor/supervisor"
	"github.com/vipvisor/vipvisor/vrrp"
)

// run supervises the child named by args (or VIPVISOR_COMMAND) until it
// stops. A configuration problem returns before anything is started.
func run(args []string) error {
	s, err := loadSettings()
	if err != nil {
		return err
	}
	argv, err := s.Child.Argv(args)
	if err != nil {
		return err
	}
	log := s.Ops.Logger()
	if err := supervisor.BecomeSubreaper(); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reaper := supervisor.NewReaper(log)
	go reaper.Run(ctx)
	router, err := vrrp.NewInstance(&s.VRRP, log)
	if err != nil {
		return err
	}
	child := supervisor.NewChild(&s.Child, argv, reaper, log)
	hook := supervisor.NewHook(s.VRRP.Notify, s.VRRP.VRID, reaper, log)
	sup := supervisor.New(child, router, hook, supervisor.NewNotifier(log), log, version)
	stopStatus, err := serveStatus(s.Ops.StatusAddr, sup)
	if err != nil {
		return err
	}
	defer stopStatus()
	log.Info("vipvisor starting", "version", version, "interface", s.VRRP.Interface, "vrid", s.VRRP.VRID, "vips", s.VRRP.VIPS.String())
	return sup.Run(ctx)
}

// printChild shows what `vipvisor` would run, for `vipvisor check`.
func printChild(w io.Writer, c *supervisor.Config) error {
	fmt.Fprintln(w, "# Resolved child")
	argv, err := c.Argv(nil)
	if err != nil {
		_, err = fmt.Fprintln(w, "# command: none in VIPVISOR_COMMAND; give it after `vipvisor --`")
		return err
	}
	k := supervisor.KindOf(argv[0])
	_, err = fmt.Fprintf(w, "# command: %s\n# stop signal: %s, reload signal: %s\n",
		envconf.Words(argv), supervisor.Signal(c.StopSignalFor(k)), supervisor.Signal(c.ReloadSignalFor(k)))
	return err
}
