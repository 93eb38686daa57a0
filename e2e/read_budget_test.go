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

// fuseReadBuffers is what one read request in flight may cost beyond the
// fixed overhead: go-fuse's request buffer (max_write, 1 MiB) and reply
// buffer (max_read, 1 MiB, into which a read that no block covers is
// fetched directly), counted twice because go-fuse keeps them in
// sync.Pools, which every garbage collection empties, and Go's collector
// lets garbage grow as large as the live heap before it runs.
const fuseReadBuffers = 2 * 2 << 20

// TestReadMemoryBudget: 32 concurrent sequential readers of 256 MiB objects
// through the bucketfs binary with --read-memory 32MiB (four blocks, where
// 32 unbounded readers could hold 32 x --read-ahead = 2 GiB) and no data
// cache (the default) all read exact bytes, and the daemon's peak RSS
// stays within the budget plus the
// documented fixed overhead plus go-fuse's buffers of each read in flight
// (README "Limits"). Without the budget the same run peaks at about 2 GiB.
// The readers share 8 objects, four to each, so that the setup stays
// short: 8 GiB read in all.
func TestReadMemoryBudget(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	const (
		budget     = 32 << 20 // --read-memory
		objects    = 8
		objectSize = 256 << 20
		readers    = 32
		slice      = objectSize // what each reader reads, from its offset
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
	mnt, cmd, logs := startBinaryMount(t, srv, bucket, "--read-memory", "32MiB")
	baseline := peakRSS(t, cmd.Process.Pid)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
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
			buf := make([]byte, 1<<20) // dd bs=1M: the largest FUSE read
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
	if t.Failed() {
		t.Fatalf("bucketfs log:\n%s", tail(logs.String(), 3000))
	}
	elapsed := time.Since(start)
	rss := peakRSS(t, cmd.Process.Pid)
	t.Logf("%d readers, %d MiB each, in %.1fs (%.0f MB/s); peak RSS %d MiB (at mount %d MiB; budget %d MiB + overhead %d MiB + FUSE buffers %d MiB)",
		readers, slice>>20, elapsed.Seconds(), float64(readers*slice)/1e6/elapsed.Seconds(), rss>>20, baseline>>20, budget>>20, memoryOverhead>>20, readers*fuseReadBuffers>>20)
	if bound := budget + memoryOverhead + readers*fuseReadBuffers; rss > int64(bound) {
		t.Fatalf("peak RSS %d MiB exceeds --read-memory %d MiB + overhead %d MiB + %d reads in flight x %d MiB",
			rss>>20, budget>>20, memoryOverhead>>20, readers, fuseReadBuffers>>20)
	}
}
