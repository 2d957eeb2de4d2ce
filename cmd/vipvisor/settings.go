package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/vipvisor/vipvisor/internal/envconf"
	"github.com/vipvisor/vipvisor/probes"
	"github.com/vipvisor/vipvisor/supervisor"
	"github.com/vipvisor/vipvisor/vrrp"
)

// Ops is the operational settings that belong to no package: the status
// endpoint and logging.
type Ops struct {
	StatusAddr string `split_words:"true" default:"127.0.0.1:9797" accept:"host:port, or off" desc:"HTTP /status (JSON), /metrics (Prometheus text), /healthz"`
	LogFormat  string `split_words:"true" default:"text" accept:"text or json" desc:"log format (log/slog)"`
	LogLevel   string `split_words:"true" default:"info" accept:"debug, info, warn or error" desc:"lowest level logged"`
}

// Validate checks each value. Each error names its variable.
func (o *Ops) Validate() []error {
	var errs []error
	if o.StatusAddr != "off" {
		if _, port, err := net.SplitHostPort(o.StatusAddr); err != nil || port == "" {
			errs = append(errs, envconf.Invalid("STATUS_ADDR", "not host:port", "host:port such as 127.0.0.1:9797, or off"))
		}
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		errs = append(errs, envconf.Invalid("LOG_FORMAT", "unknown format", "text or json"))
	}
	if _, err := o.level(); err != nil {
		errs = append(errs, envconf.Invalid("LOG_LEVEL", "unknown level", "debug, info, warn or error"))
	}
	return errs
}

func (o *Ops) level() (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(o.LogLevel))
	return l, err
}

// Logger returns the logger the settings ask for, writing to stderr.
func (o *Ops) Logger() *slog.Logger {
	level, _ := o.level()
	opts := &slog.HandlerOptions{Level: level}
	if o.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// Settings is every setting vipvisor reads, grouped by the package that
// owns it.
type Settings struct {
	VRRP   vrrp.Config
	Child  supervisor.Config
	Probes probes.Config
	Ops    Ops
}

// sections lists the groups in the order help and check show them.
func (s *Settings) sections() []envconf.Section {
	return []envconf.Section{
		{Title: "VRRP", Spec: &s.VRRP},
		{Title: "Child", Spec: &s.Child},
		{Title: "Probes (a child with no probe is judged by being alive)", Spec: &s.Probes},
		{Title: "Operations", Spec: &s.Ops},
	}
}

// loadSettings reads and validates the whole environment.
func loadSettings() (*Settings, error) {
	s := new(Settings)
	if err := envconf.Load(s.sections()...); err != nil {
		return nil, err
	}
	return s, nil
}

// configError prints every configuration problem, one per line.
func configError(err error) string {
	var b strings.Builder
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(&b, "vipvisor: %s\n", line)
	}
	return b.String()
}
