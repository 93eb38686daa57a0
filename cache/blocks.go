package cache

import (
	"fmt"
	"strconv"

	"github.com/dgraph-io/ristretto/v2"
)

// Blocks caches blocks of objects' data, within a budget of bytes. A block
// is named by its object's key, the ETag of the version it was read from
// and its index, so a changed object (a new ETag) never hits an old block:
// its blocks simply age out. Blocks are shared and must not be modified.
type Blocks struct {
	c *ristretto.Cache[string, []byte]
}

// NewBlocks returns a cache of at most maxBytes bytes of blocks of about
// blockSize bytes each.
func NewBlocks(maxBytes, blockSize int64) (*Blocks, error) {
	items := max(maxBytes/max(blockSize, 1), 1)
	c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
		NumCounters:        max(items*10, 1000),
		MaxCost:            max(maxBytes, 1),
		BufferItems:        64,
		IgnoreInternalCost: true, // cost is the block's length: MaxCost counts bytes
	})
	if err != nil {
		return nil, fmt.Errorf("creating the block cache: %w", err)
	}
	return &Blocks{c: c}, nil
}

func blockKey(key, etag string, index int64) string {
	return key + "\x00" + etag + "\x00" + strconv.FormatInt(index, 10)
}

// Get returns block index of version etag of key, if cached.
func (b *Blocks) Get(key, etag string, index int64) ([]byte, bool) {
	return b.c.Get(blockKey(key, etag, index))
}

// Set caches data as block index of version etag of key. The cache may
// refuse it; it owns data from now on. Set waits until a Get can see it.
func (b *Blocks) Set(key, etag string, index int64, data []byte) {
	b.c.Set(blockKey(key, etag, index), data, int64(len(data)))
	b.c.Wait()
}

// Close stops the cache's goroutines.
func (b *Blocks) Close() {
	b.c.Close()
}
