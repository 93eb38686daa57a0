package fsx

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
)

// memFS is an in-memory FS with bucketfs's commit rule, to check the
// exerciser's own handling of commits and failures: its descriptors share
// the file's bytes; fsync, and the close of a writable descriptor, commit
// them. With faults, a read now and then fails changing nothing
// (ErrTransient), and a change or a commit fails losing everything since
// the last commit (ErrLost): every call, closes too, then fails until the
// last descriptor is closed, and the file is back at its last commit.
type memFS struct {
	r         *rand.Rand // the faults; nil: none
	exists    bool
	data      []byte // the file as its descriptors see it
	published bool   // committed at least once
	committed []byte
	commits   [][]byte // not yet asked for
	open      int      // descriptors
	failed    bool
	bug       string // a planted bug, see TestFaultModelCatches
}

func (m *memFS) Commits() [][]byte {
	c := m.commits
	m.commits = nil
	return c
}

// fail says whether a call fails: a read transiently, anything else losing
// the changes.
func (m *memFS) fail(read bool) error {
	switch {
	case m.failed:
		return fmt.Errorf("%w (%w)", syscall.EIO, ErrLost)
	case m.r == nil || m.r.IntN(40) != 0:
		return nil
	case read:
		return fmt.Errorf("%w (%w)", syscall.EIO, ErrTransient)
	case m.bug == "a loss marked transient":
		m.data = bytes.Clone(m.committed)
		return fmt.Errorf("%w (%w)", syscall.EIO, ErrTransient)
	}
	m.failed = true
	return fmt.Errorf("%w (%w)", syscall.EIO, ErrLost)
}

// end ends a failure once no descriptor is open: the file is back at its
// last commit.
func (m *memFS) end() {
	m.failed = false
	m.data = bytes.Clone(m.committed)
	m.exists = m.published
}

func (m *memFS) commit() {
	m.published = true
	m.committed = bytes.Clone(m.data)
	m.commits = append(m.commits, bytes.Clone(m.data))
}

func (m *memFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if !m.exists && flag&os.O_CREATE == 0 {
		return nil, syscall.ENOENT
	}
	if err := m.fail(false); err != nil {
		if m.open == 0 {
			m.end()
		}
		return nil, err
	}
	m.exists = true
	if flag&os.O_TRUNC != 0 {
		m.data = nil
	}
	m.open++
	return &memFile{m: m, flag: flag}, nil
}

type memFile struct {
	m      *memFS
	flag   int
	closed bool
}

func (f *memFile) writable() bool { return f.flag&(os.O_WRONLY|os.O_RDWR) != 0 }

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.m.fail(true); err != nil {
		return 0, err
	}
	if off >= int64(len(f.m.data)) {
		return 0, nil
	}
	return copy(p, f.m.data[off:]), nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.m.fail(false); err != nil {
		return 0, err
	}
	if end := off + int64(len(p)); end > int64(len(f.m.data)) {
		f.m.data = append(f.m.data, make([]byte, end-int64(len(f.m.data)))...)
	}
	return copy(f.m.data[off:], p), nil
}

func (f *memFile) Write(p []byte) (int, error) { return f.WriteAt(p, int64(len(f.m.data))) }

func (f *memFile) Truncate(size int64) error {
	if err := f.m.fail(false); err != nil {
		return err
	}
	if size <= int64(len(f.m.data)) {
		f.m.data = f.m.data[:size]
	} else {
		f.m.data = append(f.m.data, make([]byte, size-int64(len(f.m.data)))...)
	}
	return nil
}

func (f *memFile) Sync() error {
	if err := f.m.fail(false); err != nil {
		return err
	}
	if f.writable() {
		f.m.commit()
	}
	return nil
}

func (f *memFile) Size() (int64, error) { return int64(len(f.m.data)), nil }

func (f *memFile) Mmap(off int64, length int, writable bool) (Mapping, error) {
	b := make([]byte, length)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, err
	}
	return &memMapping{f: f, off: off, b: b, writable: writable}, nil
}

func (f *memFile) Close() error {
	m := f.m
	f.closed = true
	m.open--
	wasFailed := m.failed
	err := m.fail(false)
	if err != nil && !wasFailed && f.writable() && m.bug == "a failed commit answered as done" {
		m.failed = false // and nothing committed
		return nil
	}
	if m.failed {
		if m.bug == "a publish after a loss" {
			m.commit()
		}
		if m.open == 0 {
			m.end()
		}
		return err
	}
	if f.writable() {
		m.commit()
	}
	return nil
}

type memMapping struct {
	f        *memFile
	off      int64
	b        []byte
	writable bool
}

func (m *memMapping) Bytes() []byte { return m.b }

func (m *memMapping) Sync() error {
	if !m.writable || m.f.closed {
		return nil
	}
	_, err := m.f.WriteAt(m.b, m.off)
	return err
}

func (m *memMapping) Unmap() error { return nil }

// testConfig is a run on a file of up to 256 KiB.
func testConfig(seed uint64, faults bool) Config {
	return Config{Seed: seed, Ops: 500, Name: "f", MaxSize: 256 << 10, MaxLen: 16 << 10, FullCheckEvery: 50, Faults: faults}
}

// TestFaultModel runs the exerciser on memFS, where the commit rule and
// the failures are known to be right: a failure is a bug of the
// exerciser's model of commits and failures.
func TestFaultModel(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		for _, faults := range []bool{false, true} {
			m := &memFS{}
			if faults {
				m.r = rand.New(rand.NewPCG(seed, 1))
			}
			cfg := testConfig(seed, faults)
			final, err := Run(m, cfg)
			if err != nil {
				t.Fatalf("faults %v: %v", faults, err)
			}
			if !bytes.Equal(final, m.committed) {
				t.Fatalf("seed %d, faults %v: the last commit holds %d bytes, the model %d", seed, faults, len(m.committed), len(final))
			}
		}
	}
}

// TestFaultModelCatches shows that the checks of commits and failures bite.
func TestFaultModelCatches(t *testing.T) {
	for _, bug := range []struct{ name, want string }{
		{"a failed commit answered as done", "succeeded, but the last commit"},
		{"a publish after a loss", "after a lost change"},
		{"a loss marked transient", ", want "}, // a size or a byte
	} {
		t.Run(bug.name, func(t *testing.T) {
			var err error
			for seed := uint64(1); seed <= 20 && err == nil; seed++ {
				_, err = Run(&memFS{r: rand.New(rand.NewPCG(seed, 1)), bug: bug.name}, testConfig(seed, true))
			}
			if err == nil || !strings.Contains(err.Error(), bug.want) {
				t.Fatalf("with %s, the exerciser reported %v; want an error about %q", bug.name, err, bug.want)
			}
			t.Logf("caught: %.300s", err)
		})
	}
	if _, err := Run(&memFS{}, Config{Seed: 1, Ops: 1, Name: "f", MaxSize: 1 << 20, MaxLen: 1 << 10, Faults: true}); err != nil {
		t.Fatalf("a run with faults on an FS that injects none: %v", err)
	}
	if _, err := Run(dirless{}, Config{Seed: 1, Ops: 1, Name: "f", MaxSize: 1 << 20, MaxLen: 1 << 10, Faults: true}); err == nil {
		t.Fatal("Faults on an FS that is no Committer was accepted")
	}
}

// dirless is an FS that is no Committer.
type dirless struct{}

func (dirless) OpenFile(string, int, os.FileMode) (File, error) { return nil, syscall.ENOSYS }
