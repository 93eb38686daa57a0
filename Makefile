# bucketfs: make demo, make test, make bench. Everything a clean Debian
# machine needs is installed from here (as root).

GO            ?= go
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
VERSION       := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
MNT           := $(CURDIR)/mnt
QUICK         ?=

PREFIX        ?= /usr/local
BINDIR        ?= $(PREFIX)/bin
# mount(8) looks for the helper of type fuse.bucketfs in /sbin only
# (util-linux's fixed search path), whatever PREFIX is.
SBINDIR       ?= /sbin
# BUCKETFS is the binary install copies (the tests point it at their own build).
BUCKETFS      ?= bin/bucketfs

.PHONY: build deps test demo demo-stop bench clean install uninstall

## build: the binary, at bin/bucketfs
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/bucketfs ./cmd/bucketfs

## install: the binary at $(BINDIR)/bucketfs and mount(8)'s helper for
## `mount -t fuse.bucketfs` and fstab, $(SBINDIR)/mount.fuse.bucketfs (a link
## to it). DESTDIR stages the files for a package.
install: build
	install -D -m 0755 $(BUCKETFS) $(DESTDIR)$(BINDIR)/bucketfs
	install -d $(DESTDIR)$(SBINDIR)
	ln -sfn $(BINDIR)/bucketfs $(DESTDIR)$(SBINDIR)/mount.fuse.bucketfs

## uninstall: removes what install put in place
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/bucketfs $(DESTDIR)$(SBINDIR)/mount.fuse.bucketfs

## bin/minio: the S3 server of the test bed, built from the Go module proxy once
bin/minio:
	GOBIN=$(CURDIR)/bin $(GO) install github.com/minio/minio@$(MINIO_VERSION)

## deps: the system tools the tests drive, installed with apt when missing
deps:
	@missing=""; \
	for pair in fusermount3:fuse3 rsync:rsync tar:tar diff:diffutils dd:coreutils \
		git:git sqlite3:sqlite3 borg:borgbackup restic:restic; do \
		command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

## test: every test, unit and end-to-end (MinIO and real FUSE mounts), with -race
test: deps bin/minio build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

## demo: a local MinIO with sample data, mounted at ./mnt
demo: build bin/minio
	@$(GO) run ./e2e/demo start
	@mkdir -p $(MNT)
	@if grep -qs " $(MNT) " /proc/self/mountinfo; then \
		echo "already mounted at ./mnt"; \
	else \
		. ./.demo/env && bin/bucketfs demo $(MNT) --endpoint-url "$$BUCKETFS_ENDPOINT" --force-path-style --log-file .demo/bucketfs.log; \
	fi
	@echo
	@echo "bucket 'demo' is mounted at ./mnt. Try:"
	@echo "  ls -l mnt mnt/big                      # listings cost LIST requests only"
	@echo "  cat mnt/docs/guide.md"
	@echo "  dd if=mnt/big/random-150MiB.bin of=/dev/null bs=1M   # read-ahead"
	@echo "  dd if=/dev/zero of=mnt/new.bin bs=1M count=100       # streaming multipart upload"
	@echo "  cp -a /usr/share/doc/bash mnt/ && rsync -a /usr/share/doc/bash/ mnt/bash/"
	@echo "  df -h mnt"
	@echo "logs: .demo/bucketfs.log; S3 credentials and endpoint: .demo/env"
	@echo "stop: make demo-stop"

## demo-stop: unmount ./mnt and stop the demo's MinIO
demo-stop:
	@if grep -qs " $(MNT) " /proc/self/mountinfo; then umount $(MNT) && echo "unmounted ./mnt"; fi
	@$(GO) run ./e2e/demo stop

## bench: the benchmark harness (QUICK=1 for a short run)
bench: build bin/minio deps
	QUICK=$(QUICK) $(GO) run ./bench

clean:
	rm -rf bin/bucketfs bench-results
