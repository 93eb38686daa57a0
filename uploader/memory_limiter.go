package uploader

import (
	"context"
	"fmt"
	"sync"
)

// chunkSize is the unit of part memory: parts are lists of chunks, so a
// 3-byte file holds one chunk, not a whole part.
const chunkSize = 1 << 20

// memoryLimiter is the one budget for the part buffers of every upload of a
// mount. A part reserves its whole size before its first byte is buffered
// (chunks are then taken lazily), so a writer never waits for memory while
// holding a half-filled part: N writers cannot deadlock each other.
type memoryLimiter struct {
	limit int64

	mu      sync.Mutex    // guards used, changed and free
	used    int64         // bytes reserved
	changed chan struct{} // closed (and replaced) whenever used drops
	free    [][]byte      // chunks to reuse; at most limit/chunkSize exist
}

func newMemoryLimiter(limit int64) *memoryLimiter {
	return &memoryLimiter{limit: limit, changed: make(chan struct{})}
}

// reserve waits until n bytes fit in the budget, or ctx ends.
func (l *memoryLimiter) reserve(ctx context.Context, n int64) error {
	if n > l.limit {
		return fmt.Errorf("a part of %d bytes exceeds the upload memory budget of %d", n, l.limit)
	}
	l.mu.Lock()
	for l.used+n > l.limit {
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		l.mu.Lock()
	}
	l.used += n
	l.mu.Unlock()
	return nil
}

// release returns n reserved bytes and wakes the writers waiting for them.
func (l *memoryLimiter) release(n int64) {
	l.mu.Lock()
	l.used -= n
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// reserved returns the bytes reserved now.
func (l *memoryLimiter) reserved() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used
}

// chunk returns a chunk to fill, reused when one is free. The caller must
// hold a reservation covering it.
func (l *memoryLimiter) chunk() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		c := l.free[n-1]
		l.free = l.free[:n-1]
		return c
	}
	return make([]byte, chunkSize)
}

// putChunks keeps chunks for reuse.
func (l *memoryLimiter) putChunks(cs [][]byte) {
	l.mu.Lock()
	l.free = append(l.free, cs...)
	l.mu.Unlock()
}

// drop lets the garbage collector have the free chunks.
func (l *memoryLimiter) drop() {
	l.mu.Lock()
	l.free = nil
	l.mu.Unlock()
}
