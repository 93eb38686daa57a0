// Package cache holds bucketfs's performance caches, built on ristretto.
// A cache here is never a source of truth: an item may be refused or dropped
// at any time, and a miss always leads back to S3.
package cache

import (
	"fmt"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// TTL is a bounded cache whose items expire after a fixed time.
type TTL[V any] struct {
	c   *ristretto.Cache[string, V]
	ttl time.Duration
}

// NewTTL returns a cache of at most maxItems items, each kept for ttl.
func NewTTL[V any](maxItems int64, ttl time.Duration) (*TTL[V], error) {
	if maxItems < 1 {
		maxItems = 1
	}
	c, err := ristretto.NewCache(&ristretto.Config[string, V]{
		NumCounters:        maxItems * 10,
		MaxCost:            maxItems,
		BufferItems:        64,
		IgnoreInternalCost: true, // cost 1 per item: MaxCost counts items
	})
	if err != nil {
		return nil, fmt.Errorf("creating cache: %w", err)
	}
	return &TTL[V]{c: c, ttl: ttl}, nil
}

// Get returns the value of key, if cached and not expired.
func (t *TTL[V]) Get(key string) (V, bool) {
	return t.c.Get(key)
}

// Set caches value under key. Ristretto applies sets asynchronously; Set
// waits so that the next Get sees it (a reader right after a writer must).
func (t *TTL[V]) Set(key string, value V) {
	t.c.SetWithTTL(key, value, 1, t.ttl)
	t.c.Wait()
}

// SetMany caches many values and waits once, for a listing's entries.
func (t *TTL[V]) SetMany(values map[string]V) {
	for k, v := range values {
		t.c.SetWithTTL(k, v, 1, t.ttl)
	}
	t.c.Wait()
}

// Delete removes key.
func (t *TTL[V]) Delete(key string) {
	t.c.Del(key)
	t.c.Wait()
}

// Clear removes every item.
func (t *TTL[V]) Clear() {
	t.c.Clear()
}

// Close stops the cache's goroutines.
func (t *TTL[V]) Close() {
	t.c.Close()
}
