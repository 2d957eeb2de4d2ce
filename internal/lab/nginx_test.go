package lab

import (
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNginxConfRootNamespace runs the fixture in the test's own namespace,
// on loopback, as tests of the supervisor alone do.
func TestNginxConfRootNamespace(t *testing.T) {
	requireNginx(t)
	dir := t.TempDir()
	addr := freePort(t)
	conf := NginxConf(t, dir, addr, "node-a")
	text, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(text), "daemon") {
		t.Fatalf("nginx.conf sets daemon:\n%s", text)
	}

	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	hget := func(url string) (int, string, error) { return get(hc, url) }
	base := "http://" + addr.String()
	nginxPath, _ := lookPath("nginx")
	cmd := exec.Command(nginxPath, "-c", conf, "-g", "daemon off;")
	startNginx(t, cmd, hget, base)

	wantGet(t, hget, base+"/", 200, "node-a")
	wantGet(t, hget, base+"/health", 200, "ok")
	SetNginxHealthy(t, dir, false)
	wantGet(t, hget, base+"/health", 500, "unhealthy")
	SetNginxHealthy(t, dir, true)
	wantGet(t, hget, base+"/health", 200, "ok")

	writeFile(t, NginxHealthConf(dir), "return 503 \"maintenance\";\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, "/health to answer 503 after the reload", func() bool {
		status, _, err := hget(base + "/health")
		return err == nil && status == 503
	})
}

func TestNginxConfRejects(t *testing.T) {
	dir := t.TempDir()
	good := netip.MustParseAddrPort("127.0.0.1:8080")
	tests := []struct {
		name   string
		dir    string
		listen netip.AddrPort
		body   string
	}{
		{"quote in body", dir, good, `a"b`},
		{"variable in body", dir, good, "$host"},
		{"semicolon in body", dir, good, "a;b"},
		{"relative dir", "tmp", good, "a"},
		{"no port", dir, netip.AddrPortFrom(good.Addr(), 0), "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeT{}
			f.run(func(tb T) { NginxConf(tb, tc.dir, tc.listen, tc.body) })
			if !f.Failed() {
				t.Errorf("NginxConf(%q, %v, %q) did not fail", tc.dir, tc.listen, tc.body)
			}
		})
	}
}

func wantGet(t *testing.T, get func(string) (int, string, error), url string, status int, body string) {
	t.Helper()
	gotStatus, gotBody, err := get(url)
	if err != nil || gotStatus != status || gotBody != body {
		t.Fatalf("GET %s = %d %q, %v; want %d %q", url, gotStatus, gotBody, err, status, body)
	}
}
