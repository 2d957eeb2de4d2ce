package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/vipvisor/vipvisor/supervisor"
)

// guardCloseWait bounds how long a clean stop waits for the guard to
// check that nothing is left.
const guardCloseWait = 3 * time.Second

// protect makes "nothing survives a kill" hold for this run and ends what
// an earlier run left behind, before the child is started: the child goes
// into a cgroup of its own, and the guard process undoes the run if
// vipvisor is killed. The returned func ends the guard after a clean stop.
//
// As PID 1 there is nothing to do here: when a container's PID 1 dies the
// kernel kills every process of its PID namespace (the guard too, so it
// could not help), and no earlier run can have left a process in it.
func protect(s *Settings, child *supervisor.Child, r *supervisor.Reaper, log *slog.Logger) (stop func(), err error) {
	if os.Getpid() == 1 {
		return func() {}, nil
	}
	id := runIdentity(s)
	statePath := statePath(s)
	if err := supervisor.Lock(statePath); err != nil {
		if errors.Is(err, supervisor.ErrAlreadyRunning) {
			return nil, err
		}
		log.Warn("no lock file: a second vipvisor for this VRID would not be refused", "err", err)
	}
	spec := guardSpec(s, statePath)
	cg := childCgroup(id, log) // first: it mounts the hierarchy if need be
	if cg != nil {
		child.UseCgroup(cg)
		spec.Cgroup = cg.Dir()
	}
	if err := supervisor.EndLeftovers(statePath, spec.Cgroup, log); err != nil {
		log.Warn("could not read what an earlier run left", "err", err)
	}
	state, err := supervisor.NewRunState(statePath, spec.Cgroup)
	if err != nil {
		log.Warn("no state file: if vipvisor and its guard are both killed, the next start cannot find what they left", "err", err)
		state, spec.State = nil, ""
	}
	guard, err := supervisor.StartGuard(spec, state, r, log)
	if err != nil {
		return nil, err
	}
	child.OnStart(guard.Started)
	log.Debug("guard started", "pid", guard.PID(), "cgroup", spec.Cgroup)
	return func() {
		guard.Close(guardCloseWait)
		if cg != nil {
			cg.Remove()
		}
		if state != nil {
			state.Remove()
		}
	}, nil
}

// childCgroup makes the child's cgroup, emptied of anything a run that
// lost its state file left in it, or returns nil where cgroups v2 cannot
// be used: then only the child's process group is ended with it.
func childCgroup(id string, log *slog.Logger) *supervisor.Cgroup {
	cg, err := supervisor.NewCgroup(id)
	if err != nil {
		log.Warn("no cgroup of its own for the child: a process that leaves the child's process group (setsid) can outlive vipvisor", "err", err)
		return nil
	}
	if pids, _ := cg.Procs(); len(pids) > 0 {
		log.Warn("ending processes an earlier run left behind", "cgroup", cg.Dir(), "pids", len(pids))
	}
	if !cg.KillAndWait(5 * time.Second) {
		log.Error("processes an earlier run left behind did not end", "cgroup", cg.Dir())
	}
	return cg
}

// guardSpec is what must be undone should this run be killed.
func guardSpec(s *Settings, statePath string) supervisor.GuardSpec {
	spec := supervisor.GuardSpec{State: statePath, LogJSON: s.Ops.LogFormat == "json"}
	for _, c := range s.Routers() {
		if c.Priority != 255 {
			// The address owner's VIPs are its own addresses: never removed.
			spec.VIPs = append(spec.VIPs, supervisor.VIPSet{Interface: c.Interface, VIPs: c.VIPS})
		}
	}
	return spec
}

// statePath is the run's state file; its lock file lies beside it.
func statePath(s *Settings) string {
	return filepath.Join(supervisor.StateDir, runIdentity(s)+".json")
}

// runIdentity names the run by its first instance's interface and VRID.
func runIdentity(s *Settings) string {
	first := s.Routers()[0]
	return supervisor.RunIdentity(first.Interface, first.VRID)
}

// cleanup is `vipvisor _cleanup`, the systemd unit's ExecStopPost: once
// vipvisor has ended, however it ended, it ends what the run left behind
// (the processes its state file names, its VIPs on the interface). After a
// clean stop there is nothing left and it does nothing; while a vipvisor
// for the same interface and VRID runs it touches nothing.
func cleanup() error {
	s, err := loadSettings()
	if err != nil {
		return err
	}
	log := s.Ops.Logger()
	path := statePath(s)
	if err := supervisor.Lock(path); errors.Is(err, supervisor.ErrAlreadyRunning) {
		log.Info("a vipvisor runs for this interface and VRID: nothing to clean up")
		return nil
	}
	supervisor.EndRun(guardSpec(s, path), log)
	return nil
}
