package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const mountInfoPath = "/proc/self/mountinfo"

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	device     string // major:minor of the filesystem
	mountpoint string
	fstype     string
	source     string
}

// parseMountInfo reads mountinfo's format:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseMountInfo(text string) []mountEntry {
	var out []mountEntry
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+2 >= len(f) {
			continue
		}
		out = append(out, mountEntry{device: f[2], mountpoint: unescapeOctal(f[4]), fstype: f[sep+1], source: unescapeOctal(f[sep+2])})
	}
	return out
}

// unescapeOctal undoes mountinfo's escapes (\040 for a space).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readMounts() ([]mountEntry, error) {
	b, err := os.ReadFile(mountInfoPath)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	return parseMountInfo(string(b)), nil
}

// mountAt returns the topmost mount at path (absolute, symlinks resolved).
func mountAt(path string) (mountEntry, bool, error) {
	mounts, err := readMounts()
	if err != nil {
		return mountEntry{}, false, err
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].mountpoint == path {
			return mounts[i], true, nil
		}
	}
	return mountEntry{}, false, nil
}

// hasDevice says whether a mount of device is in the table.
func hasDevice(mounts []mountEntry, device string) bool {
	for _, m := range mounts {
		if m.device == device {
			return true
		}
	}
	return false
}

// watchUnmount returns a channel closed once no mount of device is left in
// this process's mount table (umount, umount -l, or our own unmount). The
// kernel flags /proc/self/mountinfo with POLLPRI on every change of the
// table, so the goroutine sleeps in poll until then; it ends then or when
// stop is closed.
func watchUnmount(device string, stop <-chan struct{}) <-chan struct{} {
	gone := make(chan struct{})
	f, err := os.Open(mountInfoPath)
	if err != nil {
		return gone // never closed: an unmount is then seen when the server ends
	}
	go func() {
		defer f.Close()
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLPRI}}
		for {
			if mounts, err := readMounts(); err == nil && !hasDevice(mounts, device) {
				close(gone)
				return
			}
			select {
			case <-stop:
				return
			default:
			}
			// A timeout checks stop; a poll error falls back to polling
			// the table once a second.
			if _, err := unix.Poll(fds, 1000); err != nil && !errors.Is(err, unix.EINTR) {
				time.Sleep(time.Second)
			}
		}
	}()
	return gone
}

// unmountOrDetach unmounts path. When files on it are still open (EBUSY)
// it detaches the mount instead (umount -l): no new open reaches it, the
// files already open keep working, and the kernel ends the mount when the
// last of them closes. detached says which happened.
func unmountOrDetach(path string) (detached bool, err error) {
	err = syscall.Unmount(path, 0)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, syscall.EBUSY):
		if err := syscall.Unmount(path, syscall.MNT_DETACH); err != nil {
			return false, fmt.Errorf("detaching %s: %w", path, err)
		}
		return true, nil
	case errors.Is(err, syscall.EPERM):
		// Not root: the mount was made by fusermount3, which unmounts too.
		if out, err := exec.Command("fusermount3", "-u", path).CombinedOutput(); err == nil {
			return false, nil
		} else if !strings.Contains(string(out), "busy") {
			return false, fmt.Errorf("fusermount3 -u %s: %v: %s", path, err, strings.TrimSpace(string(out)))
		}
		if out, err := exec.Command("fusermount3", "-u", "-z", path).CombinedOutput(); err != nil {
			return false, fmt.Errorf("fusermount3 -u -z %s: %v: %s", path, err, strings.TrimSpace(string(out)))
		}
		return true, nil
	}
	return false, fmt.Errorf("unmounting %s: %w", path, err)
}
