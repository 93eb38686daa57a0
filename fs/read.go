package fs

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/core"
)

// readHandle serves reads of one open file with ranged GETs. A sequential
// reader gets parallel read-ahead: blocks of readBlockSize fetched ahead of
// it, the window doubling while the reads stay sequential, up to ReadAhead
// bytes.
//
// A random read is one GET. The kernel cuts an application's read into FUSE
// reads of at most 1 MiB (direct I/O; see fileNode.Open), so a 3 MiB pread
// arrives as a run of three contiguous reads, which must not look like a
// sequential scan. The handle learns the length of the last run of
// contiguous reads and fetches that much in one GET when a read jumps
// elsewhere: the reads of the run are then served from that block. Only a
// run that goes on past it starts read-ahead.
//
// The handle owns its prefetch goroutines: each fetches one block and ends;
// Release cancels those still running.
type readHandle struct {
	b    *bucketFS
	key  string
	size int64

	ctx    context.Context // lives as long as the handle; prefetches use it
	cancel context.CancelFunc

	mu        sync.Mutex   // guards the fields below; held while a read waits for its block
	blocks    []*readBlock // consecutive blocks, in flight or done, ascending
	nextFetch int64        // where the next prefetched block starts
	window    int          // blocks to keep ahead of the reader
	lastEnd   int64        // end of the last read served, to tell sequential access
	runStart  int64        // where the current run of contiguous reads began
	runLen    int64        // length of the last finished run: what a random read fetches
}

var (
	_ gofs.FileReader   = (*readHandle)(nil)
	_ gofs.FileReleaser = (*readHandle)(nil)
	_ gofs.FileFsyncer  = (*readHandle)(nil)
)

// readBlock is one prefetched range of the object.
type readBlock struct {
	off, n int64
	buf    *[]byte // the block's bytes; written only by its fetch until done closes
	pooled bool    // buf came from bucketFS.blocks and goes back there once done and dropped
	done   chan struct{}
	err    error // set before done is closed
	cancel context.CancelFunc
}

// reorderSlack is how far behind the newest read a block is kept, because
// the kernel may send a handle's reads slightly out of order.
const reorderSlack = 2 << 20

func newReadHandle(b *bucketFS, key string, size int64) *readHandle {
	ctx, cancel := context.WithCancel(context.Background())
	return &readHandle{b: b, key: key, size: size, ctx: ctx, cancel: cancel}
}

func (h *readHandle) maxWindow() int {
	w := int(h.b.cfg.ReadAhead / readBlockSize)
	if w < 1 {
		w = 1
	}
	return w
}

// Read implements gofs.FileReader.
func (h *readHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= h.size || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	want := int64(len(dest))
	if off+want > h.size {
		want = h.size - off
	}
	h.mu.Lock()
	defer h.mu.Unlock()

	switch {
	case h.covers(off, want):
	case h.covers(off, 1):
		// The read starts in the blocks and runs past them: fetch the
		// rest next to them, in blocks while streaming, else exactly.
		for h.nextFetch < off+want {
			n := off + want - h.nextFetch
			if h.window > 0 {
				n = readBlockSize
			}
			h.fetchAhead(min(n, readBlockSize, h.size-h.nextFetch))
		}
	default:
		sequential := off == h.lastEnd || (off > h.lastEnd && off-h.lastEnd <= reorderSlack && h.window > 0)
		h.dropAll()
		h.nextFetch = off
		if sequential {
			if h.window == 0 {
				h.window = 1
			}
			h.fill()
		} else {
			// Random access: one GET of the run this read likely starts.
			if run := h.lastEnd - h.runStart; run > 0 {
				h.runLen = run
			}
			h.runStart = off
			h.window = 0
			h.fetchAhead(h.randomFetchSize(off, want))
		}
	}
	n, err := h.copyFromBlocks(ctx, dest[:want], off)
	if err != nil {
		h.dropAll()
		h.window = 0
		return nil, core.Errno(err)
	}
	h.lastEnd = off + int64(n)
	h.trim(off)
	if h.window < h.maxWindow() {
		h.window *= 2
		if h.window > h.maxWindow() {
			h.window = h.maxWindow()
		}
	}
	h.fill()
	return fuse.ReadResultData(dest[:n]), 0
}

// covers says whether the blocks, fetched or in flight, hold [off, off+n).
func (h *readHandle) covers(off, n int64) bool {
	return len(h.blocks) > 0 && off >= h.blocks[0].off && off+n <= h.nextFetch
}

// randomFetchSize is what a random read of want bytes at off fetches: the
// last run's length, at least want, at most one block. (With direct I/O
// the kernel adds no read-ahead of its own, so runs are exactly the
// application's reads.)
func (h *readHandle) randomFetchSize(off, want int64) int64 {
	return min(max(want, h.runLen), readBlockSize, h.size-off)
}

// fill starts blocks until window blocks lie at or after the reader.
func (h *readHandle) fill() {
	ahead := 0
	for _, blk := range h.blocks {
		if blk.off+blk.n > h.lastEnd {
			ahead++
		}
	}
	for ahead < h.window && h.nextFetch < h.size {
		h.fetchAhead(min(readBlockSize, h.size-h.nextFetch))
		ahead++
	}
}

// fetchAhead starts fetching the n bytes at nextFetch as one block.
func (h *readHandle) fetchAhead(n int64) {
	blk := &readBlock{off: h.nextFetch, n: n, done: make(chan struct{})}
	if n > smallBlock {
		blk.buf, blk.pooled = h.b.blocks.Get().(*[]byte), true
	} else {
		// A random read's block: sized to it, so that many random readers
		// do not each hold a whole read-ahead buffer.
		buf := make([]byte, n)
		blk.buf = &buf
	}
	ctx, cancel := context.WithCancel(h.ctx)
	blk.cancel = cancel
	go h.fetch(ctx, blk)
	h.blocks = append(h.blocks, blk)
	h.nextFetch += n
}

// fetch reads one block; it is the block's only writer until done closes.
func (h *readHandle) fetch(ctx context.Context, blk *readBlock) {
	defer close(blk.done)
	buf := (*blk.buf)[:blk.n]
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = h.readRange(ctx, buf, blk.off); err == nil || ctx.Err() != nil {
			break
		}
		h.b.log.WithError(err).WithFields(logrus.Fields{"op": "read-ahead", "key": h.key, "offset": blk.off, "attempt": attempt + 1}).Warn("block read failed")
	}
	blk.err = err
}

// readRange fills buf from the object at off with one ranged GET.
func (h *readHandle) readRange(ctx context.Context, buf []byte, off int64) (int, error) {
	rc, err := h.b.client.GetRange(ctx, h.key, off, int64(len(buf)), "")
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, buf)
	if err != nil {
		return n, fmt.Errorf("reading %q at %d: got %d of %d bytes: %w", h.key, off, n, len(buf), err)
	}
	return n, nil
}

// copyFromBlocks copies dest from the blocks, waiting for those in flight.
func (h *readHandle) copyFromBlocks(ctx context.Context, dest []byte, off int64) (int, error) {
	copied := 0
	for _, blk := range h.blocks {
		if copied == len(dest) {
			break
		}
		pos := off + int64(copied)
		if pos < blk.off || pos >= blk.off+blk.n {
			continue
		}
		select {
		case <-blk.done:
		case <-ctx.Done():
			return copied, ctx.Err()
		}
		if blk.err != nil {
			return copied, blk.err
		}
		copied += copy(dest[copied:], (*blk.buf)[pos-blk.off:blk.n])
	}
	if copied < len(dest) {
		return copied, fmt.Errorf("reading %q at %d: prefetch did not cover the read", h.key, off)
	}
	return copied, nil
}

// trim drops blocks that end well behind off.
func (h *readHandle) trim(off int64) {
	i := 0
	for i < len(h.blocks) && h.blocks[i].off+h.blocks[i].n+reorderSlack <= off {
		h.release(h.blocks[i])
		i++
	}
	h.blocks = h.blocks[i:]
}

func (h *readHandle) dropAll() {
	for _, blk := range h.blocks {
		h.release(blk)
	}
	h.blocks = nil
}

// smallBlock is the largest block that gets a buffer of its own size
// instead of a pooled readBlockSize one.
const smallBlock = 1 << 20

// release cancels a block and returns its buffer once its fetch has ended.
func (h *readHandle) release(blk *readBlock) {
	blk.cancel()
	if !blk.pooled {
		return
	}
	select {
	case <-blk.done:
		h.b.blocks.Put(blk.buf)
	default:
		go func() { <-blk.done; h.b.blocks.Put(blk.buf) }()
	}
}

// Release implements gofs.FileReleaser: stops the prefetches.
// Fsync implements gofs.FileFsyncer: a read handle has nothing to commit
// (`sync FILE` fsyncs a read-only descriptor).
func (h *readHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }

func (h *readHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	h.dropAll()
	h.mu.Unlock()
	h.cancel()
	return 0
}
