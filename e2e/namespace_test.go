package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// makeTree builds a local tree: nested directories, empty files, symlinks,
// files from 1 KiB to 40 MiB, with various modes and old mtimes.
func makeTree(t testing.TB, root string, big bool) {
	t.Helper()
	sizes := []int{0, 1 << 10, 5 << 10, 100 << 10, 1 << 20}
	if big {
		sizes = append(sizes, 9<<20, 40<<20)
	}
	dirs := []string{"", "a", "a/b", "a/b/c", "empty-dir", "d"}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2020, 5, 17, 10, 20, 30, 0, time.UTC)
	for i, size := range sizes {
		for j, d := range []string{"", "a/b", "d"} {
			p := filepath.Join(root, d, fmt.Sprintf("f%d.bin", i))
			if err := os.WriteFile(p, randomBytes(uint64(i*10+j), size), 0o644); err != nil {
				t.Fatal(err)
			}
			mode := []os.FileMode{0o644, 0o600, 0o755}[j%3]
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
			mt := old.Add(time.Duration(i*j) * time.Hour)
			if err := os.Chtimes(p, mt, mt); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink("f1.bin", filepath.Join(root, "link-to-f1")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../f0.bin", filepath.Join(root, "a/b/uplink")); err != nil {
		t.Fatal(err)
	}
}

// treeState lists a tree's entries with type, size, permission bits and
// mtime (seconds), for comparing two trees.
func treeState(t testing.TB, root string) []string {
	t.Helper()
	return walkTree(t, root, func(p string, info os.FileInfo) string {
		return fmt.Sprintf(" size=%d mtime=%d", info.Size(), info.ModTime().Unix())
	})
}

// walkTree describes every name under root, sorted: its type and mode, a
// symlink's target, and for a regular file what file(p, info) says of it.
func walkTree(t testing.TB, root string, file func(p string, info os.FileInfo) string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		line := fmt.Sprintf("%s %s %o", rel, info.Mode().Type(), info.Mode().Perm())
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case info.IsDir():
		default:
			line += file(p, info)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	sort.Strings(out)
	return out
}

func compareTrees(t testing.TB, want, got []string) {
	t.Helper()
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Fatalf("trees differ:\nwant:\n%s\ngot:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

// TestCopyTools: cp -a, rsync -a (twice: the second copies nothing), tar x
// then tar c, all through the mount, with modes and mtimes kept, and every
// attribute surviving an unmount and remount.
func TestCopyTools(t *testing.T) {
	t.Run("default ttl", func(t *testing.T) { testCopyTools(t, 0) })
	// A TTL shorter than the tools' runs: listings expire while they work,
	// so attributes learned by HEAD and our own writes must survive a
	// listing's poorer view of the same objects.
	t.Run("ttl 300ms", func(t *testing.T) { testCopyTools(t, 300*time.Millisecond) })
}

func testCopyTools(t *testing.T, ttl time.Duration) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)
	withTTL := func(c *bfs.Config) {
		if ttl > 0 {
			c.MetadataTTL = ttl
		}
	}
	m := mountBucket(t, srv, bucket, withTTL)
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, true)
	want := treeState(t, src)

	t.Run("cp -a", func(t *testing.T) {
		run(t, "cp", "-a", src, m.Path("cp"))
		run(t, "diff", "-r", src, m.Path("cp"))
		compareTrees(t, want, treeState(t, m.Path("cp")))
	})
	t.Run("rsync -a twice", func(t *testing.T) {
		m.Counter.Reset()
		run(t, "rsync", "-a", src+"/", m.Path("rs")+"/")
		first := m.Counter.Snapshot()
		t.Logf("rsync -a first run: %v", first)
		run(t, "diff", "-r", src, m.Path("rs"))
		compareTrees(t, want, treeState(t, m.Path("rs")))
		// The first run's attribute changes that no rename carried (those
		// of directories and symlinks) are written after attrDelay: they
		// are the first run's cost, not the second's.
		time.Sleep(3 * time.Second) // past fs.attrDelay (2 s)
		m.Counter.Reset()
		out := run(t, "rsync", "-a", "--itemize-changes", src+"/", m.Path("rs")+"/")
		second := m.Counter.Snapshot()
		t.Logf("rsync -a second run: %v", second)
		if strings.TrimSpace(out) != "" {
			t.Fatalf("second rsync copied something:\n%s", out)
		}
		if second["PutObject"]+second["GetObject"]+second["UploadPart"] != 0 {
			t.Fatalf("second rsync moved data: %v", second)
		}
	})
	t.Run("tar", func(t *testing.T) {
		archive := filepath.Join(t.TempDir(), "in.tar")
		run(t, "tar", "-C", src, "-cf", archive, ".")
		if err := os.Mkdir(m.Path("tar"), 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "tar", "-C", m.Path("tar"), "-xf", archive)
		compareTrees(t, want, treeState(t, m.Path("tar")))
		back := filepath.Join(t.TempDir(), "back.tar")
		run(t, "tar", "-C", m.Path("tar"), "-cf", back, ".")
		out := filepath.Join(t.TempDir(), "out")
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "tar", "-C", out, "-xf", back)
		compareTrees(t, want, treeState(t, out))
	})
	t.Run("survives remount", func(t *testing.T) {
		time.Sleep(3 * time.Second) // past attrDelay: pending changes are applied
		m.Unmount(t)
		m2 := mountBucket(t, srv, bucket, withTTL)
		// stat each path by name, as a fresh mount answers a lookup: HEAD.
		for _, line := range want {
			rel := strings.Fields(line)[0]
			var st syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(m2.Path("cp"), rel), &st); err != nil {
				t.Fatalf("lstat %s after remount: %v", rel, err)
			}
			var ref syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(src, rel), &ref); err != nil {
				t.Fatal(err)
			}
			if st.Mode != ref.Mode || (st.Mode&syscall.S_IFMT == syscall.S_IFREG && (st.Size != ref.Size || st.Mtim.Sec != ref.Mtim.Sec)) {
				t.Errorf("%s after remount: mode %o size %d mtime %d; want mode %o size %d mtime %d",
					rel, st.Mode, st.Size, st.Mtim.Sec, ref.Mode, ref.Size, ref.Mtim.Sec)
			}
		}
		m2.Unmount(t)
	})
	t.Run("exact attributes after remount", func(t *testing.T) {
		// rsync --delete lists the destination first. With --exact-attrs
		// the listed objects' stored mtimes and modes are read, so the
		// rerun on a fresh mount transfers no file. (Directories may be
		// itemized: rsync does not always set the mtime of the directories
		// it creates, and then corrects them here, a marker PUT each. The
		// symlinks' targets are read: a GET each.)
		m3 := mountBucket(t, srv, bucket, withTTL, func(c *bfs.Config) { c.ExactAttrs = true })
		m3.Counter.Reset()
		out := run(t, "rsync", "-a", "--delete", "--itemize-changes", src+"/", m3.Path("rs")+"/")
		got := m3.Counter.Snapshot()
		t.Logf("rsync -a --delete on a fresh mount with --exact-attrs: %v\n%s", got, out)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line != "" && !strings.HasPrefix(line, ".d") {
				t.Errorf("rsync on a fresh mount changed a file: %s", line)
			}
		}
		if got["UploadPart"]+got["CopyObject"]+got["DeleteObject"] != 0 || got["PutObject"] > 7 || got["GetObject"] > 2 {
			t.Fatalf("rsync on a fresh mount moved data: %v", got)
		}
	})
}

// TestRenames: mv of files and of a directory of 500 files, rename over an
// existing file, RENAME_NOREPLACE and RENAME_EXCHANGE, multipart copy.
func TestRenames(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	objs := map[string][]byte{}
	for i := 0; i < 500; i++ {
		objs[fmt.Sprintf("dir500/sub%d/f%03d", i%5, i)] = []byte(fmt.Sprint(i))
	}
	s3test.PutObjects(t, c, objs)
	// Multipart copy above 6 MiB, so a 12 MiB file takes the >5 GiB path.
	m := mountBucket(t, srv, bucket, func(cfg *bfs.Config) { cfg.MultipartCopyThreshold = 6 << 20 })

	t.Run("file", func(t *testing.T) {
		data := randomBytes(11, 12<<20)
		if err := os.WriteFile(m.Path("a.bin"), data, 0o640); err != nil {
			t.Fatal(err)
		}
		m.Counter.Reset()
		run(t, "mv", m.Path("a.bin"), m.Path("b.bin"))
		t.Logf("mv of a 12 MiB file with multipart copy: %v", m.Counter.Snapshot())
		if m.Counter.Snapshot()["UploadPartCopy"] == 0 {
			t.Error("no multipart copy above the threshold")
		}
		if _, err := os.Stat(m.Path("a.bin")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("source still there: %v", err)
		}
		if sha(s3test.GetObject(t, c, "b.bin")) != sha(data) {
			t.Fatal("renamed object differs")
		}
		if st := statT(t, m.Path("b.bin")); st.Mode&0o777 != 0o640 {
			t.Fatalf("mode after rename: %o", st.Mode)
		}
	})
	t.Run("over existing", func(t *testing.T) {
		if err := os.WriteFile(m.Path("x"), []byte("new"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(m.Path("y"), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(m.Path("x"), m.Path("y")); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(m.Path("y")); err != nil || string(b) != "new" {
			t.Fatalf("y = %q, %v", b, err)
		}
	})
	t.Run("noreplace and exchange", func(t *testing.T) {
		for _, n := range []string{"p", "q"} {
			if err := os.WriteFile(m.Path(n), []byte(n), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		err := renameat2(m.Path("p"), m.Path("q"), renameNoReplace)
		if !errors.Is(err, syscall.EEXIST) {
			t.Fatalf("RENAME_NOREPLACE over an existing file: %v", err)
		}
		if err := renameat2(m.Path("p"), m.Path("q"), renameExchange); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("RENAME_EXCHANGE: %v, want EINVAL", err)
		}
		if err := renameat2(m.Path("p"), m.Path("r"), renameNoReplace); err != nil {
			t.Fatalf("RENAME_NOREPLACE to a new name: %v", err)
		}
	})
	t.Run("directory of 500", func(t *testing.T) {
		m.Counter.Reset()
		run(t, "mv", m.Path("dir500"), m.Path("moved"))
		t.Logf("mv of a directory of 500 objects: %v", m.Counter.Snapshot())
		n := 0
		err := filepath.Walk(m.Path("moved"), func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				n++
			}
			return err
		})
		if err != nil || n != 500 {
			t.Fatalf("moved tree has %d files, %v", n, err)
		}
		if _, err := os.Stat(m.Path("dir500")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("old directory still there: %v", err)
		}
		if b, err := os.ReadFile(m.Path("moved/sub3/f003")); err != nil || string(b) != "3" {
			t.Fatalf("moved/sub3/f003 = %q, %v", b, err)
		}
	})
	t.Run("directory over the cap is EXDEV", func(t *testing.T) {
		m2 := mountBucket(t, srv, bucket, func(cfg *bfs.Config) { cfg.MaxRenameObjects = 10 })
		if err := os.Rename(m2.Path("moved"), m2.Path("moved2")); !errors.Is(err, syscall.EXDEV) {
			t.Fatalf("rename of 500 objects with a cap of 10: %v, want EXDEV", err)
		}
	})
	t.Run("while writing", func(t *testing.T) {
		f, err := os.Create(m.Path("w1"))
		if err != nil {
			t.Fatal(err)
		}
		data := randomBytes(12, 11<<20)
		if _, err := f.Write(data[:7<<20]); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(m.Path("w1"), m.Path("w2")); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data[7<<20:]); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if sha(s3test.GetObject(t, c, "w2")) != sha(data) {
			t.Fatal("w2 differs")
		}
		if _, err := os.Stat(m.Path("w1")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("w1 still there: %v", err)
		}
		uploads, _ := c.ListMultipartUploads(t.Context(), "")
		if len(uploads) != 0 {
			t.Fatalf("uploads left: %v", uploads)
		}
	})
}

const (
	renameNoReplace = 1
	renameExchange  = 2
)

func renameat2(from, to string, flags uint) error {
	return renameat2Syscall(from, to, flags)
}

// TestExclusiveCreateRace: two mounts create one name with O_EXCL at once;
// exactly one wins, and the object is the winner's.
func TestExclusiveCreateRace(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	m1 := mountBucket(t, srv, bucket)
	m2 := mountBucket(t, srv, bucket)
	for round := 0; round < 5; round++ {
		name := fmt.Sprintf("lock%d", round)
		var wg sync.WaitGroup
		results := make([]error, 2)
		for i, m := range []*mount{m1, m2} {
			wg.Add(1)
			go func(i int, m *mount) {
				defer wg.Done()
				f, err := os.OpenFile(m.Path(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					results[i] = err
					return
				}
				_, err = f.Write([]byte(fmt.Sprintf("owner %d", i)))
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				results[i] = err
			}(i, m)
		}
		wg.Wait()
		wins := 0
		winner := -1
		for i, err := range results {
			if err == nil {
				wins++
				winner = i
			} else if !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.EIO) {
				// EEXIST at open when the winner's object was already
				// there; EIO at close when the conditional commit lost.
				t.Errorf("round %d: loser's error %v, want EEXIST or EIO", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d winners (%v)", round, wins, results)
		}
		if got := string(s3test.GetObject(t, c, name)); got != fmt.Sprintf("owner %d", winner) {
			t.Fatalf("round %d: object %q, winner %d", round, got, winner)
		}
	}
	// mkdir racing on two mounts: exactly one succeeds.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, m := range []*mount{m1, m2} {
		wg.Add(1)
		go func(i int, m *mount) { defer wg.Done(); errs[i] = os.Mkdir(m.Path("borg-lock"), 0o755) }(i, m)
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("mkdir race: %v", errs)
	}
}

// TestSmallOps: mkdir -p, rm -r, rmdir of a non-empty directory, unlink,
// truncate, chmod on a closed file, symlinks, hard links, df.
func TestSmallOps(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	m := mountBucket(t, srv, bucket)
	run(t, "mkdir", "-p", m.Path("x/y/z"))
	if err := os.Mkdir(m.Path("x"), 0o755); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("mkdir of an existing directory: %v", err)
	}
	if err := os.WriteFile(m.Path("x/y/z/f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m.Path("x/y/z")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("rmdir of a non-empty directory: %v", err)
	}
	if err := os.Truncate(m.Path("x/y/z/f"), 0); err != nil {
		t.Fatal(err)
	}
	if b := s3test.GetObject(t, c, "x/y/z/f"); len(b) != 0 {
		t.Fatalf("after truncate: %d bytes", len(b))
	}
	if err := os.Truncate(m.Path("x/y/z/f"), 10); err != nil {
		t.Fatalf("truncate to 10: %v", err)
	}
	if b := s3test.GetObject(t, c, "x/y/z/f"); !bytes.Equal(b, make([]byte, 10)) {
		t.Fatalf("after truncate to 10: %q", b)
	}
	if err := os.Chmod(m.Path("x/y/z/f"), 0o600); err != nil {
		t.Fatalf("chmod: %v", err)
	}
	if st := statT(t, m.Path("x/y/z/f")); st.Mode&0o777 != 0o600 {
		t.Fatalf("mode right after chmod: %o", st.Mode)
	}
	if err := os.Symlink("z/f", m.Path("x/y/link")); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(m.Path("x/y/link")); err != nil || target != "z/f" {
		t.Fatalf("readlink = %q, %v", target, err)
	}
	if err := os.Link(m.Path("x/y/z/f"), m.Path("x/hard")); !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EPERM) {
		t.Fatalf("link: %v, want ENOTSUP", err)
	}
	out := run(t, "df", m.Dir)
	if !strings.Contains(out, "bucketfs") {
		t.Fatalf("df: %s", out)
	}
	run(t, "rm", "-r", m.Path("x"))
	if _, err := os.Stat(m.Path("x")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after rm -r: %v", err)
	}
	if page, err := c.List(t.Context(), "x/", "", "", 10); err != nil || len(page.Objects) != 0 {
		t.Fatalf("objects left after rm -r: %+v, %v", page, err)
	}
	// fsync of a directory succeeds (restic and borg call it).
	d, err := os.Open(m.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync of a directory: %v", err)
	}
}

// TestResticSequence: restic saves a file as temp file, write, fsync,
// close, rename into place, fsync of the directory, chmod to read-only; the
// object must hold the data and the mode, also after a remount.
func TestResticSequence(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	m := mountBucket(t, srv, bucket)
	if err := os.MkdirAll(m.Path("repo/data/ab"), 0o700); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(42, 9<<20+123) // more than one 8 MiB part: a multipart upload
	tmp, final := m.Path("repo/data/ab/.tmp-1234"), m.Path("repo/data/ab/ab12cd")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		t.Fatalf("rename: %v", err)
	}
	d, err := os.Open(m.Path("repo/data/ab"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync of the directory: %v", err)
	}
	d.Close()
	if err := os.Chmod(final, 0o444); err != nil {
		t.Fatalf("chmod: %v", err)
	}
	if got := s3test.GetObject(t, c, "repo/data/ab/ab12cd"); sha(got) != sha(data) {
		t.Fatal("the object differs from what was written")
	}
	m.Unmount(t) // writes the pending chmod
	m2 := mountBucket(t, srv, bucket)
	st, err := os.Stat(m2.Path("repo/data/ab/ab12cd"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o444 || st.Size() != int64(len(data)) {
		t.Fatalf("after remount: mode %v size %d; want 0444 and %d", st.Mode(), st.Size(), len(data))
	}
	if _, err := os.Stat(m2.Path("repo/data/ab/.tmp-1234")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the temp file is still there: %v", err)
	}
}
