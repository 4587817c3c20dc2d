GO ?= go
STATICCHECK ?= $(shell command -v staticcheck || echo $(shell $(GO) env GOPATH)/bin/staticcheck)

.PHONY: all build install uninstall demo test vet staticcheck fmt-check fuzz fuzz-smoke long bench testdata

# Where make install puts the commands. The mount helper goes to /sbin whatever PREFIX says: mount(8)
# looks for /sbin/mount.TYPE there only. DESTDIR (for packaging) prefixes every path written.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= /sbin
BIN ?= bin

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# vmdk, vmdkmount, and /sbin/mount.vmdk (a link to vmdkmount, which acts as mount(8)'s helper when run
# under that name), so that fstab type "vmdk" mounts with this vmdkmount even where libvmdk-utils has
# put its own vmdkmount on the PATH. It installs what `make` built (building only what is missing), so
# `sudo make install` needs no Go for root.
$(BIN)/vmdk $(BIN)/vmdkmount:
	$(GO) build -o $(BIN)/ ./cmd/...

install: $(BIN)/vmdk $(BIN)/vmdkmount
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR)
	install -m 0755 $(BIN)/vmdk $(BIN)/vmdkmount $(DESTDIR)$(BINDIR)/
	ln -sfn $(BINDIR)/vmdkmount $(DESTDIR)$(SBINDIR)/mount.vmdk

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vmdk $(DESTDIR)$(BINDIR)/vmdkmount $(DESTDIR)$(SBINDIR)/mount.vmdk

# The README's first command: build, mount the sample disks, show their files, unmount.
demo:
	@scripts/demo.sh

# The README's test command: formatting, vet, staticcheck and every test with the race detector.
test: fmt-check vet staticcheck
	$(GO) test -race -timeout 40m ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

# Runs every fuzz target for FUZZTIME each (default 1m), one worker; stops at the first failure.
FUZZTIME ?= 1m
fuzz:
	@GO=$(GO) scripts/fuzz-all.sh $(FUZZTIME)

# The CI smoke: every fuzz target briefly, its regression inputs in testdata/fuzz included.
fuzz-smoke:
	@GO=$(GO) scripts/fuzz-all.sh 3s

# The minutes-long runs behind -long: the mount's soak and kill tests and the generated-tree comparison of
# every filesystem reader (needs root).
long:
	$(GO) test -p 1 -timeout 90m -run 'TestSoak|TestKill' ./fusefs ./cmd/vmdkmount -long
	$(GO) test -timeout 90m ./volumes/fsys/longtest -long

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

testdata:
	testdata/make-fixtures.sh
