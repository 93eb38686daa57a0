package fs

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
)

// readAt reads n bytes at off through h as the kernel sends them with
// direct I/O: in pieces of at most 1 MiB.
func readAt(t *testing.T, h *readHandle, off int64, n int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	for len(out) < n {
		piece := min(n-len(out), 1<<20)
		res, errno := h.Read(context.Background(), make([]byte, piece), off+int64(len(out)))
		if errno != 0 {
			t.Fatalf("read %d at %d: %v", piece, off+int64(len(out)), errno)
		}
		b, _ := res.Bytes(nil)
		if len(b) == 0 {
			break
		}
		out = append(out, b...)
	}
	return out
}

// TestReadHeuristics: a random read is one GET whatever its size (after the
// handle has seen one of that size), a sequential read uses read-ahead
// blocks, and every read returns exactly the object's bytes.
func TestReadHeuristics(t *testing.T) {
	const size = 64 << 20
	bfs := newBenchFS(t, size)
	client := bfs.client.(*memoryObjectClient)
	data := client.data
	check := func(got []byte, off int64) {
		t.Helper()
		if !bytes.Equal(got, data[off:off+int64(len(got))]) {
			t.Fatalf("bytes at %d differ", off)
		}
	}

	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for _, n := range []int{4 << 10, 1 << 20, 3 << 20} {
			h := newReadHandle(bfs, "obj", size)
			first := rng.Int64N(size - int64(n))
			check(readAt(t, h, first, n), first) // the handle learns the length
			client.gets.Store(0)
			const reads = 20
			for i := 0; i < reads; i++ {
				off := rng.Int64N(size - int64(n))
				got := readAt(t, h, off, n)
				if len(got) != n {
					t.Fatalf("read %d at %d: got %d bytes", n, off, len(got))
				}
				check(got, off)
			}
			// At most one each: a read that falls in the last one's block
			// costs nothing, or one GET of the rest. One more is allowed:
			// the first read may have started a read-ahead fetch whose GET
			// lands after the counter was reset (seen under load).
			if gets := client.gets.Load(); gets > reads+1 {
				t.Errorf("%d random reads of %d bytes: %d GETs, want at most %d", reads, n, gets, reads+1)
			}
			h.Release(context.Background())
		}
	})

	t.Run("sequential", func(t *testing.T) {
		h := newReadHandle(bfs, "obj", size)
		defer h.Release(context.Background())
		client.gets.Store(0)
		got := readAt(t, h, 0, size)
		if len(got) != size {
			t.Fatalf("read %d bytes of %d", len(got), size)
		}
		check(got, 0)
		if gets, blocks := client.gets.Load(), int64(size/readBlockSize); gets > blocks {
			t.Errorf("sequential read of %d MiB: %d GETs, want at most %d (one per read-ahead block)", size>>20, gets, blocks)
		}
	})

	t.Run("read past a random block", func(t *testing.T) {
		// A read that starts inside the last random block and runs past it
		// gets the rest fetched (it once failed with EIO).
		h := newReadHandle(bfs, "obj", size)
		defer h.Release(context.Background())
		check(readAt(t, h, 10<<20, 1<<20), 10<<20)
		off := int64(10<<20 + 512<<10)
		check(readAt(t, h, off, 1<<20), off)
	})
}
