package fs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// slowObjectClient delays every GET a little, so that the blocks of many
// readers are in flight together, as they are against S3.
type slowObjectClient struct {
	*memoryObjectClient
}

func (c slowObjectClient) GetRange(ctx context.Context, key string, offset, length int64, ifMatch string) (io.ReadCloser, error) {
	select {
	case <-time.After(time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.memoryObjectClient.GetRange(ctx, key, offset, length, ifMatch)
}

// TestReadMemoryBudget: 32 concurrent sequential readers under a budget of
// a few blocks all read exact bytes, the blocks they hold together never
// exceed the budget (nor do held and kept buffers), and every byte returns
// to the budget when the handles are released. With a budget smaller than
// a block, every read is one direct GET and still exact.
func TestReadMemoryBudget(t *testing.T) {
	const (
		size    = 24 << 20 // three blocks, the last one short
		readers = 32
	)
	data := make([]byte, size+123)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	for _, tc := range []struct {
		name   string
		budget int64
	}{
		{"4 blocks", 4 * readBlockSize},
		{"1 block", readBlockSize},
		{"less than a block", 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := &memoryObjectClient{data: data}
			bfs, err := newBucketFS(Config{Client: slowObjectClient{client}, Bucket: "budget", ReadMemory: tc.budget})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(bfs.close)
			var wg sync.WaitGroup
			errs := make(chan error, readers)
			for i := 0; i < readers; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					// Pieces as the kernel sends them: 128 KiB (cat), 1 MiB
					// (dd bs=1M), and an odd size.
					piece := []int{128 << 10, 1 << 20, 300_001}[i%3]
					h := newReadHandle(bfs, fmt.Sprintf("obj%d", i), int64(len(data)))
					defer h.Release(context.Background())
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					got := make([]byte, 0, len(data))
					buf := make([]byte, piece)
					for off := int64(0); ; {
						res, errno := h.Read(ctx, buf, off)
						if errno != 0 {
							errs <- fmt.Errorf("reader %d: read at %d: %v", i, off, errno)
							return
						}
						b, _ := res.Bytes(nil)
						if len(b) == 0 {
							break
						}
						got = append(got, b...)
						off += int64(len(b))
					}
					if !bytes.Equal(got, data) {
						errs <- fmt.Errorf("reader %d (pieces of %d): %d bytes read, not the object's %d", i, piece, len(got), len(data))
					}
				}(i)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			_, peak := bfs.reads.reserved()
			t.Logf("%d readers of %d MiB, budget %d MiB: peak reserved %d MiB, %d GETs",
				readers, size>>20, tc.budget>>20, peak>>20, client.gets.Load())
			if peak > tc.budget {
				t.Errorf("peak reserved %d bytes exceeds the budget of %d", peak, tc.budget)
			}
			if tc.budget >= readBlockSize && peak == 0 {
				t.Errorf("no block was ever reserved: read-ahead did not run")
			}
			// Released blocks go back once their fetches end.
			deadline := time.Now().Add(10 * time.Second)
			for {
				now, _ := bfs.reads.reserved()
				if now == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d bytes still reserved after every handle was released", now)
				}
				time.Sleep(5 * time.Millisecond)
			}
			bfs.reads.mu.Lock()
			kept, holders := int64(len(bfs.reads.free))*readBlockSize, bfs.reads.holders
			bfs.reads.mu.Unlock()
			if kept > tc.budget || holders != 0 {
				t.Errorf("after release: %d bytes kept for reuse (budget %d), %d holders", kept, tc.budget, holders)
			}
		})
	}
}

// TestReadBudgetSingleReader: one reader alone gets its whole read-ahead
// window from the budget (the fair share does not shrink it), so the GET
// count of a sequential read stays one per block.
func TestReadBudgetSingleReader(t *testing.T) {
	const size = 64 << 20
	bfs := newBenchFS(t, size)
	client := bfs.client.(*memoryObjectClient)
	h := newReadHandle(bfs, "obj", size)
	defer h.Release(context.Background())
	if got := readAt(t, h, 0, size); !bytes.Equal(got, client.data) {
		t.Fatal("bytes differ")
	}
	_, peak := bfs.reads.reserved()
	if gets := client.gets.Load(); gets != size/readBlockSize {
		t.Errorf("%d GETs, want %d", gets, size/readBlockSize)
	}
	if peak < 2*readBlockSize || peak > bfs.cfg.ReadAhead+readBlockSize {
		t.Errorf("peak reserved %d MiB: want a window of several blocks, at most --read-ahead", peak>>20)
	}
}
