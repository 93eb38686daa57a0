package fs

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3fake"
)

// Tests of directory listings without a kernel: entries handed out as
// pages arrive, names clashing across pages, keys that cannot be names, and
// listings that never end (SEMANTICS.md, "Reading").

// testDir returns the directory node of prefix in b.
func testDir(b *bucketFS, prefix string) *dirNode {
	return &dirNode{b: b, prefix: prefix, attr: entryAttr{isDir: true, uid: -1, gid: -1}}
}

// opendir opens d as the kernel would.
func opendir(t *testing.T, d *dirNode) (*dirHandle, syscall.Errno) {
	t.Helper()
	fh, _, errno := d.OpendirHandle(context.Background(), 0)
	if errno != 0 {
		return nil, errno
	}
	h := fh.(*dirHandle)
	t.Cleanup(func() { h.Releasedir(context.Background(), 0) })
	return h, 0
}

// readdir reads every entry of h: name -> is a directory, in order, and
// the errno that ended it.
func readdir(h *dirHandle) ([]string, map[string]bool, syscall.Errno) {
	var names []string
	dirs := map[string]bool{}
	for {
		de, errno := h.Readdirent(context.Background())
		if errno != 0 || de == nil {
			return names, dirs, errno
		}
		names = append(names, de.Name)
		dirs[de.Name] = de.Mode == syscall.S_IFDIR
	}
}

// TestReaddirStreams: the first page's entries are handed out while the
// second page is still on its way, and the whole listing costs one LIST per
// 1,000 entries, each entry once.
func TestReaddirStreams(t *testing.T) {
	fake := s3fake.New()
	const n = 2500
	for i := 0; i < n; i++ {
		fake.SetObject(fmt.Sprintf("big/f%05d", i), []byte{1}, nil)
	}
	gate := make(chan struct{})
	var lists atomic.Int32
	fake.SetHook(func(op, key string) s3fake.Fault {
		if op == s3fake.OpListObjectsV2 && lists.Add(1) == 2 {
			return s3fake.Fault{Gate: gate}
		}
		return s3fake.Fault{}
	})
	b := newTestFS(t, fake, nil)
	h, errno := opendir(t, testDir(b, "big/"))
	if errno != 0 {
		t.Fatal(errno)
	}
	// The first page's entries, but its last: a directory "f00999/" could
	// still follow on the next page.
	got := make(chan string, n)
	errs := make(chan syscall.Errno, 1)
	go func() {
		for {
			de, errno := h.Readdirent(context.Background())
			if errno != 0 || de == nil {
				errs <- errno
				close(got)
				return
			}
			got <- de.Name
		}
	}()
	deadline := time.After(10 * time.Second)
	for i := 0; i < 999; i++ {
		select {
		case name := <-got:
			if want := fmt.Sprintf("f%05d", i); name != want {
				t.Fatalf("entry %d = %s, want %s", i, name, want)
			}
		case <-deadline:
			t.Fatalf("only %d entries handed out while the second page is held back", i)
		}
	}
	select {
	case name := <-got:
		t.Fatalf("entry %s handed out before the second page arrived", name)
	case <-time.After(100 * time.Millisecond):
	}
	close(gate)
	count := 999
	for range got {
		count++
	}
	if errno := <-errs; errno != 0 || count != n {
		t.Fatalf("%d entries, errno %v; want %d", count, errno, n)
	}
	if lists := fake.Count(s3fake.OpListObjectsV2); lists != 3 {
		t.Fatalf("%d LISTs for %d entries, want 3", lists, n)
	}
	// A rewind serves the entries again without asking S3.
	if errno := h.Seekdir(context.Background(), 0); errno != 0 {
		t.Fatal(errno)
	}
	names, _, errno := readdir(h)
	if errno != 0 || len(names) != n || fake.Count(s3fake.OpListObjectsV2) != 3 {
		t.Fatalf("after rewinddir: %d entries, errno %v, %d LISTs", len(names), errno, fake.Count(s3fake.OpListObjectsV2))
	}
	// The complete listing answers lookups.
	if l := h.d.freshListing(); l == nil || len(l.entries) != n {
		t.Fatal("the complete listing was not kept for lookups")
	}
}

// TestReaddirNameClashAcrossPages: a file "x" and keys under "x/" with
// more than a page between them ("x!0000"... sort in between): the
// directory is shown, once, and the file never.
func TestReaddirNameClashAcrossPages(t *testing.T) {
	fake := s3fake.New()
	fake.SetObject("d/x", []byte("file"), nil)
	for i := 0; i < 1200; i++ {
		fake.SetObject(fmt.Sprintf("d/x!%04d", i), []byte{1}, nil)
	}
	fake.SetObject("d/x/inner", []byte("in"), nil)
	fake.SetObject("d/y", []byte("y"), nil)
	log := &bytes.Buffer{}
	b := newTestFS(t, fake, func(c *Config) { c.Log = logrus.New(); c.Log.SetOutput(&lockedBuffer{b: log}) })
	h, errno := opendir(t, testDir(b, "d/"))
	if errno != 0 {
		t.Fatal(errno)
	}
	names, dirs, errno := readdir(h)
	if errno != 0 {
		t.Fatal(errno)
	}
	xs := 0
	for _, name := range names {
		if name == "x" {
			xs++
		}
	}
	if xs != 1 || !dirs["x"] || len(names) != 1202 {
		t.Fatalf("x listed %d times (directory: %v), %d entries; want once, as a directory, of 1202", xs, dirs["x"], len(names))
	}
	if !strings.Contains(log.String(), "a file and a directory share this name") {
		t.Errorf("the clash was not logged:\n%s", log.String())
	}
}

// TestReaddirHidesKeysXMLCannotCarry: a key holding U+0001 (which a listing
// only carries url-encoded) is left out and logged once, like the other
// keys that cannot be names; the rest of the listing is shown.
func TestReaddirHidesKeysXMLCannotCarry(t *testing.T) {
	fake := s3fake.New()
	for _, k := range []string{"d/good", "d/bad\x01name", "d/sub\x01dir/inner", "d/esc\x1b"} {
		fake.SetObject(k, []byte{1}, nil)
	}
	log := &bytes.Buffer{}
	b := newTestFS(t, fake, func(c *Config) { c.Log = logrus.New(); c.Log.SetOutput(&lockedBuffer{b: log}) })
	for i := 0; i < 2; i++ {
		h, errno := opendir(t, testDir(b, "d/"))
		if errno != 0 {
			t.Fatal(errno)
		}
		names, _, errno := readdir(h)
		if errno != 0 || strings.Join(names, ",") != "good" {
			t.Fatalf("listing %q, errno %v; want [good]", names, errno)
		}
	}
	if n := strings.Count(log.String(), "key cannot be a file name"); n != 3 {
		t.Fatalf("%d warnings, want 3 (one per key, once):\n%s", n, log.String())
	}
	// Such a name is not found by a lookup either.
	if _, errno := testDir(b, "d/").resolve(context.Background(), "bad\x01name"); errno != syscall.ENOENT {
		t.Fatalf("lookup of a hidden name: %v", errno)
	}
}

// endlessLister is an s3client.API whose listings never end: every page
// holds one key and a continuation token, new each time unless repeat.
type endlessLister struct {
	s3client.API
	repeat bool
	calls  atomic.Int64
}

func (c *endlessLister) List(ctx context.Context, prefix, delimiter, token string, maxKeys int32) (*s3client.ListPage, error) {
	n := c.calls.Add(1)
	next := fmt.Sprintf("token-%d", n)
	if c.repeat {
		next = "again"
	}
	return &s3client.ListPage{
		Objects:   []s3client.ObjectInfo{{Key: fmt.Sprintf("%sk%08d", prefix, n), Size: 1, ETag: `"e"`}},
		NextToken: next,
	}, nil
}

// TestReaddirEndlessListing: a listing whose continuation tokens never end
// is cut after maxListPages pages with EIO and a log line; one whose token
// comes back is cut at once. The entries before the cut were handed out.
func TestReaddirEndlessListing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		repeat bool
		pages  int64
	}{
		{"new tokens for ever", false, maxListPages},
		{"a token repeats", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := &endlessLister{API: s3fake.New(), repeat: tc.repeat}
			log := &bytes.Buffer{}
			b := newTestFS(t, client, func(c *Config) { c.Log = logrus.New(); c.Log.SetOutput(&lockedBuffer{b: log}) })
			d := testDir(b, "loop/")
			h, errno := opendir(t, d)
			if errno != 0 {
				t.Fatal(errno)
			}
			names, _, errno := readdir(h)
			if errno != syscall.EIO {
				t.Fatalf("endless listing: %d entries, errno %v; want EIO", len(names), errno)
			}
			// The fetch ahead never starts past the bound.
			if calls := client.calls.Load(); calls != tc.pages {
				t.Fatalf("%d LISTs, want %d", calls, tc.pages)
			}
			if int64(len(names)) < tc.pages-1 {
				t.Fatalf("%d entries handed out before the cut, want at least %d", len(names), tc.pages-1)
			}
			if !strings.Contains(log.String(), "listing cut") {
				t.Fatalf("the cut was not logged:\n%s", log.String())
			}
			if _, errno := h.Readdirent(context.Background()); errno != syscall.EIO {
				t.Fatalf("a later readdir: %v, want EIO again", errno)
			}
			// A listing for lookups is cut the same way.
			if _, err := d.list(context.Background()); err == nil {
				t.Fatal("an endless listing for lookups succeeded")
			}
		})
	}
}

// lockedBuffer is a log destination shared by goroutines.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var _ = sort.Strings

// TestReaddirTypes: readdir's d_type is what the mount knows of each
// object, never a directory for a file the listing shows (a stale cached
// directory of the same name), and DT_UNKNOWN (0) for an empty object it
// has not looked at: it may be a FIFO.
func TestReaddirTypes(t *testing.T) {
	fake := s3fake.New()
	fake.SetObject("d/fifo", nil, nil)
	fake.SetObject("d/empty", nil, nil)
	fake.SetObject("d/file", []byte("file"), nil)
	fake.SetObject("d/link", []byte("target"), nil)
	fake.SetObject("d/was-dir", []byte("now a file"), nil)
	fake.SetObject("d/legacy", nil, nil)
	fake.SetObject("d/sub/inner", []byte("in"), nil)
	b := newTestFS(t, fake, nil)
	d := testDir(b, "d/")
	modes := func() map[string]uint32 {
		t.Helper()
		h, errno := opendir(t, d)
		if errno != 0 {
			t.Fatal(errno)
		}
		got := map[string]uint32{}
		for {
			de, errno := h.Readdirent(context.Background())
			if errno != 0 {
				t.Fatal(errno)
			}
			if de == nil {
				return got
			}
			got[de.Name] = de.Mode
		}
	}
	want := map[string]uint32{"fifo": 0, "empty": 0, "file": syscall.S_IFREG, "link": syscall.S_IFREG, "was-dir": syscall.S_IFREG, "legacy": 0, "sub": syscall.S_IFDIR}
	if got := modes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("d_type before any lookup: %v, want %v", got, want)
	}
	// What HEADs (or this mount's writes) taught the mount; the stale
	// directory is of another object than the listed file.
	listed := d.freshListing()
	if listed == nil {
		t.Fatal("no listing kept for d/")
	}
	known := func(name string, a entryAttr) {
		l := listed.entries[name]
		a.fromHead, a.etag, a.size, a.modified = true, l.etag, l.size, l.modified
		b.lookups.Set(d.key(name), lookupResult{attr: a, found: true})
	}
	known("fifo", entryAttr{mode: syscall.S_IFIFO | 0o640})
	known("link", entryAttr{mode: syscall.S_IFLNK | 0o777})
	known("legacy", entryAttr{isDir: true})
	b.lookups.Set(d.key("was-dir"), lookupResult{attr: entryAttr{isDir: true, fromHead: true, etag: `"other"`}, found: true})
	want = map[string]uint32{"fifo": syscall.S_IFIFO, "empty": 0, "file": syscall.S_IFREG, "link": syscall.S_IFLNK, "was-dir": syscall.S_IFREG, "legacy": syscall.S_IFDIR, "sub": syscall.S_IFDIR}
	if got := modes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("d_type once known: %v, want %v", got, want)
	}
}
