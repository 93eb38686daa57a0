package cache

import (
	"bytes"
	"testing"
)

// TestBlocksByVersion: a block is found under the key, ETag and index it
// was stored with, never under another version's ETag, and the cache keeps
// no more bytes than its budget.
func TestBlocksByVersion(t *testing.T) {
	const block = 1 << 10
	c, err := NewBlocks(4*block, block)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := bytes.Repeat([]byte{7}, block)
	c.Set("k", `"v1"`, 0, data)
	if got, ok := c.Get("k", `"v1"`, 0); !ok || !bytes.Equal(got, data) {
		t.Fatalf("Get after Set: %v, %v", len(got), ok)
	}
	for _, miss := range []struct {
		key, etag string
		index     int64
	}{{"k", `"v2"`, 0}, {"k", `"v1"`, 1}, {"other", `"v1"`, 0}} {
		if _, ok := c.Get(miss.key, miss.etag, miss.index); ok {
			t.Errorf("Get(%q, %s, %d) hit a block stored for k, \"v1\", 0", miss.key, miss.etag, miss.index)
		}
	}
	for i := int64(1); i < 20; i++ {
		c.Set("k", `"v1"`, i, bytes.Repeat([]byte{byte(i)}, block))
	}
	held := 0
	for i := int64(0); i < 20; i++ {
		if _, ok := c.Get("k", `"v1"`, i); ok {
			held++
		}
	}
	if held > 4 {
		t.Errorf("%d blocks of %d bytes held in a cache of %d bytes", held, block, 4*block)
	}
}
