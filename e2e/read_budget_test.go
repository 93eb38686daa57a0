package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestReadMemoryBudget: 32 concurrent sequential readers of 256 MiB objects
// through the bucketfs binary with --read-memory 32MiB (four blocks, where
// 32 unbounded readers could hold 32 x --read-ahead = 2 GiB) and no data
// cache (the default) all read exact bytes, and the daemon's peak RSS
// stays within --read-memory + --upload-memory + the documented fixed
// overhead (README "Limits"), through the page cache (the default) and
// with --direct-io. Without the budget the same run peaks at about 2 GiB;
// without the Go memory limit the daemon derives from the budgets, the
// collector's slack took it 15-100 MiB over. The readers share 8 objects,
// four to each, so that the setup stays short: 8 GiB read in each mode.
func TestReadMemoryBudget(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	const (
		readBudget   = 32 << 20 // --read-memory
		uploadBudget = 16 << 20 // --upload-memory: nothing is written
		objects      = 8
		objectSize   = 256 << 20
		readers      = 32
		slice        = objectSize // what each reader reads, from its offset
	)
	// want[i] is the sha256 of reader i's slice.
	want := make([]string, readers)
	for o := 0; o < objects; o++ {
		data := randomBytes(uint64(100+o), objectSize)
		for r := o; r < readers; r += objects {
			off := (r / objects) * slice % objectSize
			want[r] = sha(data[off : off+slice])
		}
		if _, err := c.Put(context.Background(), fmt.Sprintf("obj%d", o), bytes.NewReader(data), objectSize, s3client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, mode := range [][]string{nil, {"--direct-io"}} {
		t.Run(fmt.Sprintf("flags %q", mode), func(t *testing.T) {
			flags := append([]string{"--read-memory", "32MiB", "--upload-memory", "16MiB"}, mode...)
			mnt, cmd, logs := startBinaryMount(t, srv, bucket, flags...)
			baseline := peakRSS(t, cmd.Process.Pid)
			start := time.Now()
			readConcurrently(t, mnt, readers, objects, slice, objectSize, want)
			if t.Failed() {
				t.Fatalf("bucketfs log:\n%s", tail(logs.String(), 3000))
			}
			elapsed := time.Since(start)
			rss := peakRSS(t, cmd.Process.Pid)
			bound := int64(readBudget + uploadBudget + memoryOverhead)
			t.Logf("%d readers, %d MiB each, in %.1fs (%.0f MB/s); peak RSS %d MiB (at mount %d MiB; bound %d MiB: read %d + upload %d + overhead %d)",
				readers, slice>>20, elapsed.Seconds(), float64(readers*slice)/1e6/elapsed.Seconds(), rss>>20, baseline>>20,
				bound>>20, readBudget>>20, uploadBudget>>20, memoryOverhead>>20)
			if rss > bound {
				t.Fatalf("peak RSS %d MiB exceeds --read-memory %d MiB + --upload-memory %d MiB + overhead %d MiB; bucketfs log (GODEBUG=gctrace=1 shows the heap):\n%s",
					rss>>20, readBudget>>20, uploadBudget>>20, memoryOverhead>>20, tail(logs.String(), 3000))
			}
		})
	}
}

// readConcurrently has readers goroutines read slice bytes each, reader r
// from object r%objects at its own offset, in 1 MiB preads (dd bs=1M, the
// largest FUSE read), and checks each slice against want[r]. It gives up
// after 5 minutes.
func readConcurrently(t *testing.T, mnt string, readers, objects, slice, objectSize int, want []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			f, err := os.Open(fmt.Sprintf("%s/obj%d", mnt, r%objects))
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			h := sha256.New()
			buf := make([]byte, 1<<20)
			off := int64((r / objects) * slice % objectSize)
			left := int64(slice)
			for left > 0 && ctx.Err() == nil {
				n, err := f.ReadAt(buf[:min(int64(len(buf)), left)], off)
				h.Write(buf[:n])
				off += int64(n)
				left -= int64(n)
				if err != nil && !(err == io.EOF && left == 0) {
					errs <- fmt.Errorf("reader %d at %d: %w", r, off, err)
					return
				}
			}
			if ctx.Err() != nil {
				errs <- fmt.Errorf("reader %d: %w", r, ctx.Err())
				return
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != want[r] {
				errs <- fmt.Errorf("reader %d (obj%d at %d MiB): sha256 %s, want %s", r, r%objects, (r/objects)*slice%objectSize>>20, got, want[r])
			}
		}(r)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("%v", err)
	}
}
