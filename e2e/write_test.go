package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// fileSHA returns the checksum of a key read directly from S3 (not the mount).
func objectSHA(t testing.TB, c s3client.API, key string) string {
	t.Helper()
	return sha(s3test.GetObject(t, c, key))
}

func writeSource(t testing.TB, seed uint64, size int) (string, string) {
	t.Helper()
	data := randomBytes(seed, size)
	p := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, sha(data)
}

// TestStreamingWrites: dd and cp through the mount, verified by a direct GET.
func TestStreamingWrites(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	m := mountBucket(t, srv, bucket, func(cfg *bfs.Config) { cfg.Upload.PartSize = 8 << 20 })

	for _, tc := range []struct {
		name string
		size int
		args []string // dd arguments besides if/of
	}{
		{"dd 1GiB bs=1M", 1 << 30, []string{"bs=1M"}},
		{"dd 50MiB bs=4k", 50 << 20, []string{"bs=4k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, want := writeSource(t, uint64(tc.size), tc.size)
			m.Counter.Reset()
			key := "dd-" + tc.args[0]
			start := time.Now()
			run(t, "dd", append([]string{"if=" + src, "of=" + m.Path(key)}, tc.args...)...)
			t.Logf("%s: %.0f MB/s, requests %v", tc.name, float64(tc.size)/1e6/time.Since(start).Seconds(), m.Counter.Snapshot())
			if got := objectSHA(t, m.Client, key); got != want {
				t.Fatalf("object differs from what dd wrote")
			}
			if st := statT(t, m.Path(key)); st.Size != int64(tc.size) {
				t.Fatalf("stat size %d", st.Size)
			}
			counts := m.Counter.Snapshot()
			if counts["CreateMultipartUpload"] != 1 || counts["CompleteMultipartUpload"] != 1 {
				t.Fatalf("requests %v: want one multipart upload", counts)
			}
		})
	}
	t.Run("cp 300MiB", func(t *testing.T) {
		src, want := writeSource(t, 3, 300<<20)
		run(t, "cp", src, m.Path("cp.bin"))
		if got := objectSHA(t, m.Client, "cp.bin"); got != want {
			t.Fatalf("object differs from the copied file")
		}
	})
	t.Run("small and empty", func(t *testing.T) {
		m.Counter.Reset()
		small := randomBytes(4, 3<<20)
		if err := os.WriteFile(m.Path("small.bin"), small, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(m.Path("empty"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		// A file closed empty is published at its last close (RELEASE),
		// which the kernel sends after close() returned; an open for
		// reading through the mount waits for it.
		if b, err := os.ReadFile(m.Path("empty")); err != nil || len(b) != 0 {
			t.Fatalf("reading the empty file: %d bytes, %v", len(b), err)
		}
		counts := m.Counter.Snapshot()
		if counts["CreateMultipartUpload"] != 0 || counts["PutObject"] != 2 {
			t.Fatalf("small files cost %v: want two PutObject and no multipart upload", counts)
		}
		if !bytes.Equal(s3test.GetObject(t, c, "small.bin"), small) {
			t.Fatal("small.bin differs")
		}
		if b := s3test.GetObject(t, c, "empty"); len(b) != 0 {
			t.Fatalf("empty object has %d bytes", len(b))
		}
		if st := statT(t, m.Path("empty")); st.Size != 0 {
			t.Fatalf("empty file has size %d", st.Size)
		}
	})
	t.Run("overwrite", func(t *testing.T) {
		old := randomBytes(5, 20<<20)
		if err := os.WriteFile(m.Path("over.bin"), old, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(m.Path("over.bin"), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		// While the new upload streams, readers of the bucket see the old object whole.
		newData := randomBytes(6, 12<<20)
		if _, err := f.Write(newData[:9<<20]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s3test.GetObject(t, c, "over.bin"), old) {
			t.Fatal("the old object changed before the new upload completed")
		}
		if _, err := f.Write(newData[9<<20:]); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s3test.GetObject(t, c, "over.bin"), newData) {
			t.Fatal("overwrite: object differs")
		}
		b, err := os.ReadFile(m.Path("over.bin"))
		if err != nil || !bytes.Equal(b, newData) {
			t.Fatalf("read back through the mount: %d bytes, %v", len(b), err)
		}
	})
}

// TestWhileWriting: a file being written is listed with its current size;
// a second writer and a reader share it, seeing what was written.
func TestWhileWriting(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)
	m := mountBucket(t, srv, bucket)
	if err := os.Mkdir(m.Path("dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(m.Path("dir/growing"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 6<<20)); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(m.Path("dir"))
	if err != nil || len(entries) != 1 || entries[0].Name() != "growing" {
		t.Fatalf("listing while writing: %v, %v", entries, err)
	}
	if info, err := entries[0].Info(); err != nil || info.Size() != 6<<20 {
		t.Fatalf("listed size while writing: %v, %v", info, err)
	}
	if st := statT(t, m.Path("dir/growing")); st.Size != 6<<20 {
		t.Fatalf("stat size while writing: %d", st.Size)
	}
	// A second writer shares the file (it is staged): its write lands in
	// what the first one wrote, and a reader sees both, before any commit.
	second, err := os.OpenFile(m.Path("dir/growing"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("second writer: %v", err)
	}
	if _, err := second.WriteAt([]byte("X"), 1<<20); err != nil {
		t.Fatalf("second writer's write: %v", err)
	}
	reader, err := os.Open(m.Path("dir/growing"))
	if err != nil {
		t.Fatalf("reader while writing: %v", err)
	}
	got, err := io.ReadAll(reader)
	reader.Close()
	want := make([]byte, 6<<20)
	want[1<<20] = 'X'
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("reader while writing: %d bytes (want %d, X at 1 MiB: %v), %v", len(got), len(want), len(got) > 1<<20 && got[1<<20] == 'X', err)
	}
	if err := second.Close(); err != nil {
		t.Fatalf("second writer's close: %v", err)
	}
	// fsync completes the upload: the object exists with what was written.
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if info, err := m.Client.Head(context.Background(), "dir/growing"); err != nil || info.Size != 6<<20 {
		t.Fatalf("after fsync: %v, %v", info, err)
	}
	// A write after fsync reopens the object: the next commit holds both.
	if _, err := f.Write([]byte("more")); err != nil {
		t.Fatalf("write after fsync: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close after a write after fsync: %v", err)
	}
	if info, err := m.Client.Head(context.Background(), "dir/growing"); err != nil || info.Size != 6<<20+4 {
		t.Fatalf("after close: %v, %v", info, err)
	}
	want = append(want, "more"...)
	if !bytes.Equal(s3test.GetObject(t, m.Client, "dir/growing"), want) {
		t.Fatal("the object differs from what the two writers wrote")
	}
}

// TestCompleteFailureIsEIO: a CompleteMultipartUpload answered with a 200
// whose body is an <Error> makes close() fail with EIO, and leaves neither an
// object nor an upload behind.
func TestCompleteFailureIsEIO(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	m := mountBucket(t, srv, bucket, func(cfg *bfs.Config) { cfg.Upload.PartSize = 5 << 20 })
	rule := m.Faults.Add(s3test.Rule{Op: "CompleteMultipartUpload", Fault: s3test.Fault{
		Body: "\n   \n   " + s3test.ErrorBody("InternalError", "We encountered an internal error. Please try again."),
	}})
	f, err := os.Create(m.Path("doomed.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randomBytes(8, 12<<20)); err != nil {
		t.Fatal(err)
	}
	err = f.Close()
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("close() = %v, want EIO", err)
	}
	if m.Faults.Hits(rule) == 0 {
		t.Fatal("the fault was never injected")
	}
	if _, err := c.Head(context.Background(), "doomed.bin"); !errors.Is(err, s3client.ErrNotFound) {
		t.Fatalf("object after a failed upload: %v", err)
	}
	uploads, err := c.ListMultipartUploads(context.Background(), "")
	if err != nil || len(uploads) != 0 {
		t.Fatalf("uploads left behind: %v, %v", uploads, err)
	}
	log := m.Log.String()
	for _, want := range []string{"InternalError", "upload_id=", "key=doomed.bin"} {
		if !bytes.Contains([]byte(log), []byte(want)) {
			t.Errorf("log lacks %q:\n%s", want, tail(log, 3000))
		}
	}
	if _, err := os.Stat(m.Path("doomed.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat after a failed upload: %v, want ENOENT", err)
	}
}
