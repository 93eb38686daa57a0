package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestLargeDirectory lists 10,500 objects in one prefix completely (every
// page followed), and `ls -l` of 10,000 objects costs list requests only.
func TestLargeDirectory(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	objects := map[string][]byte{}
	for i := 0; i < 10500; i++ {
		objects[fmt.Sprintf("many/f%05d", i)] = []byte{byte(i)}
	}
	for i := 0; i < 10000; i++ {
		objects[fmt.Sprintf("tenk/f%05d", i)] = []byte("xy")
	}
	s3test.PutObjects(t, c, objects)
	m := mountBucket(t, srv, bucket)

	t.Run("readdir 10500", func(t *testing.T) {
		entries, err := os.ReadDir(m.Path("many"))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 10500 {
			t.Fatalf("listed %d entries, want 10500", len(entries))
		}
		if entries[0].Name() != "f00000" || entries[10499].Name() != "f10499" {
			t.Fatalf("first/last = %s/%s", entries[0].Name(), entries[10499].Name())
		}
	})

	t.Run("ls -l 10000 requests", func(t *testing.T) {
		// The directory's own lookup (one HEAD, one LIST) is not part of
		// listing it; it is measured in TestLookupCost.
		if _, err := os.Stat(m.Path("tenk")); err != nil {
			t.Fatal(err)
		}
		m.Counter.Reset()
		out := run(t, "ls", "-l", m.Path("tenk"))
		lines := strings.Count(out, "\n")
		if lines != 10001 { // "total N" plus one line per file
			t.Fatalf("ls -l printed %d lines, want 10001", lines)
		}
		if !strings.Contains(out, " 2 ") {
			t.Fatalf("ls -l does not show the objects' size:\n%s", tail(out, 300))
		}
		counts := m.Counter.Snapshot()
		t.Logf("ls -l of 10,000 objects: S3 requests %v", counts)
		if counts["HeadObject"] != 0 || counts["GetObject"] != 0 {
			t.Fatalf("ls -l sent per-entry requests: %v", counts)
		}
		// 10 pages of 1,000.
		if counts["ListObjectsV2"] > 11 {
			t.Fatalf("ls -l sent %d ListObjectsV2, want <= 11", counts["ListObjectsV2"])
		}
	})

	t.Run("lookups do not list a large directory", func(t *testing.T) {
		// Name-by-name lookups make a small directory list itself; one of
		// more than 10,000 entries gives up after 10 pages, once per TTL.
		m2 := mountBucket(t, srv, bucket)
		if _, err := os.Stat(m2.Path("many")); err != nil {
			t.Fatal(err)
		}
		m2.Counter.Reset()
		const lookups = 10
		for i := 0; i < lookups; i++ {
			if _, err := os.Stat(m2.Path(fmt.Sprintf("many/absent-%d", i))); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("stat of an absent name: %v", err)
			}
		}
		counts := m2.Counter.Snapshot()
		t.Logf("%d lookups in a directory of 10,500: %v", lookups, counts)
		// Every lookup asks by name (the directory was not listed), and
		// the one try stops at 10 pages.
		if counts["HeadObject"] != lookups || counts["ListObjectsV2"] > lookups+10 {
			t.Fatalf("%d lookups cost %v; want one HEAD and one LIST each, plus one try of 10 pages", lookups, counts)
		}
	})
}

// TestDirectories: nested and implicit directories, explicit markers, and a
// file and a directory of one name.
func TestDirectories(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	s3test.PutObjects(t, c, map[string][]byte{
		"top.txt":           []byte("top"),
		"a/b/c/deep.txt":    []byte("deep"),
		"a/sibling.txt":     []byte("sib"),
		"marker/":           nil,
		"marker/inside.txt": []byte("in"),
		"emptymarker/":      nil,
	})
	m := mountBucket(t, srv, bucket)

	names := func(dir string) []string {
		entries, err := os.ReadDir(m.Path(dir))
		if err != nil {
			t.Fatalf("readdir %s: %v", dir, err)
		}
		var out []string
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() {
				n += "/"
			}
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
	check := func(dir string, want ...string) {
		t.Helper()
		got := names(dir)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("readdir %q = %v, want %v", dir, got, want)
		}
	}
	check("", "a/", "emptymarker/", "marker/", "top.txt")
	check("a", "b/", "sibling.txt")
	check("a/b/c", "deep.txt")
	check("marker", "inside.txt")
	check("emptymarker")

	if b, err := os.ReadFile(m.Path("a/b/c/deep.txt")); err != nil || string(b) != "deep" {
		t.Errorf("read deep = %q, %v", b, err)
	}
	for _, d := range []string{"a", "a/b", "emptymarker"} {
		st, err := os.Stat(m.Path(d))
		if err != nil || !st.IsDir() {
			t.Errorf("stat %s: %v, dir=%v", d, err, err == nil && st.IsDir())
		}
	}
	if _, err := os.Stat(m.Path("nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat of a missing name: %v", err)
	}
}

// TestNameClash: when a file x and keys under x/ both exist (AWS lists
// both; MinIO stores both but lists only the file, so the listings are
// crafted), the directory is shown and the shadowing is logged.
func TestNameClash(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	s3test.PutObjects(t, c, map[string][]byte{"clash": []byte("file")})
	craft := func(m *mount) {
		m.Faults.Add(s3test.Rule{Op: "ListObjectsV2", Match: prefixIs(""), Fault: s3test.Fault{Body: listingXML(bucket, "",
			[]string{"clash"}, []string{"clash/"})}})
		m.Faults.Add(s3test.Rule{Op: "ListObjectsV2", Match: prefixIs("clash/"), Fault: s3test.Fault{Body: listingXML(bucket, "clash/",
			[]string{"clash/child.txt"}, nil)}})
	}
	m := mountBucket(t, srv, bucket)
	craft(m)
	entries, err := os.ReadDir(m.Dir)
	if err != nil || len(entries) != 1 || !entries[0].IsDir() || entries[0].Name() != "clash" {
		t.Fatalf("readdir = %v, %v; want the directory clash only", entries, err)
	}
	// A fresh lookup (no listing) of the shadowed name also shows the directory.
	m2 := mountBucket(t, srv, bucket)
	craft(m2)
	if st, err := os.Stat(m2.Path("clash")); err != nil || !st.IsDir() {
		t.Fatalf("lookup of clash: %v", err)
	}
	for _, mm := range []*mount{m, m2} {
		if !strings.Contains(mm.Log.String(), "a file and a directory share this name") {
			t.Errorf("shadowing not logged:\n%s", mm.Log.String())
		}
	}
}

func prefixIs(p string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.URL.Query().Get("prefix") == p }
}

// listingXML is a one-page ListObjectsV2 answer with objects of 3 bytes.
func listingXML(bucket, prefix string, keys, prefixes []string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>` + bucket +
		`</Name><Prefix>` + prefix + `</Prefix><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>`)
	for _, k := range keys {
		b.WriteString(`<Contents><Key>` + k + `</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>"x"</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>`)
	}
	for _, p := range prefixes {
		b.WriteString(`<CommonPrefixes><Prefix>` + p + `</Prefix></CommonPrefixes>`)
	}
	b.WriteString(`</ListBucketResult>`)
	return b.String()
}

// TestLookupCost: one name costs at most one HEAD and one LIST, and
// stat-then-open does not ask twice.
func TestLookupCost(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	s3test.PutObjects(t, c, map[string][]byte{"dir/file.txt": []byte("hello")})
	m := mountBucket(t, srv, bucket)
	m.Counter.Reset()
	if _, err := os.Stat(m.Path("dir")); err != nil {
		t.Fatal(err)
	}
	if got := m.Counter.Snapshot(); got["HeadObject"] > 1 || got["ListObjectsV2"] > 1 {
		t.Fatalf("lookup of dir: %v", got)
	}
	m.Counter.Reset()
	if _, err := os.Stat(m.Path("dir/file.txt")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(m.Path("dir/file.txt"))
	if err != nil || string(b) != "hello" {
		t.Fatalf("read = %q, %v", b, err)
	}
	got := m.Counter.Snapshot()
	t.Logf("stat+open+read: %v", got)
	if got["HeadObject"] != 1 || got["ListObjectsV2"] != 1 || got["GetObject"] != 1 {
		t.Fatalf("stat then read cost %v, want 1 HEAD, 1 LIST, 1 GET", got)
	}
}

// TestAttributes: size, mtime from x-amz-meta-mtime, mode/uid/gid from
// metadata or flags.
func TestAttributes(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	ctx := context.Background()
	if _, err := c.Put(ctx, "meta.txt", bytes.NewReader([]byte("12345")), 5, s3client.PutOptions{Metadata: map[string]string{
		"mtime": "1600000000.5", "mode": "33216", "uid": "1234", "gid": "4321", // 33216 = 0100700
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "plain.txt", bytes.NewReader([]byte("abc")), 3, s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	m := mountBucket(t, srv, bucket, func(cfg *bfs.Config) {
		cfg.UID, cfg.GID, cfg.FileMode = 42, 43, 0o640
	})
	st := statT(t, m.Path("meta.txt"))
	if st.Size != 5 || st.Mtim.Sec != 1600000000 || st.Mtim.Nsec != 500000000 || st.Mode != 0o100700 || st.Uid != 1234 || st.Gid != 4321 {
		t.Errorf("meta.txt: size %d mtime %d.%d mode %o uid %d gid %d", st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Mode, st.Uid, st.Gid)
	}
	st = statT(t, m.Path("plain.txt"))
	if st.Size != 3 || st.Mode != 0o100640 || st.Uid != 42 || st.Gid != 43 || st.Mtim.Sec < 1700000000 {
		t.Errorf("plain.txt: size %d mode %o uid %d gid %d mtime %d", st.Size, st.Mode, st.Uid, st.Gid, st.Mtim.Sec)
	}
}

func statT(t testing.TB, path string) syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st
}

// TestInvalidKeysHidden: keys that cannot be file names (as AWS stores them;
// MinIO refuses them, so the listing is crafted) are left out and logged.
func TestInvalidKeysHidden(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)
	m := mountBucket(t, srv, bucket)
	long := strings.Repeat("x", 256)
	m.Faults.Add(s3test.Rule{Op: "ListObjectsV2", Match: prefixIs("d/"), Fault: s3test.Fault{Body: listingXML(bucket, "d/",
		[]string{"d/good.txt", "d/.", "d/..", "d/" + long}, []string{"d//", "d/sub/"})}})
	// The lookup of d itself: a LIST under d/ (crafted, non-empty) says it is a directory.
	for i := 0; i < 2; i++ { // twice: the second listing must not log again
		entries, err := os.ReadDir(m.Path("d"))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		sort.Strings(got)
		if strings.Join(got, ",") != "good.txt,sub" {
			t.Fatalf("listing = %v, want [good.txt sub]", got)
		}
	}
	log := m.Log.String()
	for _, k := range []string{`key=d/.`, `key=d/..`, `key=d//`, "key=d/" + long} {
		if n := strings.Count(log, k+" "); n != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", k, n, tail(log, 2000))
		}
	}
}

// TestReadLargeObject: a 200 MiB object read by dd and by cp matches by
// checksum, with read-ahead (far fewer GETs than kernel reads), and 1,000
// random reads return exactly the object's bytes.
func TestReadLargeObject(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	data := randomBytes(1, 200<<20)
	if _, err := c.Put(context.Background(), "big.bin", bytes.NewReader(data), int64(len(data)), s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	want := sha(data)
	m := mountBucket(t, srv, bucket)

	t.Run("dd", func(t *testing.T) {
		m.Counter.Reset()
		out := filepath.Join(t.TempDir(), "dd.out")
		run(t, "dd", "if="+m.Path("big.bin"), "of="+out, "bs=1M")
		if got := shaFile(t, out); got != want {
			t.Fatalf("dd copy differs: %s != %s", got, want)
		}
		gets := m.Counter.Snapshot()["GetObject"]
		t.Logf("dd of 200 MiB: %d GETs", gets)
		if gets > 40 {
			t.Fatalf("%d GETs for a sequential 200 MiB read: read-ahead is not working", gets)
		}
	})
	t.Run("cp", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "cp.out")
		run(t, "cp", m.Path("big.bin"), out)
		if got := shaFile(t, out); got != want {
			t.Fatalf("cp copy differs")
		}
	})
	t.Run("mmap", func(t *testing.T) {
		// Read handles use direct I/O; mmap must still work (git maps
		// its pack files, binaries are mapped to run).
		for _, flags := range []int{syscall.MAP_PRIVATE, syscall.MAP_SHARED} {
			if got := mmapSHA(t, m.Path("big.bin"), flags); got != want {
				t.Fatalf("mmap (flags %#x): got %q, want sha %s", flags, got, want)
			}
		}
	})
	t.Run("random", func(t *testing.T) {
		f, err := os.Open(m.Path("big.bin"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r := rand.New(rand.NewPCG(7, 7))
		buf := make([]byte, 3<<20)
		for i := 0; i < 1000; i++ {
			off := r.Int64N(int64(len(data)))
			n := 1 + r.IntN(len(buf)-1)
			if i%10 == 0 {
				off = int64(len(data)) - int64(r.IntN(5000)) // near and at the end
			}
			got, err := f.ReadAt(buf[:n], off)
			end := off + int64(n)
			if end > int64(len(data)) {
				end = int64(len(data))
			}
			wantN := int(end - off)
			if got != wantN || (err != nil && got != n && err.Error() != "EOF") {
				t.Fatalf("read %d at %d: got %d bytes, err %v; want %d", n, off, got, err, wantN)
			}
			if !bytes.Equal(buf[:got], data[off:end]) {
				t.Fatalf("read %d at %d: bytes differ", n, off)
			}
		}
	})
}

// TestRandomReadCost: a random read costs one GET, whether it is small or
// a 1 MiB read the kernel cuts into several FUSE reads; it does not start
// sequential read-ahead. Through the page cache (the default) the kernel
// adds read-ahead of its own after a large read: a random 1 MiB read
// costs at most two GETs (README "Reading").
func TestRandomReadCost(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	data := randomBytes(3, 256<<20)
	if _, err := c.Put(context.Background(), "random.bin", bytes.NewReader(data), int64(len(data)), s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, direct := range []bool{false, true} {
		t.Run(fmt.Sprintf("direct I/O %v", direct), func(t *testing.T) {
			m := mountBucket(t, srv, bucket, func(cfg *bfs.Config) { cfg.DirectIO = direct })
			f, err := os.Open(m.Path("random.bin"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := rand.New(rand.NewPCG(11, 11))
			for _, size := range []int{4 << 10, 1 << 20} {
				const reads = 100
				buf := make([]byte, size)
				m.Counter.Reset()
				for i := 0; i < reads; i++ {
					off := r.Int64N(int64(len(data) - size))
					if _, err := f.ReadAt(buf, off); err != nil {
						t.Fatalf("read %d at %d: %v", size, off, err)
					}
					if !bytes.Equal(buf, data[off:off+int64(size)]) {
						t.Fatalf("read %d at %d: bytes differ", size, off)
					}
				}
				gets := m.Counter.Snapshot()["GetObject"]
				t.Logf("%d random reads of %d bytes: %d GETs", reads, size, gets)
				// The first read of a size may cost a few while the handle
				// learns how long the application's reads are.
				want := reads + 4
				if !direct && size > 4<<10 {
					want = 2*reads + 4
				}
				if gets > int64(want) {
					t.Errorf("%d random reads of %d bytes cost %d GETs; want at most %d", reads, size, gets, want)
				}
			}
		})
	}
}

// TestReadOnly: a --read-only mount refuses every change with EROFS.
func TestReadOnly(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	s3test.PutObjects(t, c, map[string][]byte{"f.txt": []byte("x"), "d/g.txt": []byte("y")})
	m := mountBucket(t, srv, bucket, func(cfg *bfs.Config) { cfg.ReadOnly = true })
	expectErrno := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", what, err)
		}
	}
	expectErrno("create", os.WriteFile(m.Path("new.txt"), []byte("x"), 0o644))
	_, err := os.OpenFile(m.Path("f.txt"), os.O_WRONLY|os.O_TRUNC, 0)
	expectErrno("open for write", err)
	expectErrno("mkdir", os.Mkdir(m.Path("nd"), 0o755))
	expectErrno("unlink", os.Remove(m.Path("f.txt")))
	expectErrno("rmdir", os.Remove(m.Path("d")))
	expectErrno("rename", os.Rename(m.Path("f.txt"), m.Path("g.txt")))
	expectErrno("chmod", os.Chmod(m.Path("f.txt"), 0o600))
	expectErrno("symlink", os.Symlink("f.txt", m.Path("l")))
	if b, err := os.ReadFile(m.Path("f.txt")); err != nil || string(b) != "x" {
		t.Errorf("read on a read-only mount: %q, %v", b, err)
	}
}
