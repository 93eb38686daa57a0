package fs

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3fake"
)

// Tests of what a mount shows of other clients' changes, against the
// in-memory S3: one object version per open read handle, and how long an
// absent name stays absent (SEMANTICS.md, "Consistency").

// getRecorder is an s3client.API that records the If-Match of every GET.
type getRecorder struct {
	s3client.API
	mu      sync.Mutex // guards ifMatch
	ifMatch []string
}

func (c *getRecorder) GetRange(ctx context.Context, key string, offset, length int64, ifMatch string) (io.ReadCloser, error) {
	c.mu.Lock()
	c.ifMatch = append(c.ifMatch, ifMatch)
	c.mu.Unlock()
	return c.API.GetRange(ctx, key, offset, length, ifMatch)
}

// etags returns the If-Match of every GET so far.
func (c *getRecorder) etags() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ifMatch...)
}

// newTestFS returns a mount's state (no kernel) over client.
func newTestFS(t *testing.T, client s3client.API, configure func(*Config)) *bucketFS {
	t.Helper()
	cfg := Config{Client: client, Bucket: "test"}
	if configure != nil {
		configure(&cfg)
	}
	b, err := newBucketFS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.close)
	return b
}

// lookedUp returns a file node for key whose attributes a HEAD just read,
// as a lookup leaves them.
func lookedUp(t *testing.T, b *bucketFS, key string) *fileNode {
	t.Helper()
	f := newFileNode(b, key)
	if _, err := f.headVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f
}

// openForRead opens f for reading as the kernel would.
func openForRead(t *testing.T, f *fileNode) *readHandle {
	t.Helper()
	fh, flags, errno := f.openRead(context.Background())
	if errno != 0 {
		t.Fatalf("open %s: %v", f.key, errno)
	}
	if direct := flags&fuse.FOPEN_DIRECT_IO != 0; direct != f.b.cfg.DirectIO {
		t.Fatalf("open %s: flags %#x, direct I/O %v; want %v", f.key, flags, direct, f.b.cfg.DirectIO)
	}
	h := fh.(*readHandle)
	t.Cleanup(func() { h.Release(context.Background()) })
	return h
}

// readAll reads h from off to its end in 1 MiB reads, as the kernel sends
// them, and returns what it got and the errno that stopped it.
func readAll(h *readHandle, off int64) ([]byte, syscall.Errno) {
	var out []byte
	for {
		res, errno := h.Read(context.Background(), make([]byte, 1<<20), off+int64(len(out)))
		if errno != 0 {
			return out, errno
		}
		b, _ := res.Bytes(nil)
		if len(b) == 0 {
			return out, 0
		}
		out = append(out, b...)
	}
}

func randomData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// TestReadPinsOneVersion: an object replaced during a sequential read gives
// the reader old bytes, then EIO on every later read, never a byte of the
// new version; every GET names the version opened; the next open reads
// the new object whole.
func TestReadPinsOneVersion(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(fmt.Sprintf("direct I/O %v", direct), func(t *testing.T) { testReadPinsOneVersion(t, direct) })
	}
}

func testReadPinsOneVersion(t *testing.T, direct bool) {
	fake := s3fake.New()
	client := &getRecorder{API: fake}
	oldData, newData := randomData(1, 48<<20), randomData(2, 40<<20)
	fake.SetObject("k", oldData, nil)
	_, oldInfo, _ := fake.Object("k")
	// A small read-ahead window: most of the object is fetched after the
	// replacement.
	b := newTestFS(t, client, func(c *Config) { c.ReadAhead, c.DirectIO = readBlockSize, direct })
	f := lookedUp(t, b, "k")
	h := openForRead(t, f)

	first, errno := h.Read(context.Background(), make([]byte, 1<<20), 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	got, _ := first.Bytes(nil)
	fake.SetObject("k", newData, nil) // another client replaces it
	rest, errno := readAll(h, int64(len(got)))
	got = append(got, rest...)
	if errno != syscall.EIO {
		t.Fatalf("read after the object changed: %d bytes, errno %v; want EIO", len(got), errno)
	}
	if !bytes.Equal(got, oldData[:len(got)]) {
		t.Fatal("bytes read differ from the version opened")
	}
	t.Logf("read %d MiB of the old version, then EIO", len(got)>>20)
	// Every later read fails too, wherever it is.
	for _, off := range []int64{0, int64(len(got)), 40 << 20} {
		if _, errno := h.Read(context.Background(), make([]byte, 4096), off); errno != syscall.EIO {
			t.Fatalf("read at %d after the change: errno %v, want EIO", off, errno)
		}
	}
	for i, etag := range client.etags() {
		if etag != oldInfo.ETag {
			t.Fatalf("GET %d carried If-Match %q, want %q", i, etag, oldInfo.ETag)
		}
	}

	// The next open sees the new object: the node asks S3 again.
	fake.ResetCounts()
	h2 := openForRead(t, f)
	if heads := fake.Count(s3fake.OpHeadObject); heads != 1 {
		t.Fatalf("open after a change: %d HEADs, want 1", heads)
	}
	got2, errno := readAll(h2, 0)
	if errno != 0 || !bytes.Equal(got2, newData) {
		t.Fatalf("second open read %d bytes (errno %v), want the new %d", len(got2), errno, len(newData))
	}
	if a, _, _ := f.currentAttr(); a.size != int64(len(newData)) {
		t.Fatalf("node size %d after the change, want %d", a.size, len(newData))
	}
}

// TestReadOverwrittenSmallObject is the reported bug: another client
// overwrote a 4-byte object with 8 bytes while this mount's attributes
// still said 4. A read returns the 8 new bytes, never 4 of them.
func TestReadOverwrittenSmallObject(t *testing.T) {
	for _, tc := range []struct {
		name    string
		direct  bool
		age     time.Duration // of the node's attributes at open
		heads   int           // HEADs at open and read
		getsMax int
	}{
		// Fresh attributes are pinned; the first GET fails If-Match and
		// the handle, having handed out nothing, moves to the new version.
		{"direct I/O, fresh attributes", true, 0, 1, 2},
		// Older ones are checked at open: one HEAD, one GET.
		{"direct I/O, older attributes", true, openRevalidateAfter, 1, 1},
		{"page cache, older attributes", false, openRevalidateAfter, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := s3fake.New()
			fake.SetObject("small", []byte("abcd"), nil)
			b := newTestFS(t, fake, func(c *Config) { c.DirectIO = tc.direct })
			f := lookedUp(t, b, "small")
			f.mu.Lock()
			f.attrAt = f.attrAt.Add(-tc.age)
			f.mu.Unlock()
			fake.SetObject("small", []byte("ABCDEFGH"), nil)
			fake.ResetCounts()
			h := openForRead(t, f)
			got, errno := readAll(h, 0)
			if errno != 0 || string(got) != "ABCDEFGH" {
				t.Fatalf("read %q, errno %v; want the new 8 bytes", got, errno)
			}
			if heads, gets := fake.Count(s3fake.OpHeadObject), fake.Count(s3fake.OpGetObject); heads != tc.heads || gets > tc.getsMax {
				t.Fatalf("%d HEADs and %d GETs, want %d and at most %d", heads, gets, tc.heads, tc.getsMax)
			}
			if a, _, _ := f.currentAttr(); a.size != 8 {
				t.Fatalf("node size %d, want 8", a.size)
			}
		})
	}
	// Through the page cache a handle never moves to another version: the
	// kernel ends reads at the size it was told, the old one. Fresh
	// attributes are pinned, the first read answers EIO, and the next
	// open reads the new object whole.
	t.Run("page cache, fresh attributes", func(t *testing.T) {
		fake := s3fake.New()
		fake.SetObject("small", []byte("abcd"), nil)
		b := newTestFS(t, fake, nil)
		f := lookedUp(t, b, "small")
		fake.SetObject("small", []byte("ABCDEFGH"), nil)
		if got, errno := readAll(openForRead(t, f), 0); errno != syscall.EIO || len(got) != 0 {
			t.Fatalf("read %q, errno %v; want EIO and nothing", got, errno)
		}
		fake.ResetCounts()
		got, errno := readAll(openForRead(t, f), 0)
		if errno != 0 || string(got) != "ABCDEFGH" {
			t.Fatalf("next open read %q, errno %v; want the new 8 bytes", got, errno)
		}
		if heads := fake.Count(s3fake.OpHeadObject); heads != 1 {
			t.Fatalf("next open: %d HEADs, want 1", heads)
		}
	})
}

// TestReadOfDeletedObject: an object deleted by another client since the
// lookup answers ENOENT at open once its attributes are old enough to be
// checked, and ENOENT at read before.
func TestReadOfDeletedObject(t *testing.T) {
	fake := s3fake.New()
	fake.SetObject("gone", []byte("data"), nil)
	b := newTestFS(t, fake, nil)
	f := lookedUp(t, b, "gone")
	if err := fake.Delete(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	h := openForRead(t, f)
	if _, errno := h.Read(context.Background(), make([]byte, 10), 0); errno != syscall.ENOENT {
		t.Fatalf("read of a deleted object: %v, want ENOENT", errno)
	}
	f.mu.Lock()
	f.attrAt = time.Time{}
	f.mu.Unlock()
	if _, _, errno := f.openRead(context.Background()); errno != syscall.ENOENT {
		t.Fatalf("open of a deleted object: %v, want ENOENT", errno)
	}
}

// TestReadRepinBound: an object rewritten before every GET of a handle that
// has handed out nothing moves to the new version at most maxRepins times,
// then answers EIO.
func TestReadRepinBound(t *testing.T) {
	fake := s3fake.New()
	fake.SetObject("busy", []byte("v0"), nil)
	b := newTestFS(t, fake, func(c *Config) { c.DirectIO = true }) // the page cache never repins
	f := lookedUp(t, b, "busy")
	var mu sync.Mutex
	version := 0
	fake.SetHook(func(op, key string) s3fake.Fault {
		if op == s3fake.OpGetObject {
			mu.Lock()
			version++
			v := version
			mu.Unlock()
			fake.SetObject("busy", []byte{'v', byte('0' + v)}, nil)
		}
		return s3fake.Fault{}
	})
	h := openForRead(t, f)
	if _, errno := h.Read(context.Background(), make([]byte, 10), 0); errno != syscall.EIO {
		t.Fatalf("read of an object rewritten before every GET: %v, want EIO", errno)
	}
	if gets := fake.Count(s3fake.OpGetObject); gets != maxRepins+1 {
		t.Fatalf("%d GETs, want %d", gets, maxRepins+1)
	}
}

// TestNegativeTTLListing: a name absent from a directory made (or listed)
// through the mount stays absent for NegativeTTL without a request; once
// that passed, a lookup lists the small directory again (one LIST) and
// finds what another client put there. The kernel is told to keep the
// absence only for what remains of NegativeTTL.
func TestNegativeTTLListing(t *testing.T) {
	const negative = 200 * time.Millisecond
	fake := s3fake.New()
	b := newTestFS(t, fake, func(c *Config) { c.NegativeTTL = negative })
	d := &dirNode{b: b, prefix: "new/", attr: entryAttr{isDir: true, uid: -1, gid: -1}}
	d.setEmptyListing() // as mkdir through the mount leaves it
	ctx := context.Background()

	var out fuse.EntryOut
	if _, errno := d.Lookup(ctx, "x", &out); errno != syscall.ENOENT {
		t.Fatalf("lookup in an empty new directory: %v", errno)
	}
	if tmo := out.EntryTimeout(); tmo <= 0 || tmo > negative {
		t.Fatalf("kernel negative timeout %v, want within (0, %v]", tmo, negative)
	}
	fake.SetObject("new/x", []byte("outside"), nil)
	start := time.Now()
	for {
		_, errno := d.resolve(ctx, "x")
		if errno == 0 {
			break
		}
		if errno != syscall.ENOENT {
			t.Fatal(errno)
		}
		if time.Since(start) > negative+time.Second {
			t.Fatalf("an outside PUT is still absent after %v", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("outside PUT seen after %v (negative TTL %v); requests %v", took, negative, fake.Counts())
	if took > negative+100*time.Millisecond {
		t.Errorf("outside PUT seen after %v, want within %v", took, negative)
	}
	// The absence was answered from the listing, then one LIST answered
	// again, and the HEAD read the new object's metadata.
	if c := fake.Counts(); c[s3fake.OpListObjectsV2] != 1 || c[s3fake.OpHeadObject] != 1 {
		t.Fatalf("requests %v, want one LIST and one HEAD", c)
	}
}

// TestNegativeTTLLookup: without a listing, an absence learned by HEAD and
// LIST is cached for NegativeTTL (not MetadataTTL), then asked again.
func TestNegativeTTLLookup(t *testing.T) {
	const negative = 150 * time.Millisecond
	fake := s3fake.New()
	b := newTestFS(t, fake, func(c *Config) { c.NegativeTTL = negative; c.MetadataTTL = time.Minute })
	d := &dirNode{b: b, prefix: "", attr: entryAttr{isDir: true, uid: -1, gid: -1}}
	ctx := context.Background()
	if _, errno := d.resolve(ctx, "later"); errno != syscall.ENOENT {
		t.Fatal(errno)
	}
	fake.SetObject("later", []byte("x"), nil)
	fake.ResetCounts()
	if _, errno := d.resolve(ctx, "later"); errno != syscall.ENOENT {
		t.Fatalf("within the negative TTL: %v, want the cached ENOENT", errno)
	}
	if n := len(fake.Counts()); n != 0 {
		t.Fatalf("a cached absence cost %v", fake.Counts())
	}
	var out fuse.EntryOut
	if _, errno := d.Lookup(ctx, "later", &out); errno != syscall.ENOENT || out.EntryTimeout() > negative {
		t.Fatalf("lookup: %v, kernel timeout %v", errno, out.EntryTimeout())
	}
	time.Sleep(negative)
	a, errno := d.resolve(ctx, "later")
	if errno != 0 || a.size != 1 {
		t.Fatalf("after the negative TTL: %+v, %v", a, errno)
	}
}

// TestNegativeTTLAtMostMetadataTTL: an absence is never trusted longer than
// a presence.
func TestNegativeTTLAtMostMetadataTTL(t *testing.T) {
	b := newTestFS(t, s3fake.New(), func(c *Config) { c.MetadataTTL = 300 * time.Millisecond })
	if b.cfg.NegativeTTL != 300*time.Millisecond {
		t.Fatalf("NegativeTTL %v with MetadataTTL %v", b.cfg.NegativeTTL, b.cfg.MetadataTTL)
	}
	b = newTestFS(t, s3fake.New(), nil)
	if b.cfg.NegativeTTL != DefaultNegativeTTL || DefaultNegativeTTL != time.Second {
		t.Fatalf("default NegativeTTL %v", b.cfg.NegativeTTL)
	}
}

func TestValidNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"tab\tand\nnewline\r", true}, {"ünï 日本 🎉", true}, {"\ufffd", true},
		{"", false}, {".", false}, {"..", false}, {string(make([]byte, 256)), false},
		{"nul\x00", false}, {"ctl\x01", false}, {"esc\x1b", false}, {"\ufffe", false}, {"\uffff", false},
		{"bad utf-8 \xff", false},
	} {
		if got := validName(tc.name); got != tc.ok {
			t.Errorf("validName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}
