package stage

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Leftover is a staged edit that no running mount owns: kept in lost+found
// by a mount that recovered it, or still in the directory of a mount that
// ended without unmounting.
type Leftover struct {
	Path     string    // the stage file
	Key      string    // the object it was an edit of
	Modified time.Time // its last write
	Size     int64     // bytes on disk
}

// Sweep finds the leftovers under the cache directory root and, unless
// dryRun, removes those last written at least olderThan before now (every
// one for 0), with their .key files and the emptied directories of dead
// mounts. each is told of every leftover and whether it was (or, dry, would
// be) removed. Directories of running mounts (their lock is held) are never
// touched.
func Sweep(root string, olderThan time.Duration, dryRun bool, now time.Time, each func(l Leftover, removed bool, err error)) error {
	entries, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		switch {
		case !e.IsDir():
			continue
		case e.Name() == "lost+found":
			sweepDir(dir, olderThan, dryRun, now, each)
		case strings.HasPrefix(e.Name(), "mount-"):
			lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR, 0)
			if err != nil {
				continue
			}
			if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
				lock.Close() // a running mount's
				continue
			}
			if sweepDir(dir, olderThan, dryRun, now, each) == 0 && !dryRun {
				os.RemoveAll(dir)
			}
			lock.Close()
		}
	}
	return nil
}

// sweepDir sweeps the stage files of dir and returns how many are left.
func sweepDir(dir string, olderThan time.Duration, dryRun bool, now time.Time, each func(Leftover, bool, error)) int {
	files, _ := filepath.Glob(filepath.Join(dir, "*.data"))
	left := 0
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue
		}
		sidecar := strings.TrimSuffix(f, ".data") + ".key"
		key, _ := os.ReadFile(sidecar)
		l := Leftover{Path: f, Key: string(key), Modified: fi.ModTime(), Size: fi.Size()}
		if olderThan > 0 && now.Sub(l.Modified) < olderThan {
			left++
			each(l, false, nil)
			continue
		}
		if dryRun {
			left++
			each(l, true, nil)
			continue
		}
		err = os.Remove(f)
		if err == nil {
			os.Remove(sidecar)
		} else {
			left++
		}
		each(l, err == nil, err)
	}
	return left
}
