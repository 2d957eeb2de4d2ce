# vipvisor — see README.md. Targets that need root say so.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 30s
# End-to-end tests run real nginx and keepalived in network namespaces.
TESTTIMEOUT ?= 30m

.PHONY: all build test unit lint fuzz demo bench clean

all: build

## build: static binary at bin/vipvisor, version stamped
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/vipvisor ./cmd/vipvisor

## test: unit and end-to-end tests (end-to-end ones need root; with CI=true they fail rather than skip)
# -p 1: the packages' tests run one after another, so that the deployment
# tests (debootstrap, systemd-nspawn, dockerd) never load the machine under
# the end-to-end tests' failover timing.
test:
	$(GO) test -race -count=1 -p 1 -timeout $(TESTTIMEOUT) ./...

## unit: the fast tests only
unit:
	$(GO) test -race -count=1 -short ./...

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

## fuzz: each fuzz target for FUZZTIME
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzWords$$' -fuzztime $(FUZZTIME) ./internal/envconf
	$(GO) test -run '^$$' -fuzz '^FuzzDecimal$$' -fuzztime $(FUZZTIME) ./internal/envconf
	$(GO) test -run '^$$' -fuzz '^FuzzAdvert$$' -fuzztime $(FUZZTIME) ./vrrp

clean:
	rm -rf bin

## demo: two vipvisor nodes sharing a VIP, nginx crashing under them, narrated and measured (root; installs nginx if missing)
demo: build
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nginx; }
	$(GO) build -o bin/vipvisor-demo ./demo
	bin/vipvisor-demo -vipvisor bin/vipvisor

## bench: vipvisor against keepalived 2.2 in the namespace lab; writes bench/results.md and bench/scenario-*.svg (root; installs keepalived, nginx and tcpdump if missing; about 12 minutes)
bench:
	@start=$$(date +%s%N); \
	{ command -v keepalived >/dev/null || test -x /usr/sbin/keepalived; } && { command -v nginx >/dev/null || test -x /usr/sbin/nginx; } && { command -v tcpdump >/dev/null || test -x /usr/bin/tcpdump; } || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y keepalived nginx tcpdump; } && \
	$(MAKE) --no-print-directory build && \
	$(GO) build -o bin/vipvisor-bench ./bench && \
	bin/vipvisor-bench -vipvisor bin/vipvisor -started $$start $(BENCHFLAGS)
