module github.com/vipvisor/vipvisor

go 1.26.0

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/kelseyhightower/envconfig v1.4.0
	golang.org/x/sys v0.49.0
)
