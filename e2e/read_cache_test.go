package e2e

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestReadCache: re-reading a 512 MiB object three times costs GETs only
// the first time: through the kernel's page cache, kept across opens while
// the ETag is unchanged (the default), and with direct I/O through
// --cache-memory. Once another client replaced the object, the next read
// GETs the new version whole, never the old version's pages or blocks.
func TestReadCache(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	const size = 512 << 20
	for _, tc := range []struct {
		name      string
		configure func(*bfs.Config)
	}{
		{"page cache", func(*bfs.Config) {}},
		{"direct I/O and --cache-memory", func(cfg *bfs.Config) { cfg.DirectIO, cfg.CacheMemory = true, 1<<30 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket, c := srv.Bucket(t)
			data := randomBytes(11, size)
			if _, err := c.Put(context.Background(), "big.bin", bytes.NewReader(data), size, s3client.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			want := sha(data)
			m := mountBucket(t, srv, bucket, tc.configure)
			for i := 0; i < 3; i++ {
				m.Counter.Reset()
				start := time.Now()
				out := filepath.Join(t.TempDir(), "dd.out")
				run(t, "dd", "if="+m.Path("big.bin"), "of="+out, "bs=1M")
				if got := shaFile(t, out); got != want {
					t.Fatalf("read %d: sha256 %s, want %s", i+1, got, want)
				}
				gets := m.Counter.Snapshot()["GetObject"]
				t.Logf("read %d of 512 MiB: %d GETs, %.2fs", i+1, gets, time.Since(start).Seconds())
				switch {
				case i == 0 && gets < size/(8<<20):
					t.Fatalf("first read: %d GETs, want at least one per block", gets)
				case i > 0 && gets != 0:
					t.Fatalf("re-read %d of an unchanged object: %d GETs, want 0", i, gets)
				}
			}

			// Another client replaces it: what is cached is of the old ETag.
			data = randomBytes(12, size)
			if _, err := c.Put(context.Background(), "big.bin", bytes.NewReader(data), size, s3client.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1100 * time.Millisecond) // past the open's revalidation bound
			m.Counter.Reset()
			if got := shaFile(t, m.Path("big.bin")); got != sha(data) {
				t.Fatalf("after an outside overwrite: sha256 %s, want the new object's", got)
			}
			if gets := m.Counter.Snapshot()["GetObject"]; gets < size/(8<<20) {
				t.Fatalf("the new version was read with %d GETs: served from the old version's pages or blocks?", gets)
			}
		})
	}
}
