// Package stage keeps the files a mount edits in place (appends, writes
// before the end, truncations, reads of a file being written) in sparse
// local files under the cache directory, holding only the ranges that were
// written or read: the rest is still the object's, fetched from S3 when
// needed. The stage is bounded: a Dir charges every byte a stage file holds
// against --cache-max-size and a write that does not fit answers ENOSPC,
// leaving what was written before intact.
//
// Layout: each mount takes a directory of its own under the cache directory
// ("mount-*"), holds an flock on its "lock" file while it runs, and removes
// it at unmount. A stage file "N.data" has a sidecar "N.key" naming the
// object. A mount that starts finds the directories of mounts that ended
// without removing theirs (a crash: their lock is free) and moves their
// stage files to "lost+found", logged with their keys: a partial edit is
// never uploaded silently, and the user can look at it or delete it.
package stage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/sirupsen/logrus"
)

// ErrNoSpace is a write or a fetch that does not fit the stage's bound; the
// filesystem answers ENOSPC.
var ErrNoSpace = syscall.ENOSPC

// Dir is one mount's staging directory and its size bound.
type Dir struct {
	root string   // the cache directory
	path string   // this mount's own directory under root
	lock *os.File // flocked while the mount runs
	max  int64
	log  *logrus.Logger
	seq  atomic.Int64

	mu   sync.Mutex // guards used; a leaf lock (nothing is taken while it is held)
	used int64      // bytes held by stage files and spilled parts
}

// Open creates (0700) the cache directory root when missing, recovers the
// stage files of mounts that crashed (moved to lost+found, see the package
// comment) and takes a directory of its own there. max bounds the bytes
// staged at once.
func Open(root string, max int64, log *logrus.Logger) (*Dir, error) {
	if max <= 0 {
		return nil, fmt.Errorf("cache size %d must be positive", max)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("creating the cache directory: %w", err)
	}
	d := &Dir{root: root, max: max, log: log}
	d.recover()
	path, err := os.MkdirTemp(root, "mount-")
	if err != nil {
		return nil, fmt.Errorf("creating the mount's stage directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(path, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		os.RemoveAll(path)
		return nil, fmt.Errorf("locking the mount's stage directory: %w", err)
	}
	d.path, d.lock = path, lock
	return d, nil
}

// recover moves the stage files of crashed mounts to lost+found.
func (d *Dir) recover() {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "mount-") {
			continue
		}
		dir := filepath.Join(d.root, e.Name())
		lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			lock.Close() // a running mount's
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.data"))
		for _, f := range files {
			key, _ := os.ReadFile(strings.TrimSuffix(f, ".data") + ".key")
			lost := filepath.Join(d.root, "lost+found")
			if err := os.MkdirAll(lost, 0o700); err != nil {
				continue
			}
			dst := filepath.Join(lost, e.Name()+"-"+filepath.Base(f))
			if os.Rename(f, dst) == nil {
				os.WriteFile(strings.TrimSuffix(dst, ".data")+".key", key, 0o600)
				d.log.WithFields(logrus.Fields{"op": "stage-recover", "key": string(key), "file": dst}).
					Warn("a staged edit of a mount that ended without unmounting was kept, not uploaded")
			}
		}
		lock.Close()
		os.RemoveAll(dir)
	}
}

// Close removes the mount's stage directory; every stage file should be
// closed by then (a file still open is removed with it).
func (d *Dir) Close() error {
	err := os.RemoveAll(d.path)
	d.lock.Close()
	return err
}

// Path is the mount's own stage directory (spilled upload parts go there).
func (d *Dir) Path() string { return d.path }

// Used is the bytes staged now.
func (d *Dir) Used() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used
}

// Max is the bound on the bytes staged.
func (d *Dir) Max() int64 { return d.max }

// Charge takes n bytes of the bound, or answers ErrNoSpace taking nothing.
func (d *Dir) Charge(n int64) error {
	if n <= 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.used+n > d.max {
		return ErrNoSpace
	}
	d.used += n
	return nil
}

// Release gives n charged bytes back.
func (d *Dir) Release(n int64) {
	if n <= 0 {
		return
	}
	d.mu.Lock()
	d.used -= n
	d.mu.Unlock()
}

// newFile creates a stage file and its sidecar naming key.
func (d *Dir) newFile(key string) (*os.File, error) {
	base := filepath.Join(d.path, strconv.FormatInt(d.seq.Add(1), 10))
	if err := os.WriteFile(base+".key", []byte(key), 0o600); err != nil {
		return nil, fmt.Errorf("staging %q: %w", key, err)
	}
	f, err := os.OpenFile(base+".data", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		os.Remove(base + ".key")
		return nil, fmt.Errorf("staging %q: %w", key, err)
	}
	return f, nil
}

// removeFile closes and removes a stage file and its sidecar.
func removeFile(f *os.File) error {
	name := f.Name()
	err := f.Close()
	err = errors.Join(err, os.Remove(name))
	os.Remove(strings.TrimSuffix(name, ".data") + ".key")
	return err
}
