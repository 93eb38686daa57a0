package core_test

import (
	"bytes"
	"context"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3fake"
	"github.com/bucketfs/bucketfs/stage"
	"github.com/bucketfs/bucketfs/uploader"
)

// stagedBed is a core over an in-memory S3 with a stage of max bytes.
func stagedBed(t *testing.T, max int64) (*bed, *stage.Dir) {
	t.Helper()
	fake := s3fake.New()
	up, err := uploader.New(fake, uploader.Config{PartSize: 5 << 20, MemoryLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	d, err := stage.Open(t.TempDir(), max, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		closeBed(t, up, fake)
		if n := d.Used(); n != 0 {
			t.Errorf("%d bytes still staged after every release", n)
		}
		d.Close()
	})
	c := core.New(core.Config{Client: fake, Uploader: up, Stage: d, WriterWait: 100 * time.Millisecond})
	return &bed{t: t, s3: fake, up: up, core: c}, d
}

// existingETag is bed.existing with the ETag an edit in place starts from.
func (b *bed) existingETag(key string) func(bool) core.Existing {
	return func(bool) core.Existing {
		data, info, ok := b.s3.Object(key)
		if !ok {
			return core.Existing{}
		}
		return core.Existing{Exists: true, Size: int64(len(data)), ETag: info.ETag}
	}
}

func (b *bed) openEdit(f *file, pid uint32, key string, mode core.OpenMode) *core.Handle {
	b.t.Helper()
	h, err := f.OpenWrite(context.Background(), pid, key, mode, b.existingETag(key))
	if err != nil {
		b.t.Fatalf("open %s: %v", key, err)
	}
	return h
}

func readAll(t *testing.T, h *core.Handle, size int) string {
	t.Helper()
	p := make([]byte, size+10)
	n, err := h.ReadAt(context.Background(), p, 0)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(p[:n])
}

func TestAppendToExistingObject(t *testing.T) {
	b, _ := stagedBed(t, 64<<20)
	b.s3.SetObject("log", []byte("one\n"), nil)
	f := b.file()
	h := b.openEdit(f, 100, "log", core.OpenMode{})
	write(t, h, 4, "two\n")
	wantErrno(t, "close", h.Flush(context.Background(), 100), 0)
	h.Release(context.Background())
	if got := b.object("log"); got != "one\ntwo\n" {
		t.Fatalf("log holds %q", got)
	}
}

func TestWriteBeforeEndInMemoryStagesWithoutCommit(t *testing.T) {
	b, _ := stagedBed(t, 64<<20)
	f := b.file()
	ctx := context.Background()
	h := b.open(f, 100, "f", core.OpenMode{Create: true, Truncate: true})
	write(t, h, 0, "hello world")
	// A rewrite within the part still in memory is patched there.
	write(t, h, 0, "J")
	if f.Dirty() != true || b.s3.Count("PutObject") != 0 {
		t.Fatal("the patch sent something")
	}
	// Past the end: a hole, staged, nothing sent yet.
	write(t, h, 20, "!")
	if n := b.s3.Count("PutObject") + b.s3.Count("CreateMultipartUpload"); n != 0 {
		t.Fatalf("staging sent %d requests", n)
	}
	if got := readAll(t, h, 21); got != "Jello world\x00\x00\x00\x00\x00\x00\x00\x00\x00!" {
		t.Fatalf("read %q", got)
	}
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("f"); got != "Jello world\x00\x00\x00\x00\x00\x00\x00\x00\x00!" {
		t.Fatalf("f holds %q", got)
	}
	if n := b.s3.Count("PutObject"); n != 1 {
		t.Fatalf("%d PutObject, want 1", n)
	}
}

func TestWriteBeforeSentPartsCommitsThenStages(t *testing.T) {
	b, _ := stagedBed(t, 64<<20)
	f := b.file()
	ctx := context.Background()
	h := b.open(f, 100, "f", core.OpenMode{Create: true, Truncate: true})
	data := bytes.Repeat([]byte("abcdefgh"), 12<<17) // 12 MiB: the first 5 MiB part was sent
	if _, err := h.Write(ctx, 0, data); err != nil {
		t.Fatal(err)
	}
	write(t, h, 100, "XYZ")
	copy(data[100:], "XYZ")
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("f"); got != string(data) {
		t.Fatalf("f differs (len %d)", len(got))
	}
}

func TestSecondWriterSharesTheFile(t *testing.T) {
	b, _ := stagedBed(t, 64<<20)
	b.s3.SetObject("f", []byte("0123456789"), nil)
	f := b.file()
	ctx := context.Background()
	h1 := b.openEdit(f, 100, "f", core.OpenMode{})
	h2 := b.openEdit(f, 200, "f", core.OpenMode{})
	write(t, h1, 0, "a")
	write(t, h2, 10, "b")
	if got := readAll(t, h1, 11); got != "a123456789b" {
		t.Fatalf("h1 reads %q", got)
	}
	wantErrno(t, "first close", h2.Flush(ctx, 200), 0)
	h2.Release(ctx)
	if got := b.object("f"); got != "a123456789b" {
		t.Fatalf("after the second writer's close: %q", got)
	}
	write(t, h1, 11, "c")
	h1.Release(ctx)
	if got := b.object("f"); got != "a123456789bc" {
		t.Fatalf("after the last release: %q", got)
	}
}

func TestTruncate(t *testing.T) {
	b, _ := stagedBed(t, 64<<20)
	b.s3.SetObject("f", []byte("0123456789"), nil)
	f := b.file()
	ctx := context.Background()
	// truncate(2) of a closed file: a session of its own, committed at once.
	if err := f.Truncate(ctx, "f", 4, b.existingETag("f")); err != nil {
		t.Fatal(err)
	}
	if got := b.object("f"); got != "0123" {
		t.Fatalf("after truncate 4: %q", got)
	}
	h := b.openEdit(f, 100, "f", core.OpenMode{})
	if err := h.Truncate(ctx, 8); err != nil {
		t.Fatal(err)
	}
	write(t, h, 8, "x")
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("f"); got != "0123\x00\x00\x00\x00x" {
		t.Fatalf("after extend and write: %q", got)
	}
}

func TestUnlinkedFileKeepsItsBytes(t *testing.T) {
	b, _ := stagedBed(t, 64<<20)
	b.s3.SetObject("f", []byte("0123456789"), nil)
	f := b.file()
	ctx := context.Background()
	h := b.openEdit(f, 100, "f", core.OpenMode{})
	if !f.Detach(ctx) {
		t.Fatal("no session to detach")
	}
	if err := b.s3.Delete(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	write(t, h, 10, "!")
	if got := readAll(t, h, 11); got != "0123456789!" {
		t.Fatalf("the unlinked file reads %q", got)
	}
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	b.absent("f")
}

func TestFullStageIsENOSPCAndLosesNothing(t *testing.T) {
	b, _ := stagedBed(t, 1<<20)
	f := b.file()
	ctx := context.Background()
	h := b.open(f, 100, "f", core.OpenMode{Create: true, Truncate: true})
	if err := h.Truncate(ctx, 10); err != nil { // staged, empty
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{'x'}, 1<<20)
	if _, err := h.Write(ctx, 0, big); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(ctx, 1<<20, []byte("y")); core.Errno(err) != syscall.ENOSPC {
		t.Fatalf("a write past the stage's bound: %v, want ENOSPC", err)
	}
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("f"); got != string(big) {
		t.Fatalf("f holds %d bytes, want the %d written", len(got), len(big))
	}
}

func TestOutsideChangeFailsTheEdit(t *testing.T) {
	b, _ := stagedBed(t, 64<<20)
	b.s3.SetObject("f", []byte("0123456789"), nil)
	f := b.file()
	ctx := context.Background()
	h := b.openEdit(f, 100, "f", core.OpenMode{})
	write(t, h, 10, "!")
	b.s3.SetObject("f", []byte("outside"), nil)
	wantErrno(t, "close", h.Flush(ctx, 100), syscall.EIO)
	h.Release(ctx)
	if got := b.object("f"); got != "outside" {
		t.Fatalf("the outside change was overwritten: %q", got)
	}
}

func TestRenameOfStagedFile(t *testing.T) {
	b, _ := stagedBed(t, 64<<20)
	b.s3.SetObject("a", []byte("0123456789"), nil)
	f := b.file()
	ctx := context.Background()
	h := b.openEdit(f, 100, "a", core.OpenMode{})
	write(t, h, 0, "X")
	if handled, _, err := f.Rename(ctx, "b", s3client.CopyOptions{}); !handled || err != nil {
		t.Fatalf("rename: %v %v", handled, err)
	}
	b.absent("a")
	write(t, h, 10, "!")
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	b.absent("a")
	if got := b.object("b"); got != "X123456789!" {
		t.Fatalf("b holds %q", got)
	}
}

// CopyFrom (cp's copy_file_range): a file just opened for writing becomes a
// copy of another object without reading it; the opener's close composes it
// on the server (one CopyObject; with O_EXCL, one copied part completed
// with If-None-Match); reads and writes after it see and edit the copy.
func TestCopyFrom(t *testing.T) {
	b, _ := stagedBed(t, 64<<20)
	src := bytes.Repeat([]byte("0123456789abcdef"), 6<<16) // 6 MiB
	b.s3.SetObject("src", src, nil)
	_, info, _ := b.s3.Object("src")
	source := core.CopySource{Key: "src", ETag: info.ETag, Size: int64(len(src))}

	f := b.file()
	h := b.open(f, 100, "dst", core.OpenMode{Create: true, Truncate: true, Exclusive: true})
	if !h.CopyFrom(ctx, source) {
		t.Fatal("CopyFrom not handled")
	}
	b.s3.ResetCounts()
	head := make([]byte, 16)
	if n, err := h.ReadAt(ctx, head, 0); err != nil || string(head[:n]) != "0123456789abcdef" {
		t.Fatalf("the copy reads %q, %v", head[:n], err)
	}
	write(t, h, int64(len(src)), "tail")
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("dst"); got != string(src)+"tail" {
		t.Fatalf("dst: %d bytes", len(got))
	}
	if c := b.s3.Counts(); c[s3fake.OpUploadPartCopy] != 1 || c[s3fake.OpPutObject] != 0 || c[s3fake.OpCopyObject] != 0 {
		t.Fatalf("requests %v; want the copy's bytes copied on the server", c)
	}
	if len(f.committed) != 1 || f.committed[0].Size != int64(len(src))+4 {
		t.Fatalf("committed %+v", f.committed)
	}

	// Over an existing object, unchanged: one CopyObject at close.
	b.s3.ResetCounts()
	g := b.file()
	h = b.open(g, 100, "dst", core.OpenMode{Truncate: true})
	if !h.CopyFrom(ctx, source) {
		t.Fatal("CopyFrom not handled")
	}
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("dst"); got != string(src) {
		t.Fatalf("dst: %d bytes", len(got))
	}
	if c := b.s3.Counts(); c[s3fake.OpCopyObject] != 1 || len(c) != 1 {
		t.Fatalf("requests %v; want one CopyObject", c)
	}

	// Not once something was written: the caller copies the bytes.
	h = b.open(g, 100, "dst", core.OpenMode{Truncate: true})
	write(t, h, 0, "x")
	if h.CopyFrom(ctx, source) {
		t.Fatal("CopyFrom after a write handled; want not")
	}
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)

	// A source replaced before the commit fails the close; dst is kept.
	h = b.open(g, 100, "dst", core.OpenMode{Truncate: true})
	if !h.CopyFrom(ctx, source) {
		t.Fatal("CopyFrom not handled")
	}
	b.s3.SetObject("src", []byte("theirs"), nil)
	wantErrno(t, "close after the source changed", h.Flush(ctx, 100), syscall.EIO)
	h.Release(ctx)
	if got := b.object("dst"); got != "x" {
		t.Fatalf("dst = %q after a failed copy, want the last commit's", got)
	}
}

// Without a stage, CopyFrom is not handled (the kernel copies the bytes).
func TestCopyFromWithoutStage(t *testing.T) {
	b := newBed(t)
	b.s3.SetObject("src", []byte("source"), nil)
	_, info, _ := b.s3.Object("src")
	f := b.file()
	h := b.open(f, 100, "dst", core.OpenMode{Create: true, Truncate: true})
	if h.CopyFrom(ctx, core.CopySource{Key: "src", ETag: info.ETag, Size: 6}) {
		t.Fatal("CopyFrom without a stage handled; want not")
	}
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
}

// Whatever ends a copied session commits the copy, never drops it: a
// release without the opener's flush, an fsync, a rename, a truncation.
func TestCopyFromCommitsOnEveryPath(t *testing.T) {
	b, _ := stagedBed(t, 64<<20)
	src := bytes.Repeat([]byte("copy me "), 1<<19) // 4 MiB
	b.s3.SetObject("src", src, nil)
	_, info, _ := b.s3.Object("src")
	source := core.CopySource{Key: "src", ETag: info.ETag, Size: int64(len(src))}
	// Over an existing empty object: nothing but the copy makes the
	// session owe a commit.
	copied := func(f *file, key string) *core.Handle {
		t.Helper()
		b.s3.SetObject(key, nil, nil)
		h := b.open(f, 100, key, core.OpenMode{Truncate: true})
		if !h.CopyFrom(ctx, source) {
			t.Fatalf("CopyFrom into %s not handled", key)
		}
		return h
	}

	h := copied(b.file(), "released")
	h.Release(ctx) // no flush from the opener (a child's close, pid 0)
	if got := b.object("released"); got != string(src) {
		t.Fatalf("released: %d bytes, want the copy", len(got))
	}

	h = copied(b.file(), "synced")
	wantErrno(t, "fsync", h.Fsync(ctx), 0)
	if got := b.object("synced"); got != string(src) {
		t.Fatalf("synced: %d bytes after fsync, want the copy", len(got))
	}
	h.Release(ctx)

	f := b.file()
	h = copied(f, "before")
	if handled, _, err := f.Rename(ctx, "after", s3client.CopyOptions{}); !handled || err != nil {
		t.Fatalf("rename: %v, %v", handled, err)
	}
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("after"); got != string(src) {
		t.Fatalf("after: %d bytes, want the copy", len(got))
	}
	b.absent("before")

	h = copied(b.file(), "cut")
	if err := h.Truncate(ctx, 5); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "close", h.Flush(ctx, 100), 0)
	h.Release(ctx)
	if got := b.object("cut"); got != "copy " {
		t.Fatalf("cut = %q, want %q", got, "copy ")
	}
}
