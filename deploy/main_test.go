// Package deploy tests what is shipped the way it is deployed: the systemd
// unit under a real systemd, the .deb installed with dpkg, the container
// image under a Docker daemon of the test's own. Each runs in a node of a
// network-namespace lab (internal/lab), on a Debian root file system made
// once per run with debootstrap. These tests need root; with CI=true they
// fail instead of skipping.
package deploy

import (
	"os"
	"testing"

	"github.com/vipvisor/vipvisor/internal/lab"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// Made by the first test that needed it, shared by the rest.
	lab.RemoveRootfs()
	os.Exit(code)
}
