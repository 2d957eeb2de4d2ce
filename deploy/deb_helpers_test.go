package deploy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// debRepo is the repository's root, where `make deb` runs.
const debRepo = ".."

// debRequire skips the test unless program is installed; with CI=true it
// fails instead, so that the package is never left untested in CI.
func debRequire(t *testing.T, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if fi, err := os.Stat(filepath.Join(dir, program)); err == nil && fi.Mode()&0o111 != 0 {
			return filepath.Join(dir, program)
		}
	}
	lab.Skip(t, "deploy: this test needs %s", program)
	return ""
}

// debPackage is the package under test: $VIPVISOR_DEB if set, else one
// `make deb` builds into a directory of the test's.
func debPackage(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VIPVISOR_DEB"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	debRequire(t, "make")
	dist := t.TempDir()
	began := time.Now()
	cmd := exec.Command("make", "--no-print-directory", "-C", debRepo, "deb", "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "vipvisor_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb left %q in %s, want one vipvisor_*.deb", debs, dist)
	}
	t.Logf("make deb: %s in %v", filepath.Base(debs[0]), time.Since(began).Round(100*time.Millisecond))
	return debs[0]
}

// debEntry is one member of a package's data or control archive.
type debEntry struct {
	mode     os.FileMode // permission bits
	typ      byte        // tar.TypeReg, tar.TypeDir, ...
	uid, gid int
	data     []byte
}

// debArchive reads the archive `dpkg-deb <flag> deb` writes (--fsys-tarfile
// or --ctrl-tarfile), by member name without the leading "./".
func debArchive(t *testing.T, deb, flag string) map[string]debEntry {
	t.Helper()
	out, err := exec.Command(debRequire(t, "dpkg-deb"), flag, deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb %s %s: %v%s", flag, deb, err, stderrOf(err))
	}
	entries := map[string]debEntry{}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("dpkg-deb %s: %v", flag, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if name == "" || name == "." {
			continue
		}
		entries[name] = debEntry{mode: os.FileMode(h.Mode).Perm(), typ: h.Typeflag, uid: h.Uid, gid: h.Gid, data: data}
	}
	return entries
}

// debFields returns the control fields of deb.
func debFields(t *testing.T, deb string, names ...string) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for _, name := range names {
		out, err := exec.Command(debRequire(t, "dpkg-deb"), "--field", deb, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb --field %s: %v%s", name, err, stderrOf(err))
		}
		fields[name] = strings.TrimSpace(string(out))
	}
	return fields
}

// debExtract unpacks deb's files into a new directory.
func debExtract(t *testing.T, deb string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command(debRequire(t, "dpkg-deb"), "--extract", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --extract: %v\n%s", err, out)
	}
	return dir
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return "\n" + string(ee.Stderr)
	}
	return ""
}

// debRoot is a private copy of the shared Debian root file system, for
// dpkg --root to change. A copy, not an overlay mount: it takes about a
// second, and nothing is left mounted should the test be killed.
type debRoot struct {
	t   *testing.T
	dir string
}

func newDebRoot(t *testing.T) *debRoot {
	t.Helper()
	lab.RequireRoot(t)
	debRequire(t, "dpkg")
	shared := lab.Rootfs(t)
	dir := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", shared, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the root file system: %v\n%s", err, out)
	}
	return &debRoot{t: t, dir: dir}
}

// path is name (absolute inside the root) as the host sees it.
func (r *debRoot) path(name string) string { return filepath.Join(r.dir, name) }

// dpkgEnv is a plain root's environment: maintainer scripts must not
// depend on what the test process happens to have.
var dpkgEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}

// dpkg runs dpkg --root on the copy; dpkg runs the maintainer scripts
// chrooted into it.
func (r *debRoot) dpkg(args ...string) string {
	r.t.Helper()
	cmd := exec.Command(debRequire(r.t, "dpkg"), append([]string{"--root=" + r.dir}, args...)...)
	cmd.Env = dpkgEnv
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// chroot runs a program of the root's own inside it.
func (r *debRoot) chroot(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("chroot", append([]string{r.dir}, args...)...)
	cmd.Env = dpkgEnv
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("chroot %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// tree is every path in the root with its type (f, d, l, ...), as
// "TYPE PATH" lines, sorted.
func (r *debRoot) tree() []string {
	r.t.Helper()
	out, err := exec.Command("find", r.dir, "-mindepth", "1", "-printf", `%y %P\n`).Output()
	if err != nil {
		r.t.Fatalf("find %s: %v%s", r.dir, err, stderrOf(err))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(lines)
	return lines
}

// treeDiff returns the lines only in a and only in b, leaving out dpkg's
// own database and log, which record the package's history by design.
func treeDiff(a, b []string) (onlyA, onlyB []string) {
	inA := map[string]bool{}
	for _, l := range a {
		inA[l] = true
	}
	inB := map[string]bool{}
	for _, l := range b {
		inB[l] = true
		if !inA[l] && !dpkgOwn(l) {
			onlyB = append(onlyB, l)
		}
	}
	for _, l := range a {
		if !inB[l] && !dpkgOwn(l) {
			onlyA = append(onlyA, l)
		}
	}
	return onlyA, onlyB
}

func dpkgOwn(line string) bool {
	_, p, _ := strings.Cut(line, " ")
	return strings.HasPrefix(p, "var/lib/dpkg/") || strings.HasPrefix(p, "var/log/dpkg.log")
}

// fakeSystemd makes the root look as if systemd ran it, with a systemctl
// that records its arguments in the file it returns (as the host sees
// it) and succeeds. Maintainer scripts only ask systemd to act when it
// runs; this is how a test sees what they would have asked.
func (r *debRoot) fakeSystemd() string {
	r.t.Helper()
	if err := os.MkdirAll(r.path("/run/systemd/system"), 0o755); err != nil {
		r.t.Fatal(err)
	}
	stub := "#!/bin/sh\necho \"$*\" >> /run/systemctl.log\nexit 0\n"
	ctl := r.path("/usr/bin/systemctl")
	if err := os.Remove(ctl); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(ctl, []byte(stub), 0o755); err != nil {
		r.t.Fatal(err)
	}
	return r.path("/run/systemctl.log")
}

// takeLines returns the lines of file and empties it.
func takeLines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return strings.Split(s, "\n")
	}
	return nil
}
