package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vipvisor/vipvisor/internal/envconf"
	"github.com/vipvisor/vipvisor/probes"
	"github.com/vipvisor/vipvisor/supervisor"
	"github.com/vipvisor/vipvisor/vrrp"
)

// vipLease is the lifetime of a VIP held by vipvisor as PID 1.
const vipLease = time.Second

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
	if err := checkListen(context.Background(), s, argv, log); err != nil {
		return err
	}
	exitOnAbort(log)
	if err := supervisor.BecomeSubreaper(); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reaper := supervisor.NewReaper(log)
	go reaper.Run(ctx)
	router, err := vrrp.NewGroup(s.Routers(), log)
	if err != nil {
		return err
	}
	if os.Getpid() == 1 {
		// Nothing outlives a container's PID 1: the kernel must take the
		// VIPs away should it be killed (see protect).
		if err := router.LeaseVIPs(vipLease); err != nil {
			return err
		}
	}
	gateway, err := gatewayProber(s, log)
	if err != nil {
		return err
	}
	child := supervisor.NewChild(&s.Child, argv, reaper, log)
	if len(s.Listen.Listen) > 0 {
		// Held from here to the end of vipvisor: across restarts and
		// yields, so that connections queue rather than being refused.
		ls, err := supervisor.OpenListeners(s.Listen.Listen)
		if err != nil {
			return err
		}
		defer ls.Close()
		child.UseListeners(ls)
		log.Info("holding listening sockets for the child", "listen", s.Listen.Listen.String())
	}
	sup := supervisor.New(supervisor.Parts{
		Child:    child,
		Router:   router,
		Hook:     supervisor.NewHook(s.VRRP.Notify, reaper, log),
		Notifier: supervisor.NewNotifier(log),
		Health:   childProber(s, reaper, log),
		Gateway:  gateway,
	}, &s.Child, log, version)
	stopStatus, err := serveStatus(s.Ops.StatusAddr, sup)
	if err != nil {
		return err
	}
	defer stopStatus()
	stopGuard, err := protect(s, child, reaper, log)
	if err != nil {
		return err
	}
	defer stopGuard()
	for _, c := range s.Routers() {
		log.Info("vipvisor starting", "version", version, "instance", c.DisplayName(), "interface", c.Interface, "vrid", c.VRID, "vips", c.VIPS.String())
	}
	return sup.Run(ctx)
}

// exitOnAbort makes SIGABRT end vipvisor with one line of log instead of
// the Go runtime's dump of every goroutine: systemd sends it when the
// watchdog saw no ping from the main loop for WatchdogSec, and the journal
// should say that, not bury it. The main loop may be stuck, so nothing is
// undone here: the guard (or, under systemd, the unit's ExecStopPost) ends
// the child and removes the VIPs, as after a kill -9.
func exitOnAbort(log *slog.Logger) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGABRT)
	go func() {
		<-c
		log.Error("SIGABRT: exiting at once, leaving the child and the VIPs to the guard; under systemd this is the watchdog seeing no ping for WatchdogSec")
		os.Exit(exitRuntime)
	}()
}

// childProber returns the prober of the child's probes, or nil when none
// is configured: the child is then judged by being alive.
func childProber(s *Settings, r *supervisor.Reaper, log *slog.Logger) supervisor.Health {
	ps := s.Probes.ChildProbes(r.StartWait)
	if len(ps) == 0 {
		return nil
	}
	p := s.Probes
	return probes.NewProber(ps, p.CheckInterval, p.CheckTimeout, p.CheckRise, p.CheckFall, log.With("prober", "child"))
}

// gatewayProber returns the prober of VIPVISOR_TRACK_GATEWAY, or nil.
func gatewayProber(s *Settings, log *slog.Logger) (supervisor.Health, error) {
	p := s.Probes
	if !p.TrackGateway.IsValid() {
		return nil, nil
	}
	gw, err := probes.NewGateway(s.gatewayInterface(), p.TrackGateway)
	if err != nil {
		return nil, err
	}
	return probes.NewProber([]probes.Probe{gw}, p.CheckInterval, p.CheckTimeout, p.CheckRise, p.CheckFall, log.With("prober", "gateway")), nil
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
