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
	if _, canSkip := t.(skipper); !canSkip {
		t.Fatalf("lab: a lab needs %s", missing)
	}
	Skip(t, "lab: this end-to-end test needs %s", missing)
}

// Skip skips the test with the message, but fails it instead when the
// environment variable CI is "true": in CI whatever a test needs is
// installed, and a skipped test must not count as a pass. Like Fatalf it
// does not return.
func Skip(t T, format string, args ...any) {
	t.Helper()
	s, canSkip := t.(skipper)
	if os.Getenv("CI") == "true" || !canSkip {
		t.Fatalf(format+"; CI=true, so the test may not skip", args...)
	}
	s.Skipf(format, args...)
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
