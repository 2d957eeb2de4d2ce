package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// crashRounds is how many times TestRestartNeverRacesTheOldWorkers kills
// nginx. With the old group killed but not waited for, ten rounds caught
// the race in one run of three here; thirty make a miss unlikely.
const crashRounds = 30

// TestRestartNeverRacesTheOldWorkers kills nginx's master again and again.
// Its workers still hold port 80 when it dies; the next nginx must start
// only once they are gone, or its bind fails "Address already in use" and
// nginx retries only after 500 ms. The VIP stays on a throughout.
func TestRestartNeverRacesTheOldWorkers(t *testing.T) {
	c, a, b := healthNodes(t, "VIPVISOR_RESTARTS=100")
	watch := neverHolds(b)
	master := a.nginxMaster()
	for range crashRounds {
		old, workers := a.killMaster()
		if len(workers) == 0 {
			t.Fatalf("nginx master %d had no workers to race", old)
		}
		master = a.waitNewMaster(master)
		for _, w := range workers {
			if !lab.Gone(w) {
				t.Errorf("worker %d of the killed nginx %d runs on beside the new one", w, old)
			}
		}
	}
	if n := watch(); n > 0 {
		t.Errorf("b held the VIP in %d samples while a's nginx was restarted", n)
	}
	c.exactlyOneHolds(a, b)
	errlog, _ := os.ReadFile(filepath.Join(a.dir, "error.log"))
	if strings.Contains(string(errlog), "Address already in use") {
		t.Errorf("a new nginx raced the old one's workers for port 80:\n%s", errlog)
	}
	if s, err := a.childStatus(); err != nil || s.Restarts != crashRounds {
		t.Errorf("child after %d crashes: %+v, %v; want %d restarts", crashRounds, s, err, crashRounds)
	}
}
