package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestCopyOnServer: cp within the mount (copy_file_range) copies on the
// server: no byte of the source is read, the copy is the version the
// source's descriptor pinned, and it has the destination's own metadata.
func TestCopyOnServer(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	m := mountBucket(t, srv, bucket)
	keys := watchKeys(m)
	big := randomBytes(1, 20<<20+12345)
	other := randomBytes(2, 7<<20)
	s3test.PutObjects(t, c, map[string][]byte{"big": big, "other": other, "small": []byte("small file\n"), "target": []byte("kept")})

	cp := func(args ...string) {
		t.Helper()
		if out, err := runWithin(t, time.Minute, append([]string{"cp"}, args...)...); err != nil {
			t.Fatalf("cp %v: %v: %s", args, err, out)
		}
	}
	want := func(key string, data []byte) {
		t.Helper()
		got, err := getObject(c, key)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes (sha %s), %v; want %d bytes (sha %s)", key, len(got), sha(got), err, len(data), sha(data))
		}
	}
	sent := func(key string) int {
		ops := keys.of(key)
		return ops["PutObject"] + ops["UploadPart"]
	}

	t.Run("new file: one copied part, completed with If-None-Match", func(t *testing.T) {
		cp(m.Path("big"), m.Path("copy"))
		want("copy", big)
		ops := keys.of("copy")
		if ops["UploadPartCopy"] != 1 || ops["CompleteMultipartUpload"] != 1 || sent("copy") != 0 || keys.count("big", "GetObject") != 0 {
			t.Errorf("requests for copy %v, GETs of big %d; want one UploadPartCopy, one Complete, nothing uploaded, nothing read",
				ops, keys.count("big", "GetObject"))
		}
	})
	t.Run("over an existing file: one CopyObject", func(t *testing.T) {
		before := keys.of("copy")
		cp(m.Path("other"), m.Path("copy"))
		want("copy", other)
		ops := keys.of("copy")
		if ops["CopyObject"]-before["CopyObject"] != 1 || sent("copy") != 0 || keys.count("other", "GetObject") != 0 {
			t.Errorf("requests for copy %v (before %v), GETs of other %d; want one more CopyObject, nothing uploaded or read", ops, before, keys.count("other", "GetObject"))
		}
	})
	t.Run("cp -p: mode and times ride in the copy", func(t *testing.T) {
		// Sources of their own: their chmod's self-copy must not touch
		// the sources of the other cases.
		s3test.PutObjects(t, c, map[string][]byte{"pbig": big, "psmall": []byte("small file\n")})
		time.Sleep(1100 * time.Millisecond) // past the negative window of the names put
		for _, name := range []string{"pbig", "psmall"} {
			if err := os.Chmod(m.Path(name), 0o640); err != nil {
				t.Fatal(err)
			}
			mt := time.Unix(1500000000, 0)
			if err := os.Chtimes(m.Path(name), mt, mt); err != nil {
				t.Fatal(err)
			}
			cp("-p", m.Path(name), m.Path(name+"-p"))
		}
		want("pbig-p", big)
		want("psmall-p", []byte("small file\n"))
		if keys.count("psmall", "GetObject") == 0 || keys.count("pbig", "GetObject") != 0 {
			t.Errorf("GETs of psmall %d, of pbig %d; want psmall read (a new file under 5 MiB is read and written: fewer requests than a copied part) and pbig not",
				keys.count("psmall", "GetObject"), keys.count("pbig", "GetObject"))
		}
		m2 := mountBucket(t, srv, bucket) // what S3 holds, seen afresh
		for _, name := range []string{"pbig-p", "psmall-p"} {
			var st unix.Stat_t
			if err := unix.Stat(m2.Path(name), &st); err != nil {
				t.Fatal(err)
			}
			if st.Mode&0o7777 != 0o640 || st.Mtim.Sec != 1500000000 {
				t.Errorf("%s after remount: mode %o, mtime %d; want 640 and 1500000000", name, st.Mode&0o7777, st.Mtim.Sec)
			}
		}
		time.Sleep(3 * time.Second) // past the 2 s after which a pending change is copied
		for _, name := range []string{"pbig-p", "psmall-p"} {
			if n := keys.count(name, "CopyObject"); n != 0 {
				t.Errorf("%s: %d CopyObject after its close (requests %v); cp -p's changes rode in the commit, none is left to copy", name, n, keys.of(name))
			}
		}
	})
	t.Run("copy, then write more", func(t *testing.T) {
		src, dst := openPair(t, m.Path("big"), m.Path("grown"), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
		n, err := unix.CopyFileRange(src, nil, dst, nil, 1<<30, 0)
		if err != nil || n != len(big) {
			t.Fatalf("copy_file_range: %d, %v; want %d", n, err, len(big))
		}
		if _, err := unix.Write(dst, []byte("tail")); err != nil {
			t.Fatal(err)
		}
		if err := unix.Close(dst); err != nil {
			t.Fatal(err)
		}
		want("grown", append(append([]byte{}, big...), "tail"...))
	})
	// The copy is made at the commit (close): a source replaced since its
	// descriptor pinned it, or an O_EXCL name taken meanwhile, fails the
	// close, never the bytes.
	t.Run("source replaced after open: close answers EIO, destination untouched", func(t *testing.T) {
		src, dst := openPair(t, m.Path("big"), m.Path("target"), unix.O_WRONLY|unix.O_TRUNC)
		s3test.PutObjects(t, c, map[string][]byte{"big": other})
		if n, err := unix.CopyFileRange(src, nil, dst, nil, 1<<30, 0); err != nil || n != len(big) {
			t.Errorf("copy_file_range: %d, %v; want %d (the copy is made at close)", n, err, len(big))
		}
		if err := unix.Close(dst); err != syscall.EIO {
			t.Errorf("close of a copy of a replaced source: %v; want EIO", err)
		}
		want("target", []byte("kept"))
	})
	t.Run("O_EXCL name taken meanwhile: close answers EIO, the other object kept", func(t *testing.T) {
		src, dst := openPair(t, m.Path("other"), m.Path("raced"), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL)
		s3test.PutObjects(t, c, map[string][]byte{"raced": []byte("theirs")})
		if n, err := unix.CopyFileRange(src, nil, dst, nil, 1<<30, 0); err != nil || n != len(other) {
			t.Errorf("copy_file_range: %d, %v; want %d", n, err, len(other))
		}
		if err := unix.Close(dst); err != syscall.EIO {
			t.Errorf("close of a copy onto a name taken meanwhile: %v; want EIO", err)
		}
		want("raced", []byte("theirs"))
	})
	if ids, err := c.ListMultipartUploads(t.Context(), ""); err != nil || len(ids) != 0 {
		t.Errorf("multipart uploads left behind: %v, %v", ids, err)
	}
}

// openPair opens src for reading and dst with flags (0644); src is closed
// at the end of the test, dst by the test.
func openPair(t *testing.T, src, dst string, flags int) (int, int) {
	t.Helper()
	in, err := unix.Open(src, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(in) })
	out, err := unix.Open(dst, flags|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatalf("open %s: %v", filepath.Base(dst), err)
	}
	return in, out
}
