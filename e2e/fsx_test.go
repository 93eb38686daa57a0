package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bucketfs/bucketfs/internal/fsx"
)

// The randomized file exerciser (package internal/fsx) on real files: a
// plain directory here (TestFSXLocal, which proves the exerciser itself
// right) or a mount (TestStagedFSX).

// dirFS is an fsx.FS of real files under a directory.
type dirFS string

func (d dirFS) OpenFile(name string, flag int, perm os.FileMode) (fsx.File, error) {
	f, err := os.OpenFile(filepath.Join(string(d), name), flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

func (f osFile) Mmap(off int64, length int, writable bool) (fsx.Mapping, error) {
	page := int64(os.Getpagesize())
	start := off / page * page
	prot := syscall.PROT_READ
	if writable {
		prot |= syscall.PROT_WRITE
	}
	mem, err := syscall.Mmap(int(f.Fd()), start, int(off-start)+length, prot, syscall.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: err}
	}
	return &osMapping{mem: mem, delta: int(off - start)}, nil
}

type osMapping struct {
	mem   []byte // the whole mapping, from a page boundary
	delta int    // where the range asked for starts in mem
}

func (m *osMapping) Bytes() []byte { return m.mem[m.delta:] }

func (m *osMapping) Sync() error {
	if err := unix.Msync(m.mem, unix.MS_SYNC); err != nil {
		return &os.SyscallError{Syscall: "msync", Err: err}
	}
	return nil
}

func (m *osMapping) Unmap() error { return syscall.Munmap(m.mem) }

// fsxFixedSeeds are make test's seeds.
var fsxFixedSeeds = []uint64{1, 20260214, 987654321}

// TestFSXLocal runs the exerciser on a local directory, where every
// operation is known to work: a failure is a bug of the exerciser or its
// model. It also checks that the checks bite: a file system that loses
// one write in fifty, or one that ignores a truncation, is caught.
func TestFSXLocal(t *testing.T) {
	seeds, ops, err := fsx.Plan(fsxFixedSeeds, 300)
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			dir := t.TempDir()
			cfg := fsx.Defaults(seed, ops)
			cfg.Logf = t.Logf
			start := time.Now()
			final, err := fsx.Run(dirFS(dir), cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, cfg.Name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, final) {
				t.Fatalf("the file (%d bytes) differs from the model's final bytes (%d)", len(got), len(final))
			}
			t.Logf("%d operations in %v", ops, time.Since(start).Round(time.Millisecond))
		})
	}
	for _, bug := range []struct {
		name string
		fs   fsx.FS
		want string // in the error
	}{
		{"a lost write", &buggyFS{dir: dirFS(t.TempDir()), loseWriteEvery: 50}, ", want "}, // a size or a byte
		{"an ignored truncation", &buggyFS{dir: dirFS(t.TempDir()), ignoreTruncate: true}, "size"},
		{"a stale mapping", &buggyFS{dir: dirFS(t.TempDir()), dropMmapWrites: true}, "first difference"},
	} {
		t.Run("catches "+bug.name, func(t *testing.T) {
			_, err := fsx.Run(bug.fs, fsx.Defaults(fsxFixedSeeds[1], 300))
			if err == nil || !strings.Contains(err.Error(), bug.want) {
				t.Fatalf("with %s, the exerciser reported %v; want an error with %q", bug.name, err, bug.want)
			}
			t.Logf("caught: %.300s", err)
		})
	}
}

// buggyFS is a dirFS with a bug planted, to show that the exerciser
// notices.
type buggyFS struct {
	dir            dirFS
	loseWriteEvery int  // every so many pwrites succeed without writing
	ignoreTruncate bool // ftruncate succeeds without changing the file
	dropMmapWrites bool // writable mappings are private: msync writes nothing
	writes         int
}

func (b *buggyFS) OpenFile(name string, flag int, perm os.FileMode) (fsx.File, error) {
	f, err := b.dir.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &buggyFile{File: f, fs: b}, nil
}

type buggyFile struct {
	fsx.File
	fs *buggyFS
}

func (f *buggyFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.writes++
	if f.fs.loseWriteEvery > 0 && f.fs.writes%f.fs.loseWriteEvery == 0 {
		return len(p), nil
	}
	return f.File.WriteAt(p, off)
}

func (f *buggyFile) Truncate(size int64) error {
	if f.fs.ignoreTruncate {
		return nil
	}
	return f.File.Truncate(size)
}

func (f *buggyFile) Mmap(off int64, length int, writable bool) (fsx.Mapping, error) {
	if writable && f.fs.dropMmapWrites {
		return &privateMapping{b: make([]byte, length)}, nil
	}
	return f.File.Mmap(off, length, writable)
}

type privateMapping struct{ b []byte }

func (m *privateMapping) Bytes() []byte { return m.b }
func (m *privateMapping) Sync() error   { return nil }
func (m *privateMapping) Unmap() error  { return nil }
