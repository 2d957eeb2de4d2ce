# vipvisor — see README.md. Targets that need root say so.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# nethttpomithttp2 leaves net/http's HTTP/2 out of the binary: the status
# server is plain HTTP and the HTTP probe's transport never asks for h2,
# so it is dead code, and every page of the binary counts in vipvisor's
# resident memory. The deb and the deploy tests build with the same tags.
TAGS     := nethttpomithttp2
FUZZTIME ?= 30s
# End-to-end tests run real nginx and keepalived in network namespaces.
TESTTIMEOUT ?= 30m
# make image: the image's name (with a tag), its base image, the client.
IMAGE    ?= vipvisor-nginx:$(VERSION)
BASE     ?= nginx
DOCKER   ?= docker

.PHONY: all build test unit lint fuzz demo bench clean image deb man

all: build

## build: static binary at bin/vipvisor, version stamped
build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/vipvisor ./cmd/vipvisor

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
	rm -rf bin $(DIST)

## image: container image $(IMAGE), also tagged latest, from packaging/container/Dockerfile FROM $(BASE) (default: the official nginx image)
image: build
	@ctx=$$(mktemp -d) && trap 'rm -rf "$$ctx"' EXIT && cp bin/vipvisor "$$ctx/" && \
	img='$(IMAGE)' && repo=$${img%:*} && case "$${img##*:}" in */*) repo=$$img;; esac && \
	set -x && $(DOCKER) build --file packaging/container/Dockerfile --build-arg BASE='$(BASE)' \
		--tag "$$img" --tag "$$repo:latest" "$$ctx"

## demo: two vipvisor nodes sharing a VIP, nginx crashing under them, narrated and measured (root; installs nginx if missing)
demo: build
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nginx; }
	$(GO) build -o bin/vipvisor-demo ./demo
	bin/vipvisor-demo -vipvisor bin/vipvisor

## bench: vipvisor against keepalived 2.2 in the namespace lab; writes bench/results.md and bench/scenario-*.svg (root; installs keepalived, nginx and tcpdump if missing; about 15 minutes)
# BENCHFLAGS passes options to bench/: -instances-only measures just the idle
# cost by number of virtual routers (-instances 1,10,50) and replaces that
# section of bench/results.md, in about 2 minutes.
bench:
	@start=$$(date +%s%N); \
	{ command -v keepalived >/dev/null || test -x /usr/sbin/keepalived; } && { command -v nginx >/dev/null || test -x /usr/sbin/nginx; } && { command -v tcpdump >/dev/null || test -x /usr/bin/tcpdump; } || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y keepalived nginx tcpdump; } && \
	$(MAKE) --no-print-directory build && \
	$(GO) build -o bin/vipvisor-bench ./bench && \
	bin/vipvisor-bench -vipvisor bin/vipvisor -started $$start $(BENCHFLAGS)

# The Debian package. nfpm is a Go module run at a pinned version, so no
# prebuilt tool is downloaded; `make deb` needs Go, gzip and the module proxy.
# DIST=DIR puts the package elsewhere.
NFPM := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
DIST ?= dist
# Debian versions must start with a digit and sort in build order, so
# VERSION is mapped by packaging/deb/version.sh: v1.2.3 is 1.2.3, v1.2.3-rc1
# is 1.2.3~rc1, v1.2.3-4-gabc1234 is 1.2.3+git4.abc1234, and a commit with no
# tag yet is 0.0~git<commit time, UTC>.<hash>, before any release; -dirty
# becomes +dirty.
DEB_VERSION ?= $(shell sh packaging/deb/version.sh '$(VERSION)' "$$(TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd 2>/dev/null)")
DEB_ARCH ?= $(shell $(GO) env GOARCH)
DEB_MAINTAINER ?= vipvisor authors <vipvisor@example.org>
# The commit's time: the package's file times, the man page's and the
# changelog's date, so that a build of one commit is reproducible.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
DEB_STAGE = $(DIST)/deb

## man: the manual page dist/vipvisor.1.gz, from the definitions `vipvisor help` prints
man:
	@mkdir -p $(DIST)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) CGO_ENABLED=0 $(GO) run -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' ./cmd/vipvisor _man > $(DIST)/vipvisor.1
	gzip -9nf $(DIST)/vipvisor.1

## deb: the Debian package dist/vipvisor_<version>_<arch>.deb: the static binary, the unit, /etc/vipvisor/nginx.env, man page and docs
deb: man
	@rm -rf $(DEB_STAGE) $(DIST)/vipvisor_*.deb
	@mkdir -p $(DEB_STAGE)
	CGO_ENABLED=0 GOARCH=$(DEB_ARCH) $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(DEB_STAGE)/vipvisor ./cmd/vipvisor
	cp $(DIST)/vipvisor.1.gz $(DEB_STAGE)/vipvisor.1.gz
	gzip -9n < README.md > $(DEB_STAGE)/README.md.gz
	{ printf 'vipvisor (%s) unstable; urgency=medium\n\n' '$(DEB_VERSION)'; \
	  printf '  * Built from %s. README.md.gz says what it does.\n\n' '$(VERSION)'; \
	  printf ' -- %s  %s\n' '$(DEB_MAINTAINER)' "$$(date -u -R -d @$(SOURCE_DATE_EPOCH))"; } | gzip -9n > $(DEB_STAGE)/changelog.gz
	DEB_VERSION='$(DEB_VERSION)' DEB_ARCH='$(DEB_ARCH)' DEB_MAINTAINER='$(DEB_MAINTAINER)' DEB_STAGE='$(DEB_STAGE)' \
	  SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run $(NFPM) package --config packaging/deb/nfpm.yaml --packager deb --target $(DIST)/
	@rm -rf $(DEB_STAGE)
	@ls $(DIST)/vipvisor_*.deb
