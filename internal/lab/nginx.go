package lab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// nginxBody is what NginxConf accepts as a body: text that needs no quoting
// in nginx's configuration language and expands no variables.
var nginxBody = regexp.MustCompile(`^[A-Za-z0-9 _.,:/@+=-]*$`)

// NginxConf writes a self-contained nginx.conf into dir, an absolute
// directory such as t.TempDir(), and returns its path. Run it with
// "nginx -c PATH -g 'daemon off;'"; the file itself does not set daemon.
//
// Everything nginx writes stays in dir: nginx.pid, error.log and the
// *_temp_path directories (the packaged defaults under /var/lib/nginx may
// not exist). Access logging is off. Two workers run; when nginx is started
// by root they run as root too, because the default user, nobody, cannot
// see into a TempDir (mode 0700) and would never find dir/unhealthy. A
// graceful stop (SIGQUIT) closes connections still open after 5s, such as
// one to a VIP that has since moved away, whose client no longer answers.
//
// The server listens on listen and answers GET / with 200 and body
// (letters, digits and " _.,:/@+=-" only), and GET /health with 200 "ok"
// or, while dir/unhealthy exists, 500 "unhealthy". /health is defined in
// dir/health.conf, which nginx.conf includes, so a test may also rewrite
// that file and send nginx SIGHUP. If the test fails, error.log is copied
// into the test log.
func NginxConf(t T, dir string, listen netip.AddrPort, body string) string {
	t.Helper()
	if !filepath.IsAbs(dir) {
		t.Fatalf("lab: nginx directory %q is not absolute", dir)
	}
	if !nginxBody.MatchString(body) {
		t.Fatalf("lab: nginx body %q: want only letters, digits and %q", body, " _.,:/@+=-")
	}
	if !listen.IsValid() || listen.Port() == 0 {
		t.Fatalf("lab: nginx listen address %v: want an address and a port", listen)
	}
	health := defaultHealthConf(dir)
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, NginxHealthConf(dir), health)
	writeFile(t, conf, nginxConf(dir, listen, body, os.Geteuid() == 0))
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("lab: nginx %s error.log:\n%s", dir, b)
		}
	})
	return conf
}

// NginxHealthConf returns the path of the file that defines /health for
// the nginx configured in dir, to be rewritten before a reload.
func NginxHealthConf(dir string) string { return filepath.Join(dir, "health.conf") }

// SetNginxHealthy makes /health of the nginx configured in dir answer 200
// (true) or 500 (false) from the next request on, with no reload: nginx
// looks for dir/unhealthy on every request.
func SetNginxHealthy(t T, dir string, healthy bool) {
	t.Helper()
	flag := filepath.Join(dir, "unhealthy")
	if healthy {
		if err := os.Remove(flag); err != nil && !os.IsNotExist(err) {
			t.Fatalf("lab: %v", err)
		}
		return
	}
	writeFile(t, flag, "")
}

func defaultHealthConf(dir string) string {
	return fmt.Sprintf("if (-f %q) {\n\treturn 500 \"unhealthy\";\n}\nreturn 200 \"ok\";\n",
		filepath.Join(dir, "unhealthy"))
}

func nginxConf(dir string, listen netip.AddrPort, body string, root bool) string {
	p := func(name string) string { return filepath.Join(dir, name) }
	var b strings.Builder
	b.WriteString("# A test fixture: everything this nginx writes stays in this directory.\n")
	if root {
		b.WriteString("user root;\n")
	}
	// A worker stopping gracefully waits for its open connections; one
	// whose client went away with a moved VIP would hold it for a minute.
	b.WriteString("worker_shutdown_timeout 5s;\n")
	fmt.Fprintf(&b, "worker_processes 2;\npid %q;\nlock_file %q;\nerror_log %q notice;\n",
		p("nginx.pid"), p("nginx.lock"), p("error.log"))
	b.WriteString("events {\n\tworker_connections 256;\n}\n")
	b.WriteString("http {\n\taccess_log off;\n\tdefault_type text/plain;\n")
	fmt.Fprintf(&b, "\tclient_body_temp_path %q;\n", p("client_body"))
	for _, m := range nginxTempModules() {
		fmt.Fprintf(&b, "\t%s_temp_path %q;\n", m, p(m))
	}
	opt := ""
	if listen.Addr().Is6() && listen.Addr().IsUnspecified() {
		opt = " ipv6only=off" // [::] serves both families
	}
	fmt.Fprintf(&b, "\tserver {\n\t\tlisten %s%s;\n", listen, opt)
	fmt.Fprintf(&b, "\t\tlocation / {\n\t\t\treturn 200 %q;\n\t\t}\n", body)
	fmt.Fprintf(&b, "\t\tlocation = /health {\n\t\t\tinclude %q;\n\t\t}\n", NginxHealthConf(dir))
	b.WriteString("\t}\n}\n")
	return b.String()
}

// nginxTempModules lists the modules with a temp path that the installed
// nginx has: setting the path of a module built without is an error, and
// leaving out one built in makes nginx create the packaged default.
var nginxTempModules = sync.OnceValue(func() []string {
	out := ""
	if p, err := lookPath("nginx"); err == nil {
		b, _ := exec.Command(p, "-V").CombinedOutput()
		out = string(b)
	}
	var mods []string
	for _, m := range []string{"proxy", "fastcgi", "uwsgi", "scgi"} {
		if !strings.Contains(out, "--without-http_"+m+"_module") {
			mods = append(mods, m)
		}
	}
	return mods
})

func writeFile(t T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("lab: %v", err)
	}
}
