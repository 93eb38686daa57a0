package fs

import (
	"bytes"
	"context"
	"testing"
)

// TestReadCacheRereads: re-reading an unchanged object costs GETs only the
// first time while the data cache holds it; another version (a new ETag)
// is read from S3 again, and a mount without the cache GETs every time.
func TestReadCacheRereads(t *testing.T) {
	const size = 64<<20 + 12345 // the last block short
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*13 + i>>11)
	}
	read := func(t *testing.T, bfs *bucketFS, etag string, piece int) {
		t.Helper()
		h := newReadHandle(bfs, "obj", size)
		h.etag = etag
		defer h.Release(context.Background())
		got := make([]byte, 0, size)
		buf := make([]byte, piece)
		for off := int64(0); off < size; {
			res, errno := h.Read(context.Background(), buf, off)
			if errno != 0 {
				t.Fatalf("read at %d: %v", off, errno)
			}
			b, _ := res.Bytes(nil)
			got = append(got, b...)
			off += int64(len(b))
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, not the object's", len(got))
		}
	}
	blocks := int64((size + readBlockSize - 1) / readBlockSize)

	t.Run("cached", func(t *testing.T) {
		client := &memoryObjectClient{data: data}
		bfs, err := newBucketFS(Config{Client: client, Bucket: "cache", CacheMemory: 128 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bfs.close)
		for i, piece := range []int{1 << 20, 128 << 10, 300_001} {
			client.gets.Store(0)
			read(t, bfs, `"v1"`, piece)
			want := int64(0)
			if i == 0 {
				want = blocks
			}
			if got := client.gets.Load(); got != want {
				t.Errorf("read %d of an unchanged object: %d GETs, want %d", i+1, got, want)
			}
		}
		client.gets.Store(0)
		read(t, bfs, `"v2"`, 1<<20)
		if got := client.gets.Load(); got != blocks {
			t.Errorf("a new version: %d GETs, want %d (nothing of the old one)", got, blocks)
		}
		if now, _ := bfs.reads.reserved(); now != 0 {
			t.Errorf("%d bytes of the read budget still reserved", now)
		}
	})

	t.Run("budget spent", func(t *testing.T) {
		// Reads that get no block from the budget are served from cached
		// blocks too.
		client := &memoryObjectClient{data: data}
		bfs, err := newBucketFS(Config{Client: client, Bucket: "cache", CacheMemory: 128 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bfs.close)
		read(t, bfs, `"v1"`, 1<<20)
		bfs.reads.mu.Lock()
		bfs.reads.limit = 0
		bfs.reads.mu.Unlock()
		client.gets.Store(0)
		read(t, bfs, `"v1"`, 1<<20)
		if got := client.gets.Load(); got != 0 {
			t.Errorf("re-read with the budget spent: %d GETs, want 0", got)
		}
	})

	t.Run("off", func(t *testing.T) {
		client := &memoryObjectClient{data: data}
		bfs, err := newBucketFS(Config{Client: client, Bucket: "cache", CacheMemory: 0})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bfs.close)
		read(t, bfs, `"v1"`, 1<<20)
		client.gets.Store(0)
		read(t, bfs, `"v1"`, 1<<20)
		if got := client.gets.Load(); got != blocks {
			t.Errorf("re-read without a cache: %d GETs, want %d", got, blocks)
		}
	})
}
