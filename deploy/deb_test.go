package deploy

import (
	"archive/tar"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The Debian package `make deb` makes: what it holds, what lintian says of
// it, and what installing, removing and purging it does to a Debian root
// file system (by dpkg --root, with the maintainer scripts run as dpkg
// runs them).

const (
	debUnit     = "vipvisor-nginx.service"
	debConffile = "/etc/vipvisor/nginx.env"
)

// debFiles is every file the package holds (directories aside), with its
// mode; all are root's.
var debFiles = map[string]os.FileMode{
	"usr/bin/vipvisor":                     0o755,
	"usr/lib/systemd/system/" + debUnit:    0o644,
	"etc/vipvisor/nginx.env":               0o640, // it may hold AUTH_PASS
	"usr/share/man/man1/vipvisor.1.gz":     0o644,
	"usr/share/doc/vipvisor/README.md.gz":  0o644,
	"usr/share/doc/vipvisor/changelog.gz":  0o644,
	"usr/share/doc/vipvisor/copyright":     0o644,
	"usr/share/lintian/overrides/vipvisor": 0o644,
}

// debFromTree are the packaged files copied from the tree as they are.
var debFromTree = map[string]string{
	"usr/lib/systemd/system/" + debUnit:    "packaging/vipvisor-nginx.service",
	"etc/vipvisor/nginx.env":               "packaging/nginx.env.example",
	"usr/share/doc/vipvisor/copyright":     "packaging/deb/copyright",
	"usr/share/lintian/overrides/vipvisor": "packaging/deb/lintian-overrides",
}

func TestDeb(t *testing.T) {
	deb := debPackage(t)
	files := debArchive(t, deb, "--fsys-tarfile")
	control := debArchive(t, deb, "--ctrl-tarfile")
	fs := debExtract(t, deb)
	bin := filepath.Join(fs, "usr/bin/vipvisor")

	t.Run("control", func(t *testing.T) {
		f := debFields(t, deb, "Package", "Version", "Architecture", "Depends", "Maintainer", "Description")
		arch := map[string]string{"386": "i386", "arm": "armhf"}[runtime.GOARCH]
		if arch == "" {
			arch = runtime.GOARCH
		}
		want := map[string]string{"Package": "vipvisor", "Architecture": arch, "Depends": "nginx"}
		for k, v := range want {
			if f[k] != v {
				t.Errorf("%s: %q, want %q", k, f[k], v)
			}
		}
		// A native version: it starts with a digit, and has no hyphen that
		// dpkg would read as a Debian revision.
		if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`).MatchString(f["Version"]) {
			t.Errorf("Version %q is not a native Debian version", f["Version"])
		}
		if name := "vipvisor_" + f["Version"] + "_" + f["Architecture"] + ".deb"; filepath.Base(deb) != name {
			t.Errorf("file name %s, want %s", filepath.Base(deb), name)
		}
		if f["Maintainer"] == "" || !strings.Contains(f["Description"], "\n") {
			t.Errorf("Maintainer %q and a Description with a long part are required:\n%s", f["Maintainer"], f["Description"])
		}
		if got := string(control["conffiles"].data); got != debConffile+"\n" {
			t.Errorf("conffiles: %q, want %q", got, debConffile+"\n")
		}
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			e, ok := control[s]
			if !ok {
				t.Errorf("no %s", s)
				continue
			}
			if e.mode != 0o755 || !bytes.HasPrefix(e.data, []byte("#!/bin/sh\n")) || !bytes.Contains(e.data, []byte("\nset -e\n")) {
				t.Errorf("%s: mode %v; want 0755, a /bin/sh script with set -e:\n%s", s, e.mode, e.data)
			}
		}
	})

	t.Run("files", func(t *testing.T) {
		var got []string
		for name, e := range files {
			if e.uid != 0 || e.gid != 0 {
				t.Errorf("%s is owned by %d:%d, want root's", name, e.uid, e.gid)
			}
			if e.typ == tar.TypeDir {
				continue
			}
			got = append(got, name)
			if want, ok := debFiles[name]; !ok || e.typ != tar.TypeReg || e.mode != want {
				t.Errorf("%s: type %c mode %v; want a regular file of mode %v", name, e.typ, e.mode, want)
			}
		}
		var want []string
		for name := range debFiles {
			want = append(want, name)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("files:\n-want %q\n+got  %q", want, got)
		}
		for name, src := range debFromTree {
			if b, _ := os.ReadFile(filepath.Join(debRepo, src)); !bytes.Equal(files[name].data, b) {
				t.Errorf("%s differs from %s", name, src)
			}
		}
		if readme, _ := os.ReadFile(filepath.Join(debRepo, "README.md")); !bytes.Equal(gunzip(t, files["usr/share/doc/vipvisor/README.md.gz"].data), readme) {
			t.Error("README.md.gz is not README.md")
		}
		// lintian reads a native package's changelog there; its first
		// entry must be of this version.
		f := debFields(t, deb, "Version")
		if cl := gunzip(t, files["usr/share/doc/vipvisor/changelog.gz"].data); !bytes.HasPrefix(cl, []byte("vipvisor ("+f["Version"]+") ")) {
			t.Errorf("changelog does not start with version %s:\n%s", f["Version"], cl)
		}
	})

	t.Run("static binary", func(t *testing.T) {
		ef, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer ef.Close()
		for _, p := range ef.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("/usr/bin/vipvisor has a program interpreter: it is not statically linked")
			}
		}
		bi, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		// With -trimpath the toolchain does not record -ldflags, so the
		// stamped version is checked by asking the binary.
		if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || settings["-tags"] != "nethttpomithttp2" {
			t.Errorf("built with %v; want CGO_ENABLED=0, -trimpath and -tags nethttpomithttp2, as make build does", settings)
		}
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatalf("vipvisor version: %v", err)
		}
		first, _, _ := strings.Cut(string(out), "\n")
		stamped := strings.TrimPrefix(first, "vipvisor ")
		changelog := gunzip(t, files["usr/share/doc/vipvisor/changelog.gz"].data)
		if stamped == "dev" || !bytes.Contains(changelog, []byte("Built from "+stamped+".")) {
			t.Errorf("vipvisor version says %q; want the version stamped, the one the changelog names:\n%s", first, changelog)
		}
	})

	t.Run("man page lists what help lists", func(t *testing.T) {
		help, err := exec.Command(bin, "help").Output()
		if err != nil {
			t.Fatalf("vipvisor help: %v", err)
		}
		vars := regexp.MustCompile(`(?m)^  (VIPVISOR_[A-Z0-9_]+) `).FindAllStringSubmatch(string(help), -1)
		if len(vars) < 30 {
			t.Fatalf("vipvisor help lists %d variables:\n%s", len(vars), help)
		}
		page := string(gunzip(t, files["usr/share/man/man1/vipvisor.1.gz"].data))
		if !strings.Contains(page, "\n.TH VIPVISOR 1 ") {
			t.Errorf("not a vipvisor(1) page:\n%s", page)
		}
		for _, v := range vars {
			if !strings.Contains(page, `\fB`+strings.ReplaceAll(v[1], "-", `\-`)+`\fR`) {
				t.Errorf("the man page does not describe %s", v[1])
			}
		}
	})

	t.Run("copyright names every module in the binary", func(t *testing.T) {
		c := string(files["usr/share/doc/vipvisor/copyright"].data)
		if !strings.HasPrefix(c, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") {
			t.Errorf("copyright is not in Debian's machine-readable format:\n%s", c)
		}
		bi, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		// A Files: field lists its patterns on its first line and on
		// continuation lines.
		patterns := regexp.MustCompile(`(?m)^(?:Files:)?[ \t]+(\S+/\*)$`).FindAllStringSubmatch(c, -1)
		covered := func(module string) bool {
			// In the format, * matches any characters, / included.
			return slices.ContainsFunc(patterns, func(p []string) bool {
				return strings.HasPrefix(module+"/", strings.TrimSuffix(p[1], "*"))
			})
		}
		for _, m := range append([]string{"go"}, modulePaths(bi)...) {
			if !covered(m) {
				t.Errorf("copyright has no Files: stanza for %s, which is linked into /usr/bin/vipvisor", m)
			}
		}
	})

	t.Run("env file", func(t *testing.T) {
		env, err := os.ReadFile(filepath.Join(fs, debConffile))
		if err != nil {
			t.Fatal(err)
		}
		// As shipped nothing is set, so the service refuses to start
		// until the three required settings are filled in.
		var filled []string
		for line := range strings.SplitSeq(string(env), "\n") {
			switch {
			case strings.HasPrefix(line, "#VIPVISOR_"):
				kv := strings.TrimPrefix(line, "#")
				if strings.HasPrefix(kv, "VIPVISOR_INTERFACE=") {
					kv = "VIPVISOR_INTERFACE=lo" // the one interface every network namespace has
				}
				// No quotes, blanks or $: systemd's EnvironmentFile=
				// parsing and a shell's `set -a; .` then agree.
				if strings.ContainsAny(kv, "\"'$ \t\\") {
					t.Errorf("%q: a value needs quoting; keep examples plain", line)
				}
				filled = append(filled, kv)
			case line != "" && !strings.HasPrefix(line, "#"):
				t.Errorf("%q is set in the file as shipped; every setting should be commented", line)
			}
		}
		check := func(env []string) (string, int) {
			cmd := exec.Command(bin, "check")
			cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil {
				t.Fatalf("vipvisor check: %v", err)
			}
			return string(out), cmd.ProcessState.ExitCode()
		}
		if out, code := check(nil); code != 2 || !strings.Contains(out, "VIPVISOR_INTERFACE") || !strings.Contains(out, "VIPVISOR_VRID") || !strings.Contains(out, "VIPVISOR_VIPS") {
			t.Errorf("vipvisor check of the file as shipped: exit %d, want 2 naming the required variables:\n%s", code, out)
		}
		if out, code := check(filled); code != 0 {
			t.Errorf("vipvisor check of the file with every setting uncommented: exit %d, want 0:\n%s", code, out)
		}
	})

	t.Run("lintian", func(t *testing.T) {
		lintian := debRequire(t, "lintian")
		cmd := exec.Command(lintian, "--fail-on", "error", "--display-info", deb)
		out, err := cmd.CombinedOutput()
		t.Logf("lintian --display-info:\n%s", out)
		if err != nil {
			t.Errorf("lintian: %v", err)
		}
		for line := range strings.SplitSeq(string(out), "\n") {
			// An override that no longer matches hides nothing and explains
			// nothing: remove it, or fix it.
			if strings.HasPrefix(line, "E: ") || strings.Contains(line, "unused-override") || strings.Contains(line, "mismatched-override") {
				t.Errorf("lintian: %s", line)
			}
		}
	})

	t.Run("install, remove, purge", func(t *testing.T) {
		r := newDebRoot(t)
		before := r.tree()
		r.dpkg("--install", deb)
		_, added := treeDiff(before, r.tree())
		for _, l := range added {
			_, p, _ := strings.Cut(l, " ")
			if _, ok := debFiles[p]; !ok && p != "etc/vipvisor" && p != "usr/share/doc/vipvisor" &&
				p != "var/lib/systemd/deb-systemd-helper-enabled/"+debUnit+".dsh-also" {
				t.Errorf("install made %s, which is not the package's", l)
			}
		}
		if wants, _ := filepath.Glob(r.path("/etc/systemd/system/*.wants/vipvisor*")); len(wants) > 0 {
			t.Errorf("install enabled the service: %q", wants)
		}
		if fi, err := os.Stat(r.path(debConffile)); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s after install: %v %v", debConffile, fi, err)
		}

		// The administrator configures and enables the service, then the
		// package is installed again, as an upgrade would: the edit stays.
		edited := []byte("VIPVISOR_INTERFACE=eth0\nVIPVISOR_VRID=51\nVIPVISOR_VIPS=192.0.2.100/24\n")
		if err := os.WriteFile(r.path(debConffile), edited, 0o640); err != nil {
			t.Fatal(err)
		}
		r.chroot("systemctl", "enable", debUnit)
		r.dpkg("--install", deb)
		if b, _ := os.ReadFile(r.path(debConffile)); !bytes.Equal(b, edited) {
			t.Errorf("reinstall replaced the administrator's %s:\n%s", debConffile, b)
		}

		r.dpkg("--remove", "vipvisor")
		for _, p := range []string{"/usr/bin/vipvisor", "/usr/lib/systemd/system/" + debUnit, "/usr/share/man/man1/vipvisor.1.gz"} {
			if _, err := os.Lstat(r.path(p)); err == nil {
				t.Errorf("remove left %s", p)
			}
		}
		if b, _ := os.ReadFile(r.path(debConffile)); !bytes.Equal(b, edited) {
			t.Errorf("remove did not keep the configuration %s (purge removes it)", debConffile)
		}

		r.dpkg("--purge", "vipvisor")
		gone, left := treeDiff(before, r.tree())
		if len(gone)+len(left) > 0 {
			t.Errorf("purge left the root changed:\nleft behind: %q\nremoved: %q", left, gone)
		}
		if out, err := exec.Command("dpkg", "--root="+r.dir, "--status", "vipvisor").CombinedOutput(); err == nil {
			t.Errorf("dpkg still knows vipvisor after purge:\n%s", out)
		}
	})

	t.Run("maintainer scripts ask systemd", func(t *testing.T) {
		r := newDebRoot(t)
		log := r.fakeSystemd()
		steps := []struct {
			name string
			dpkg []string
			want []string
		}{
			// Never enabled or started: it needs configuration first.
			{"install", []string{"--install", deb}, []string{"--system daemon-reload"}},
			// A running service moves to the new binary; a stopped one
			// stays stopped (try-restart), and nothing is stopped first.
			{"upgrade", []string{"--install", deb}, []string{"--system daemon-reload", "try-restart " + debUnit}},
			{"remove", []string{"--remove", "vipvisor"}, []string{"stop " + debUnit, "--system daemon-reload"}},
			{"purge", []string{"--purge", "vipvisor"}, nil},
		}
		for _, s := range steps {
			r.dpkg(s.dpkg...)
			if got := takeLines(t, log); !slices.Equal(got, s.want) {
				t.Errorf("%s: systemctl calls:\n-want %q\n+got  %q", s.name, s.want, got)
			}
		}
	})
}

// modulePaths are the modules linked into a binary.
func modulePaths(bi *buildinfo.BuildInfo) []string {
	var paths []string
	for _, d := range bi.Deps {
		paths = append(paths, d.Path)
	}
	return paths
}

// TestDebVersion holds packaging/deb/version.sh to the order dpkg must
// see: each row's version sorts after the previous row's.
func TestDebVersion(t *testing.T) {
	dpkg := debRequire(t, "dpkg")
	rows := []struct{ describe, date, want string }{
		{"dev", "", "0.0~dev"},
		{"abc1234", "20260101120000", "0.0~git20260101120000.abc1234"},
		{"abc1234-dirty", "20260101120000", "0.0~git20260101120000.abc1234+dirty"},
		{"0123456", "20260102120000", "0.0~git20260102120000.0123456"},
		{"v1.2.3-rc1", "", "1.2.3~rc1"},
		{"v1.2.3", "", "1.2.3"},
		{"v1.2.3-dirty", "", "1.2.3+dirty"},
		{"v1.2.3-4-gabc1234", "", "1.2.3+git4.abc1234"},
		{"v1.2.3-12-gdef5678-dirty", "", "1.2.3+git12.def5678+dirty"},
		{"v1.10.0", "", "1.10.0"},
	}
	prev := ""
	for _, r := range rows {
		out, err := exec.Command("sh", filepath.Join(debRepo, "packaging/deb/version.sh"), r.describe, r.date).Output()
		if err != nil {
			t.Fatalf("version.sh %s: %v%s", r.describe, err, stderrOf(err))
		}
		got := strings.TrimSpace(string(out))
		if got != r.want {
			t.Errorf("version.sh %s %s = %q, want %q", r.describe, r.date, got, r.want)
		}
		if prev != "" {
			if err := exec.Command(dpkg, "--compare-versions", prev, "lt", got).Run(); err != nil {
				t.Errorf("dpkg sorts %s before %s", got, prev)
			}
		}
		prev = got
	}
	if err := exec.Command("sh", filepath.Join(debRepo, "packaging/deb/version.sh"), "v1 2").Run(); err == nil {
		t.Error("version.sh made a version of 'v1 2'; it should refuse")
	}
}
