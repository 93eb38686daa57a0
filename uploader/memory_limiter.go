package uploader

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Part memory comes in chunks. The first part of an upload starts with a
// small chunk and doubles up to chunkSize, so a 1-byte file holds 4 KiB, not
// a part; every later chunk is chunkSize. Chunks of every size from
// firstChunkSize to chunkSize are pooled (a part's last chunk, cut to the
// part's size, is not): small files reuse the small ones, large files the
// large ones, and a steady stream of either allocates nothing.
const (
	chunkSize      = 1 << 20 // the largest chunk
	firstChunkSize = 4 << 10 // the first chunk of an upload's first part
	chunkClasses   = 9       // pooled sizes: firstChunkSize << 0 .. 8 == chunkSize
)

// chunkClass returns the pool of a chunk of size bytes, or -1 for a size
// that is not pooled.
func chunkClass(size int) int {
	for c := 0; c < chunkClasses; c++ {
		if size == firstChunkSize<<c {
			return c
		}
	}
	return -1
}

// chunkLen returns the size of the next chunk of a part whose first chunk is
// first (0: chunkSize) and whose last chunk is last bytes (0: none yet),
// when room bytes of the part's capacity have no chunk yet.
func chunkLen(first, last, room int64) int64 {
	s := first
	switch {
	case last > 0:
		s = min(2*last, chunkSize)
	case s <= 0:
		s = chunkSize
	}
	return min(s, room)
}

// memoryLimiter is the one budget for the part buffers of every upload of a
// mount. Parts reserve it chunk by chunk as they fill, so memory grows with
// the data written, not with the files open. Writers wait while the budget
// is spent; since a waiting writer may hold a half-filled part, writers that
// all wait for each other can never progress: reserve reports that as
// ErrNoMemory once no memory was released for a whole patience period.
type memoryLimiter struct {
	limit int64

	// mu guards used, changed, free and pooled. It is a leaf lock: nothing
	// else is locked while it is held, and it is never held while waiting.
	mu      sync.Mutex
	used    int64         // bytes reserved
	changed chan struct{} // closed (and replaced) whenever used drops
	// free holds chunks to reuse, by chunkClass; pooled counts their bytes.
	// Chunks in use never exceed used, and a chunk is allocated only after
	// pooled chunks were dropped so that used + pooled fits the limit: the
	// memory of the part buffers stays within it.
	free   [chunkClasses][][]byte
	pooled int64
}

func newMemoryLimiter(limit int64) *memoryLimiter {
	return &memoryLimiter{limit: limit, changed: make(chan struct{})}
}

// reserve waits until n bytes fit in the budget. It gives up when ctx ends
// (returning an error that wraps ctx.Err()) or when no memory was released
// for patience (returning ErrNoMemory): the timer restarts at every release,
// so a wait behind slow but progressing uploads never gives up.
func (l *memoryLimiter) reserve(ctx context.Context, n int64, patience time.Duration) error {
	if n <= 0 {
		return nil
	}
	if n > l.limit {
		return fmt.Errorf("%d bytes exceed the upload memory budget of %d", n, l.limit)
	}
	l.mu.Lock()
	if l.used+n <= l.limit {
		l.used += n
		l.mu.Unlock()
		return nil
	}
	timer := time.NewTimer(patience)
	defer timer.Stop()
	for l.used+n > l.limit {
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
			timer.Reset(patience)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d bytes of upload memory: %w", n, ctx.Err())
		case <-timer.C:
			return ErrNoMemory
		}
		l.mu.Lock()
	}
	l.used += n
	l.mu.Unlock()
	return nil
}

// release returns n reserved bytes, pools the chunks of cs that have a
// pooled size, and wakes the writers waiting for memory.
func (l *memoryLimiter) release(n int64, cs [][]byte) {
	l.mu.Lock()
	for _, c := range cs {
		if k := chunkClass(len(c)); k >= 0 {
			l.free[k] = append(l.free[k], c)
			l.pooled += int64(len(c))
		}
	}
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

// chunk returns a chunk of size bytes to fill, reused when one is pooled.
// The caller must hold a reservation covering it.
func (l *memoryLimiter) chunk(size int64) []byte {
	k := chunkClass(int(size))
	l.mu.Lock()
	defer l.mu.Unlock()
	if k >= 0 {
		if n := len(l.free[k]); n > 0 {
			c := l.free[k][n-1]
			l.free[k][n-1] = nil
			l.free[k] = l.free[k][:n-1]
			l.pooled -= size
			return c
		}
	}
	// A new chunk: make room for it among the pooled ones first.
	for k := 0; k < chunkClasses && l.used+l.pooled > l.limit; k++ {
		for len(l.free[k]) > 0 && l.used+l.pooled > l.limit {
			n := len(l.free[k])
			l.pooled -= int64(len(l.free[k][n-1]))
			l.free[k][n-1] = nil
			l.free[k] = l.free[k][:n-1]
		}
	}
	return make([]byte, size)
}

// drop lets the garbage collector have the pooled chunks.
func (l *memoryLimiter) drop() {
	l.mu.Lock()
	l.free = [chunkClasses][][]byte{}
	l.pooled = 0
	l.mu.Unlock()
}
