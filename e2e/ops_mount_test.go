package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// helperPath is where mount(8) (util-linux) looks for the helper of type
// fuse.bucketfs; it searches no other directory.
const helperPath = "/sbin/mount.fuse.bucketfs"

// pathBinary is where mount.fuse3 finds bucketfs (sh's default PATH) for
// `mount -t fuse.bucketfs` when there is no helper in /sbin.
const pathBinary = "/usr/local/bin/bucketfs"

// makeInstall runs make install into prefix with the tests' binary, the
// helper link going to sbindir.
func makeInstall(t *testing.T, prefix, sbindir string) {
	t.Helper()
	// -o build: install the binary the tests built, without rebuilding bin/.
	cmd := exec.Command("make", "-s", "-o", "build", "install",
		"PREFIX="+prefix, "SBINDIR="+sbindir, "BUCKETFS="+bucketfsBinary(t))
	cmd.Dir = s3test.ModuleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
}

// unmountAndWait unmounts mnt with umount(8) and waits for the daemon's log
// to say it ended.
func unmountAndWait(t *testing.T, mnt, logFile string) {
	t.Helper()
	run(t, "umount", mnt)
	waitFor(t, 20*time.Second, "the daemon's end", func() bool { return strings.Contains(readFileOrEmpty(logFile), "msg=unmounted") })
}

// stopByLogPID ends (at cleanup) a background daemon the test started
// through mount(8), by the PID its log names, if it still runs.
func stopByLogPID(t *testing.T, logFile string) {
	t.Cleanup(func() {
		if pid := logPID(readFileOrEmpty(logFile)); pid > 0 && syscall.Kill(pid, 0) == nil {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), logFile) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

// TestOpsMountHelper: make install puts the binary and mount(8)'s helper in
// place; `mount -t fuse.bucketfs` mounts through mount.fuse3 and the binary
// on PATH, and an fstab line (mount -T) through /sbin/mount.fuse.bucketfs;
// options take effect; umount(8) ends the daemon.
func TestOpsMountHelper(t *testing.T) {
	requireFUSE(t)
	_, err := exec.LookPath("mount.fuse3")
	s3test.Require(t, err == nil, "mount.fuse3 (fuse3)")
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	s3test.PutObjects(t, c, map[string][]byte{"hello.txt": []byte("hi")})
	prefix := t.TempDir()
	makeInstall(t, prefix, filepath.Join(prefix, "sbin"))
	bin := filepath.Join(prefix, "bin", "bucketfs")
	if target, err := os.Readlink(filepath.Join(prefix, "sbin", "mount.fuse.bucketfs")); err != nil || target != bin {
		t.Fatalf("helper link -> %q, %v; want %s", target, err, bin)
	}
	if st, err := os.Stat(bin); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("installed binary: %v, %v", st, err)
	}
	conn := "endpoint_url=" + srv.Endpoint + ",force_path_style"

	t.Run("mount -t through mount.fuse3", func(t *testing.T) {
		if _, err := os.Lstat(helperPath); err == nil {
			t.Skipf("%s exists (an installed bucketfs?): mount(8) would run it, not mount.fuse3", helperPath)
		}
		// mount.fuse3 runs `bucketfs BUCKET MNT -o OPTIONS` through sh, and
		// mount(8) removed PATH: sh's default PATH (/usr/local/bin, ...)
		// applies, so the binary must be there; cleanup removes exactly the
		// link this test made.
		if _, err := os.Lstat(pathBinary); err == nil {
			t.Skipf("%s exists (an installed bucketfs?); not replacing it", pathBinary)
		}
		if err := os.Symlink(bin, pathBinary); err != nil {
			t.Skipf("cannot link %s: %v", pathBinary, err)
		}
		t.Cleanup(func() {
			if target, err := os.Readlink(pathBinary); err == nil && target == bin {
				os.Remove(pathBinary)
			}
		})
		mnt := newMountpoint(t)
		logFile := filepath.Join(t.TempDir(), "bucketfs.log")
		stopByLogPID(t, logFile)
		t.Cleanup(func() { unmountIfMounted(t, mnt) })
		opts := conn + ",ro,noatime,nodev,nosuid,_netdev,nofail,metadata_ttl=1s,file_mode=0600,uid=1234,log_file=" + logFile
		run(t, "mount", "-t", "fuse.bucketfs", bucket, mnt, "-o", opts)
		if !isMounted(t, mnt) {
			t.Fatal("mount returned, nothing mounted")
		}
		if b, err := os.ReadFile(filepath.Join(mnt, "hello.txt")); err != nil || string(b) != "hi" {
			t.Fatalf("read: %q, %v", b, err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(mnt, "hello.txt"), &st); err != nil {
			t.Fatal(err)
		}
		// A read-only mount shows no write bits: 0600 becomes 0400.
		if st.Mode&0o7777 != 0o400 || st.Uid != 1234 {
			t.Fatalf("mode %o uid %d; want 0400 (-o file_mode=0600 on a ro mount) and 1234 (-o uid)", st.Mode&0o7777, st.Uid)
		}
		err := os.WriteFile(filepath.Join(mnt, "new.txt"), []byte("x"), 0o644)
		if !errors.Is(err, syscall.EROFS) {
			t.Fatalf("write on a ro mount: %v, want EROFS", err)
		}
		log := readFileOrEmpty(logFile)
		for _, want := range []string{"metadata_ttl=1s", "read_only=true"} {
			if !strings.Contains(log, want) {
				t.Fatalf("log lacks %s:\n%s", want, log)
			}
		}
		unmountAndWait(t, mnt, logFile)
		if st, err := os.Stat(logFile); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("log file mode %v, %v; want 0600", st.Mode(), err)
		}
	})

	t.Run("fstab through mount.fuse.bucketfs", func(t *testing.T) {
		if _, err := os.Lstat(helperPath); err == nil {
			t.Skipf("%s exists already; not replacing it", helperPath)
		}
		// The helper goes where mount(8) looks; cleanup removes exactly the
		// link this test made.
		makeInstall(t, prefix, filepath.Dir(helperPath))
		t.Cleanup(func() {
			if target, err := os.Readlink(helperPath); err == nil && target == bin {
				os.Remove(helperPath)
			}
		})
		mnt := newMountpoint(t)
		logFile := filepath.Join(t.TempDir(), "bucketfs.log")
		stopByLogPID(t, logFile)
		t.Cleanup(func() { unmountIfMounted(t, mnt) })
		fstab := filepath.Join(t.TempDir(), "fstab")
		line := fmt.Sprintf("%s %s fuse.bucketfs %s,rw,_netdev,nofail,x-systemd.automount,comment=ops-test,metadata_ttl=2s,log_file=%s 0 0\n",
			bucket, mnt, conn, logFile)
		if err := os.WriteFile(fstab, []byte("# a temporary fstab\n"+line), 0o644); err != nil {
			t.Fatal(err)
		}
		// bucketfs is not on PATH here: only the helper can have mounted it.
		cmd := exec.Command("mount", "-T", fstab, mnt)
		cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mount -T %s %s: %v\n%s\nlog:\n%s", fstab, mnt, err, out, readFileOrEmpty(logFile))
		}
		if err := os.WriteFile(filepath.Join(mnt, "written.txt"), []byte("through fstab"), 0o644); err != nil {
			t.Fatalf("write on an rw mount: %v", err)
		}
		if got := s3test.GetObject(t, c, "written.txt"); string(got) != "through fstab" {
			t.Fatalf("object: %q", got)
		}
		if log := readFileOrEmpty(logFile); !strings.Contains(log, "metadata_ttl=2s") || !strings.Contains(log, "read_only=false") {
			t.Fatalf("log lacks the options:\n%s", log)
		}
		unmountAndWait(t, mnt, logFile)
	})

	t.Run("mount -t reports a bad option", func(t *testing.T) {
		if _, err := os.Lstat(helperPath); err == nil {
			t.Skipf("%s exists already; not replacing it", helperPath)
		}
		makeInstall(t, prefix, filepath.Dir(helperPath))
		t.Cleanup(func() {
			if target, err := os.Readlink(helperPath); err == nil && target == bin {
				os.Remove(helperPath)
			}
		})
		mnt := newMountpoint(t)
		out, err := exec.Command("mount", "-t", "fuse.bucketfs", bucket, mnt, "-o", conn+",part_size=tiny").CombinedOutput()
		if err == nil || !strings.Contains(string(out), `mount option part_size: "tiny" is not a size`) {
			t.Fatalf("mount with a bad option: %v: %s", err, out)
		}
		if isMounted(t, mnt) {
			t.Fatal("mounted anyway")
		}
	})
}

// TestOpsRelativeMountpoint: `bucketfs BUCKET mnt` run from mnt's parent
// (the README's quick start) raises the kernel's read-ahead of the mount to
// 1 MiB, as a mount at an absolute path does; it stayed at 128 KiB (the
// mount table names mounts by absolute path), so reads through the page
// cache arrived in 128 KiB pieces.
func TestOpsRelativeMountpoint(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)
	mnt := newMountpoint(t)
	startOpsDaemonIn(t, filepath.Dir(mnt), srv.Endpoint, srv, bucket, mnt, nil)
	if kb, err := mountReadAhead(mnt); err != nil || kb != "1024" {
		t.Errorf("read_ahead_kb of the mount made at a relative path: %q, %v; want 1024", kb, err)
	}
	m := mountBucket(t, srv, bucket)
	if kb, err := mountReadAhead(m.Dir); err != nil || kb != "1024" {
		t.Errorf("read_ahead_kb of the mount made at an absolute path: %q, %v; want 1024", kb, err)
	}
}

// mountReadAhead reads the kernel's read-ahead (KiB) of the mount at dir:
// its device's read_ahead_kb, the device from /proc/self/mountinfo.
func mountReadAhead(dir string) (string, error) {
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	dev := ""
	for _, line := range strings.Split(string(info), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			dev = f[2]
		}
	}
	if dev == "" {
		return "", fmt.Errorf("%s is not in the mount table", dir)
	}
	kb, err := os.ReadFile("/sys/class/bdi/" + dev + "/read_ahead_kb")
	return strings.TrimSpace(string(kb)), err
}
