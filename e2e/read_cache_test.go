package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

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
		pageCache bool
		configure func(*bfs.Config)
	}{
		{"page cache", true, func(*bfs.Config) {}},
		{"direct I/O and --cache-memory", false, func(cfg *bfs.Config) { cfg.DirectIO, cfg.CacheMemory = true, 1<<30 }},
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
				// The kernel may drop clean page-cache folios at any
				// time: reclaim under memory pressure (other tests, other
				// jobs), and, seen here right after other test runs, a
				// few scattered 16-64 KiB folios with no reclaim counted
				// (compaction). What it no longer holds is read again. A
				// re-read that cost a few GETs is tried again (at most 4
				// times, each must cost none); one that read the object
				// whole again (the cache dropped at an open or by a
				// notification, our bug) fails at once.
				for attempt := 1; ; attempt++ {
					var missing int
					if i > 0 && tc.pageCache {
						var resident, pages int
						resident, pages, missing = pageCacheResidency(t, m.Path("big.bin"), 8<<20)
						if resident < pages/2 {
							t.Fatalf("before re-read %d: %d of %d pages in the page cache: dropped at an open or by a notification?", i, resident, pages)
						}
						if missing > 0 {
							t.Logf("before re-read %d: the kernel reclaimed %d pages of %d (in %d blocks)", i, pages-resident, pages, missing)
						}
					}
					stolen := filePagesReclaimed(t)
					m.Counter.Reset()
					start := time.Now()
					got := ddSHA(t, m.Path("big.bin"))
					if got != want {
						t.Fatalf("read %d: sha256 %s, want %s", i+1, got, want)
					}
					gets := m.Counter.Snapshot()["GetObject"]
					reclaimed := filePagesReclaimed(t) - stolen
					t.Logf("read %d of 512 MiB: %d GETs, %.2fs (file pages the kernel reclaimed meanwhile: %d)", i+1, gets, time.Since(start).Seconds(), reclaimed)
					// A block read again may bring the read-ahead window
					// (64 MiB, 8 blocks) with it.
					if i == 0 {
						if gets < size/(8<<20) {
							t.Fatalf("first read: %d GETs, want at least one per block", gets)
						}
						break
					}
					if gets <= int64(missing*8) {
						break
					}
					if !tc.pageCache || gets >= size/(8<<20) || attempt == 4 {
						t.Fatalf("re-read %d of an unchanged object: %d GETs, want %d (the page cache lacked %d blocks; %d file pages reclaimed during the read)", i, gets, missing*8, missing, reclaimed)
					}
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

// ddSHA reads path with dd in 1 MiB reads, as a user would, and returns the
// sha256 of what it read; nothing is written to disk.
func ddSHA(t testing.TB, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h := sha256.New()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "dd", "if="+path, "bs=1M")
	cmd.Stdout, cmd.Stderr = h, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dd if=%s: %v\n%s", path, err, stderr.String())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pageCacheResidency maps path and asks the kernel (mincore) which of its
// pages the page cache holds: resident of pages, and how many blocks of
// blockSize bytes lack at least one.
func pageCacheResidency(t testing.TB, path string, blockSize int) (resident, pages, missingBlocks int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap %s: %v", path, err)
	}
	defer unix.Munmap(mem)
	pageSize := os.Getpagesize()
	vec := make([]byte, (len(mem)+pageSize-1)/pageSize)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore %s: %v", path, errno)
	}
	perBlock := blockSize / pageSize
	lacking := map[int]bool{}
	for i, v := range vec {
		if v&1 != 0 {
			resident++
		} else {
			lacking[i/perBlock] = true
		}
	}
	return resident, len(vec), len(lacking)
}

// filePagesReclaimed returns how many file pages the kernel has reclaimed
// since boot (pgsteal_file in /proc/vmstat), to tell its reclaim from a
// cache our code dropped.
func filePagesReclaimed(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "pgsteal_file "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("/proc/vmstat: %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatal("/proc/vmstat has no pgsteal_file")
	return 0
}
