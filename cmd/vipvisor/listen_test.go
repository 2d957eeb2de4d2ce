package main

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/vipvisor/vipvisor/internal/lab"
)

func TestListenSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		over map[string]string
		want string // "" when accepted, else a line of the error
	}{
		{"IPv4 and IPv6 wildcards", map[string]string{"LISTEN": ":80,[::]:80"}, ""},
		{"HTTP probe beside held sockets", map[string]string{"LISTEN": ":80", "CHECK_HTTP": "http://127.0.0.1/health"}, ""},
		{"TCP probe of another port", map[string]string{"LISTEN": ":80", "CHECK_TCP": "127.0.0.1:8080"}, ""},
		{"bad port", map[string]string{"LISTEN": ":0"}, `VIPVISOR_LISTEN=":0": ":0": the port must be 1-65535`},
		{"a name", map[string]string{"LISTEN": "localhost:80"}, `VIPVISOR_LISTEN="localhost:80": "localhost:80": the host must be an IP address`},
		{"TCP probe of a held wildcard", map[string]string{"LISTEN": ":80", "CHECK_TCP": "127.0.0.1:80"},
			`VIPVISOR_CHECK_TCP="127.0.0.1:80": 127.0.0.1:80 is held by vipvisor itself (VIPVISOR_LISTEN)`},
		{"TCP probe of localhost, held on IPv6", map[string]string{"LISTEN": "[::]:80", "CHECK_TCP": "localhost:80"},
			`VIPVISOR_CHECK_TCP="localhost:80": localhost:80 is held by vipvisor itself`},
		{"TCP probe of a held address", map[string]string{"LISTEN": "192.0.2.10:443", "CHECK_TCP": "192.0.2.10:443"},
			`VIPVISOR_CHECK_TCP="192.0.2.10:443"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, tc.over)
			_, err := loadSettings()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCheckListenAgainstTheChild: only nginx takes the held sockets, and
// only on addresses its configuration listens on, as nginx -T shows it.
func TestCheckListenAgainstTheChild(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		lab.Skip(t, "nginx not installed")
	}
	dir := t.TempDir()
	conf := lab.NginxConf(t, dir, netip.MustParseAddrPort("0.0.0.0:8080"), "a")
	for _, tc := range []struct {
		name   string
		listen string
		argv   []string
		want   string // "" when accepted
	}{
		{"nginx listening on it", ":8080", []string{nginx, "-c", conf}, ""},
		{"nginx not listening on it", ":8080,127.0.0.1:9000", []string{nginx, "-c", conf},
			`VIPVISOR_LISTEN=":8080,127.0.0.1:9000": nginx's configuration does not listen on 127.0.0.1:9000; add ` + "`listen 127.0.0.1:9000;`"},
		{"httpd", ":80", []string{"/usr/sbin/apache2", "-DFOREGROUND"}, "Apache httpd takes no inherited listening sockets"},
		{"another server", ":80", []string{"/usr/bin/python3", "-m", "http.server"}, "/usr/bin/python3 is not nginx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t, map[string]string{"LISTEN": tc.listen})
			s, err := loadSettings()
			if err != nil {
				t.Fatal(err)
			}
			err = checkListen(context.Background(), s, tc.argv, s.Ops.Logger())
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
