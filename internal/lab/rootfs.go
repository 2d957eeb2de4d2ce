package lab

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// RootfsPackages are what Rootfs installs beyond Debian's minbase: a
// systemd that can boot as PID 1, and nginx for vipvisor to run. procps is
// left out on purpose: a minimal system has no /bin/kill, and nothing
// shipped may need it.
var RootfsPackages = []string{"systemd", "systemd-sysv", "nginx"}

// RootfsSuite is the Debian release the root file system is made of.
const RootfsSuite = "bookworm"

var rootfs struct {
	once sync.Once
	dir  string // the parent of the root, removed by RemoveRootfs
	root string
	err  error
}

// Rootfs returns a Debian root file system (minbase with RootfsPackages)
// made by debootstrap from the machine's own Debian mirror. It is made once
// per process, in about a minute, and shared: callers must not change it
// (boot it with an overlay, or copy it). RemoveRootfs removes it; a test
// binary calls that from TestMain.
func Rootfs(t T) string {
	t.Helper()
	rootfs.once.Do(func() {
		rootfs.root, rootfs.err = makeRootfs()
	})
	if rootfs.err != nil {
		t.Fatalf("lab: root file system: %v", rootfs.err)
	}
	return rootfs.root
}

// RemoveRootfs removes the root file system Rootfs made, if any.
func RemoveRootfs() {
	if rootfs.dir != "" {
		os.RemoveAll(rootfs.dir)
	}
}

func makeRootfs() (string, error) {
	debootstrap, err := lookPath("debootstrap")
	if err != nil {
		return "", fmt.Errorf("debootstrap is not installed (apt-get install --no-install-recommends debootstrap): %w", err)
	}
	dir, err := os.MkdirTemp("", "vipvisor-rootfs-")
	if err != nil {
		return "", err
	}
	rootfs.dir = dir
	root := filepath.Join(dir, "root")
	began := time.Now()
	cmd := exec.Command(debootstrap, "--variant=minbase", "--include="+strings.Join(RootfsPackages, ","),
		RootfsSuite, root, debianMirror())
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("debootstrap %s: %v\n%s", RootfsSuite, err, tail(out, 40))
	}
	// The stock nginx unit would race vipvisor's for port 80.
	os.Symlink("/dev/null", filepath.Join(root, "etc/systemd/system/nginx.service"))
	fmt.Fprintf(os.Stderr, "lab: Debian %s root file system made in %v\n", RootfsSuite, time.Since(began).Round(time.Second))
	return root, nil
}

// debianMirror is the first Debian archive the machine's apt sources name,
// or Debian's own.
func debianMirror() string {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		if m := firstField(f, "URIs:"); m != "" {
			return m
		}
	}
	if m := firstField("/etc/apt/sources.list", "deb"); m != "" {
		return m
	}
	return "http://deb.debian.org/debian"
}

// firstField returns the first URI on a line of file that starts with key,
// but for the security archive's.
func firstField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) < 2 || w[0] != key {
			continue
		}
		for _, x := range w[1:] {
			if strings.Contains(x, "://") && !strings.Contains(x, "security") {
				return x
			}
		}
	}
	return ""
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
