package lab

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RequireRoot skips the test unless it runs as root with iproute2's ip
// available. When the environment variable CI is "true" it fails the test
// instead, so end-to-end tests cannot silently skip in CI; so it does when
// t cannot skip, as a program's T cannot.
func RequireRoot(t T) {
	t.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "root"
	} else if _, err := lookPath("ip"); err != nil {
		missing = "iproute2's ip"
	}
	if missing == "" {
		return
	}
	s, canSkip := t.(skipper)
	if os.Getenv("CI") == "true" {
		t.Fatalf("lab: this end-to-end test needs %s; CI=true, so it may not skip", missing)
	} else if !canSkip {
		t.Fatalf("lab: a lab needs %s", missing)
	}
	s.Skipf("lab: this end-to-end test needs %s", missing)
}

// lookPath finds a program in PATH and then in the sbin directories, which a
// non-login root shell may leave out of PATH.
func lookPath(name string) (string, error) {
	if strings.ContainsRune(name, '/') {
		return name, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("lab: " + name + " not found in PATH or sbin")
}
