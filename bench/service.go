package main

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/vipvisor/vipvisor/internal/progrun"
)

// restartDelay is systemd's default RestartSec.
const restartDelay = 100 * time.Millisecond

// service runs nginx as systemd runs nginx.service for the keepalived
// setups: in the foreground, in a process group of its own (the unit's
// cgroup); when the main process ends, whatever is left of the group is
// killed (KillMode=control-group), and an unclean end is followed by a
// restart after RestartSec (Restart=on-failure). stop sends QUIT, as
// Debian's unit does, and SIGKILL after 5s.
type service struct {
	r     *progrun.Runner
	n     *node
	nginx string

	mu       sync.Mutex
	cur      *progrun.Process
	stopping bool
	done     chan struct{}
}

func startService(r *progrun.Runner, n *node, nginx string) *service {
	s := &service{r: r, n: n, nginx: nginx, done: make(chan struct{})}
	if !s.startOne() {
		r.Fatalf("start nginx on %s", n.Name)
	}
	go s.loop()
	return s
}

// startOne starts nginx unless the service is stopping.
func (s *service) startOne() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	cmd := s.n.Command(s.nginx, "-c", s.n.conf, "-g", "daemon off;")
	p, err := progrun.StartProcess(cmd, filepath.Join(s.n.dir, "nginx-service.log"))
	if err != nil {
		s.r.Errorf("nginx service on %s: %v", s.n.Name, err)
		return false
	}
	s.cur = p
	return true
}

func (s *service) loop() {
	defer close(s.done)
	for {
		s.mu.Lock()
		p := s.cur
		s.mu.Unlock()
		for {
			if code, ok := p.Wait(time.Hour); ok {
				// KillMode=control-group: nothing of the unit outlives
				// its main process.
				syscall.Kill(-p.Pid(), syscall.SIGKILL)
				if code == 0 {
					return
				}
				break
			}
		}
		// Restart=on-failure, RestartSec=100ms: real time on purpose.
		time.Sleep(restartDelay)
		if !s.startOne() {
			return
		}
	}
}

// stop stops nginx gracefully (QUIT, then SIGKILL after 5s) and ends the
// service; a stopped (SIGSTOP) nginx is continued first.
func (s *service) stop() {
	s.mu.Lock()
	s.stopping = true
	p := s.cur
	s.mu.Unlock()
	syscall.Kill(-p.Pid(), syscall.SIGCONT)
	p.Signal(syscall.SIGQUIT)
	if _, ok := p.Wait(5 * time.Second); !ok {
		syscall.Kill(-p.Pid(), syscall.SIGKILL)
	}
	<-s.done
	os.Remove(filepath.Join(s.n.dir, "nginx.pid"))
}
