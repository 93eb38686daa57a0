package fs

import (
	"bytes"
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/s3client/s3fake"
)

// TestPageCacheKeptByETag: through the page cache, an open keeps the
// kernel's pages (FOPEN_KEEP_CACHE) only when it pins the version they were
// filled from; once the node learns another version (a HEAD, this mount's
// own commit), opens drop them and the handles of the old version stop
// answering, so no open ever reads pages of two versions.
func TestPageCacheKeptByETag(t *testing.T) {
	fake := s3fake.New()
	v1, v2 := randomData(1, 3<<20), randomData(2, 5<<20)
	fake.SetObject("k", v1, nil)
	b := newTestFS(t, fake, nil)
	f := lookedUp(t, b, "k")

	open := func(wantKeep bool) *readHandle {
		t.Helper()
		fh, flags, errno := f.openRead(context.Background())
		if errno != 0 {
			t.Fatalf("open: %v", errno)
		}
		if flags&fuse.FOPEN_DIRECT_IO != 0 {
			t.Fatalf("open: flags %#x ask for direct I/O", flags)
		}
		if keep := flags&fuse.FOPEN_KEEP_CACHE != 0; keep != wantKeep {
			t.Fatalf("open: keep cache %v, want %v", keep, wantKeep)
		}
		h := fh.(*readHandle)
		t.Cleanup(func() { h.Release(context.Background()) })
		return h
	}
	readWhole := func(h *readHandle, want []byte) {
		t.Helper()
		if got, errno := readAll(h, 0); errno != 0 || !bytes.Equal(got, want) {
			t.Fatalf("read %d bytes, errno %v; want %d bytes of the version opened", len(got), errno, len(want))
		}
	}

	h1 := open(false) // nothing cached yet: the kernel drops what it may hold
	readWhole(h1, v1)
	readWhole(open(true), v1) // same ETag: the pages are kept

	// Another client replaces the object; a stat past the TTL learns it.
	fake.SetObject("k", v2, nil)
	if _, err := f.headVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, errno := h1.Read(context.Background(), make([]byte, 4096), 0); errno != syscall.EIO {
		t.Fatalf("read of the old version once the node knows a new one: %v, want EIO", errno)
	}
	h3 := open(false) // another version: its pages are dropped
	readWhole(h3, v2)
	readWhole(open(true), v2)

	// This mount's own commit is a new version too.
	f.committed(core.Version{Key: "k", ETag: `"written-here"`, Size: 7})
	if _, errno := h3.Read(context.Background(), make([]byte, 4096), 0); errno != syscall.EIO {
		t.Fatalf("read of the old version after a commit: %v, want EIO", errno)
	}

	// The next open asks S3 (the commit's attributes name no object it
	// has read) and reads the object whole.
	fake.SetObject("k", v1, nil)
	f.mu.Lock()
	f.attrAt = time.Time{}
	f.mu.Unlock()
	readWhole(open(false), v1)
	readWhole(open(true), v1)
}
