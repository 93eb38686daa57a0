package e2e

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestReferenceModel applies one random sequence of namespace operations
// (write, read, unlink, mkdir, rmdir, rename, chmod, symlink, stat) to the
// mount and to a local directory, the reference model: every operation must
// answer the same (the same errno when it fails), and the two trees must
// hold the same names, types, modes, sizes, contents and link targets, after
// the run and again after a remount. Hand-picked tests miss the
// interactions this finds.
//
// BUCKETFS_MODEL_SEEDS=N runs N seeds instead of the fixed ones.
func TestReferenceModel(t *testing.T) {
	seeds := []uint64{20261125, 7}
	if n, err := strconv.Atoi(os.Getenv("BUCKETFS_MODEL_SEEDS")); err == nil {
		seeds = seeds[:0]
		for i := 0; i < n; i++ {
			seeds = append(seeds, uint64(time.Now().UnixNano())+uint64(i))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) { testReferenceModel(t, seed) })
	}
}

func testReferenceModel(t *testing.T, seed uint64) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)
	// --exact-attrs: the walks below list directories, and a listing
	// alone shows neither modes nor symlinks (see SEMANTICS.md).
	exact := func(c *bfs.Config) { c.ExactAttrs = true }
	m := mountBucket(t, srv, bucket, exact)
	model := filepath.Join(t.TempDir(), "model")
	if err := os.Mkdir(model, 0o755); err != nil {
		t.Fatal(err)
	}
	const ops = 400
	r := rand.New(rand.NewPCG(seed, seed))
	dirs := []string{"", "d1", "d1/d2", "d3"}
	names := []string{"a", "b", "c"}
	pick := func() string {
		d := dirs[r.IntN(len(dirs))]
		if r.IntN(4) == 0 && d != "" {
			return d // a directory itself
		}
		return filepath.Join(d, names[r.IntN(len(names))])
	}
	content := func(i int) []byte {
		n := r.IntN(20 << 10)
		if r.IntN(40) == 0 {
			n = 9 << 20 // a multipart upload
		}
		return randomBytes(uint64(i), n)
	}

	for i := 0; i < ops; i++ {
		var desc string
		var do func(root string) (string, error)
		if r.IntN(100) == 0 {
			// Past the attribute delay: pending changes are written now,
			// between operations, not only at unmount.
			time.Sleep(2500 * time.Millisecond)
		}
		switch op := r.IntN(10); op {
		case 0, 1:
			p, data := pick(), content(i)
			desc = fmt.Sprintf("write %s (%d bytes)", p, len(data))
			do = func(root string) (string, error) { return "", os.WriteFile(filepath.Join(root, p), data, 0o644) }
		case 2:
			p := pick()
			desc = "read " + p
			do = func(root string) (string, error) {
				b, err := os.ReadFile(filepath.Join(root, p))
				return sha(b), err
			}
		case 3:
			p := pick()
			desc = "unlink " + p
			do = func(root string) (string, error) { return "", syscall.Unlink(filepath.Join(root, p)) }
		case 4:
			p := pick()
			desc = "mkdir " + p
			do = func(root string) (string, error) { return "", syscall.Mkdir(filepath.Join(root, p), 0o755) }
		case 5:
			p := pick()
			desc = "rmdir " + p
			do = func(root string) (string, error) { return "", syscall.Rmdir(filepath.Join(root, p)) }
		case 6, 7:
			from, to := pick(), pick()
			desc = fmt.Sprintf("rename %s %s", from, to)
			do = func(root string) (string, error) {
				return "", syscall.Rename(filepath.Join(root, from), filepath.Join(root, to))
			}
		case 8:
			p, mode := pick(), []uint32{0o600, 0o640, 0o755}[r.IntN(3)]
			desc = fmt.Sprintf("chmod %s %o", p, mode)
			do = func(root string) (string, error) {
				var st syscall.Stat_t
				if err := syscall.Lstat(filepath.Join(root, p), &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
					return "", nil // chmod follows links; their targets are outside the model
				}
				return "", syscall.Chmod(filepath.Join(root, p), mode)
			}
		case 9:
			if r.IntN(2) == 0 {
				p := pick()
				desc = "symlink " + p
				do = func(root string) (string, error) { return "", syscall.Symlink("target-"+p, filepath.Join(root, p)) }
			} else {
				p := pick()
				desc = "lstat " + p
				do = func(root string) (string, error) {
					var st syscall.Stat_t
					err := syscall.Lstat(filepath.Join(root, p), &st)
					if err != nil {
						return "", err
					}
					size := st.Size
					if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
						size = 0 // directory sizes are the local filesystem's own
					}
					return fmt.Sprintf("mode %o size %d", st.Mode, size), nil
				}
			}
		}
		wantOut, wantErr := do(model)
		gotOut, gotErr := do(m.Dir)
		if errnoOf(wantErr) != errnoOf(gotErr) || (wantErr == nil && wantOut != gotOut) {
			t.Fatalf("op %d (seed %d), %s: model answered %q, %v; the mount answered %q, %v",
				i, seed, desc, wantOut, wantErr, gotOut, gotErr)
		}
	}
	want := modelState(t, model)
	compareTrees(t, want, modelState(t, m.Dir))
	m.Unmount(t)
	m2 := mountBucket(t, srv, bucket, exact)
	compareTrees(t, want, modelState(t, m2.Dir))
	t.Logf("%d operations, %d names at the end", ops, len(want))
}

// errnoOf returns err's errno, 0 for nil, EIO for anything else.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EIO
}

// modelState describes a tree for comparison with the model: names, types,
// modes, and sizes and contents of files, link targets; not mtimes.
func modelState(t testing.TB, root string) []string {
	t.Helper()
	return walkTree(t, root, func(p string, info os.FileInfo) string {
		return fmt.Sprintf(" size=%d sha=%s", info.Size(), shaFile(t, p)[:12])
	})
}
