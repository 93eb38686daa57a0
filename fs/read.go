package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/s3client"
)

// readHandle serves reads of one open file with ranged GETs, all of one
// version of the object: the handle pins the ETag and size it opened with,
// and every GET carries If-Match with that ETag. When the object changed
// (412), reads answer EIO from then on, never bytes of two versions, and the
// node is told to ask S3 again, so that the next open reads the new object.
// Only a handle that has handed out no byte yet moves to the new version
// instead (one HEAD): its reader has seen nothing of the old one.
//
// A sequential
// reader gets parallel read-ahead: blocks of readBlockSize fetched ahead of
// it, the window doubling while the reads stay sequential, up to ReadAhead
// bytes. Every block comes from the mount's one read budget (readBudget,
// --read-memory): when it is spent the window shrinks, down to no block, and
// a read with no block is served by one GET of the bytes it asks for, into
// the kernel's buffer. With a data cache (--cache-memory), every whole
// block fetched is also kept there by key, ETag and index, and a block
// found there costs no GET: re-reads of an unchanged object are free.
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
	node *fileNode // the file read, told when its object changed; nil in tests of the read-ahead alone

	ctx    context.Context // lives as long as the handle; prefetches use it
	cancel context.CancelFunc

	mu sync.Mutex // guards the fields below; held while a read waits for its block
	// etag and size are the version read: every GET carries If-Match etag
	// (none when etag is empty), and reads end at size.
	etag      string
	size      int64
	delivered bool // a read has returned bytes: the version may no longer change
	pageCache bool // its bytes go to the kernel's page cache, shared by every open of the file (see pageCacheOpen)
	repinned  int  // times the handle moved to a newer version before delivering a byte
	changed   bool // the object changed after bytes were delivered: every read answers EIO
	// viaSession says the last read was served by the file's write
	// session: when it has ended, the handle moves to what it committed.
	viaSession bool
	blocks     []*readBlock // consecutive blocks, in flight or done, ascending
	nextFetch  int64        // where the next prefetched block starts
	window     int          // blocks to keep ahead of the reader
	lastEnd    int64        // end of the last read served, to tell sequential access
	runStart   int64        // where the current run of contiguous reads began
	runLen     int64        // length of the last finished run: what a random read fetches
	held       int          // full-size blocks held from the budget (fairShare)
	// The last failed read (not a changed version, not an interrupt):
	// recentFailure repeats its errno for a while.
	failAt    time.Time
	failErrno syscall.Errno
}

var (
	_ gofs.FileReader   = (*readHandle)(nil)
	_ gofs.FileReleaser = (*readHandle)(nil)
	_ gofs.FileFsyncer  = (*readHandle)(nil)
)

// readBlock is one prefetched range of the object.
type readBlock struct {
	off, n int64
	etag   string  // the version fetched (If-Match)
	buf    *[]byte // the block's bytes, from the read budget; written only by its fetch until done closes
	full   bool    // a full-size block (above smallBlock), counted in the handle's held
	cached bool    // buf is a block of the data cache, shared: reserved in the budget by its length, never written
	cache  bool    // a whole block of a known version: once fetched, a copy goes to the data cache
	done   chan struct{}
	err    error // set before done is closed
	cancel context.CancelFunc
}

// streamAfter is how long a run of contiguous reads through the page cache
// must be before it is taken for a sequential scan and read ahead in
// blocks: longer than what the kernel makes of one random read() (the
// read asked plus its own read-ahead).
const streamAfter = 2 << 20

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

// failureRepeat is how long a failed read's error answers the handle's
// next reads at once: through the page cache, the kernel follows a failed
// read-ahead with a read of the same page, and sends a read-ahead window
// as several reads, each of which would otherwise wait for S3 as long
// again (an outage would take a multiple of its bound).
const failureRepeat = 2 * time.Second

// recentFailure says whether a read of the handle failed within
// failureRepeat, and with which errno (h.mu held).
func (h *readHandle) recentFailure() (syscall.Errno, bool) {
	if h.failErrno == 0 || time.Since(h.failAt) >= failureRepeat {
		return 0, false
	}
	return h.failErrno, true
}

// sameBytesMove moves the handle to the version this mount's attribute
// change made of its version (same bytes, new ETag) and reports whether it
// did (h.mu held). Blocks already fetched stay: they are the same bytes.
func (h *readHandle) sameBytesMove() bool {
	if h.node == nil {
		return false
	}
	to, ok := h.node.sameBytesAs(h.etag)
	if !ok || (h.pageCache && !h.node.movePageCache(h.etag, to)) {
		return false
	}
	h.etag = to
	h.dropAll() // blocks in flight ask for the old ETag
	return true
}

// maxRepins bounds how often a handle that has handed out nothing moves to
// a newer version (an object rewritten again and again while opened).
const maxRepins = 2

// Read implements gofs.FileReader.
func (h *readHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.node != nil {
		// While the file is open for writing on this mount, every
		// description reads what was written (core.File.ReadAt); after it,
		// the version its last commit left.
		n, ok, err := h.node.file.ReadAt(ctx, dest, off)
		if ok {
			if err != nil {
				return nil, core.Errno(err)
			}
			h.viaSession = true
			return fuse.ReadResultData(dest[:n]), 0
		}
		if h.viaSession {
			h.viaSession = false
			a, _, _ := h.node.currentAttr()
			h.dropAll()
			h.window = 0
			h.etag, h.size = a.etag, a.size
			if h.pageCache {
				// The pages the session's reads filled are the bytes
				// it committed: they are of this version.
				h.node.adoptPageCache(a.etag)
			}
		}
	}
	if errno, ok := h.recentFailure(); ok {
		return nil, errno
	}
	for {
		if h.changed {
			return nil, syscall.EIO
		}
		if h.pageCache && !h.node.pageCacheHolds(h.etag) && !h.sameBytesMove() {
			// Another open pinned a newer version, or the node learned
			// one: this handle's bytes must not reach the shared page
			// cache any more.
			h.versionChanged(fmt.Errorf("%w: the file has a newer version than %s", s3client.ErrPreconditionFailed, h.etag))
			return nil, syscall.EIO
		}
		n, err := h.readLocked(ctx, dest, off)
		if err == nil {
			h.delivered = h.delivered || n > 0
			return fuse.ReadResultData(dest[:n]), 0
		}
		if errors.Is(err, s3client.ErrPreconditionFailed) && h.sameBytesMove() {
			continue // this mount changed the file's attributes, not its bytes
		}
		if !errors.Is(err, s3client.ErrPreconditionFailed) {
			errno := core.Errno(err)
			if errno != syscall.EINTR {
				h.failAt, h.failErrno = time.Now(), errno
			}
			return nil, errno
		}
		// With the page cache a handle never moves: pages it filled may
		// be read by any open, and the kernel bounds reads by the size it
		// was told, which may be the old version's.
		if h.delivered || h.pageCache || h.repinned >= maxRepins || h.node == nil {
			h.versionChanged(err)
			return nil, syscall.EIO
		}
		// Nothing of the old version was handed out: read the new one.
		h.repinned++
		v, err := h.node.headVersion(ctx)
		if err != nil {
			return nil, core.Errno(err)
		}
		h.b.log.WithFields(logrus.Fields{"op": "read", "key": h.key, "etag": h.etag, "new_etag": v.etag}).Debug("object changed before the first read; reading the new version")
		h.dropAll()
		h.window = 0
		h.etag, h.size = v.etag, v.size
	}
}

// versionChanged (h.mu held) makes every later read answer EIO and has the
// node ask S3 again, after the object changed under the handle.
func (h *readHandle) versionChanged(err error) {
	h.changed = true
	h.dropAll()
	h.b.log.WithError(err).WithFields(logrus.Fields{"op": "read", "key": h.key, "etag": h.etag}).
		Warn("the object changed while it was being read; reads of this open file answer EIO, the next open reads the new object")
	if h.node != nil {
		h.node.staleVersion(h.etag)
	}
}

// readLocked (h.mu held) copies the bytes at off into dest, from the blocks
// fetched or started by earlier reads, or from new ones.
func (h *readHandle) readLocked(ctx context.Context, dest []byte, off int64) (int, error) {
	if off >= h.size || len(dest) == 0 {
		return 0, nil
	}
	want := int64(len(dest))
	if off+want > h.size {
		want = h.size - off
	}
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
			if !h.fetchAhead(min(n, readBlockSize, h.size-h.nextFetch)) {
				break // the budget is spent: the rest is read directly
			}
		}
	default:
		sequential := off == h.lastEnd || (off > h.lastEnd && off-h.lastEnd <= reorderSlack && h.window > 0)
		h.dropAll()
		h.nextFetch = off
		switch {
		case sequential && (h.window > 0 || !h.pageCache || off-h.runStart >= streamAfter):
			if h.window == 0 {
				h.window = 1
			}
			h.fill()
		case sequential:
			// Through the page cache the kernel cuts every read() into
			// 128 KiB reads and adds read-ahead of its own, so a random
			// 1 MiB read arrives as a short run: fetch as much as the
			// run so far (or the last one), and stream only once it is
			// long.
			h.fetchAhead(min(max(want, h.runLen, off-h.runStart), readBlockSize, h.size-off))
		default:
			// Random access: one GET of the run this read likely starts.
			if run := h.lastEnd - h.runStart; run > 0 {
				h.runLen = run
			}
			h.runStart = off
			h.window = 0
			h.fetchAhead(h.randomFetchSize(off, want))
		}
	}
	n := 0
	if h.covers(off, 1) {
		var err error
		if n, err = h.copyFromBlocks(ctx, dest[:min(want, h.nextFetch-off)], off); err != nil {
			h.dropAll()
			h.window = 0
			return 0, err
		}
	}
	if int64(n) < want {
		// No block holds the rest (the budget is spent): one GET of it,
		// straight into dest, and the blocks start again after it.
		if err := h.readDirect(ctx, dest[n:want], off+int64(n)); err != nil {
			h.dropAll()
			h.window = 0
			return 0, err
		}
		n = int(want)
		if h.nextFetch < off+want {
			h.dropAll()
			h.nextFetch = off + want
		}
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
	return n, nil
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
		if !h.fetchAhead(min(readBlockSize, h.size-h.nextFetch)) {
			return // the budget is spent: a shorter window for now
		}
		ahead++
	}
}

// fetchAhead starts fetching the n bytes at nextFetch as one block, with a
// buffer from the read budget. It reports false, fetching nothing, when the
// budget cannot spare the buffer or the handle holds its fair share of it.
// A block of at most smallBlock (a random read's) gets a buffer of its own
// size, so that many random readers do not each hold a whole block.
func (h *readHandle) fetchAhead(n int64) bool {
	full := n > smallBlock
	if full && h.held > 0 && h.held >= h.b.reads.fairShare(true) {
		return false
	}
	blk := &readBlock{off: h.nextFetch, n: n, etag: h.etag, full: full, cache: h.cacheable(h.nextFetch, n), done: make(chan struct{})}
	if data, ok := h.cachedBlock(blk.off, n); ok {
		if !h.b.reads.reserve(n) {
			return false
		}
		blk.buf, blk.cached, blk.cancel = &data, true, func() {}
		close(blk.done)
	} else {
		if blk.buf = h.b.reads.get(n); blk.buf == nil {
			return false
		}
		ctx, cancel := context.WithCancel(h.ctx)
		blk.cancel = cancel
		go h.fetch(ctx, blk)
	}
	if full {
		if h.held == 0 {
			h.b.reads.join()
		}
		h.held++
	}
	h.blocks = append(h.blocks, blk)
	h.nextFetch += n
	return true
}

// fetch reads one block; it is the block's only writer until done closes.
func (h *readHandle) fetch(ctx context.Context, blk *readBlock) {
	blk.err = h.getRange(ctx, "read-ahead", (*blk.buf)[:blk.n], blk.off, blk.etag)
	if blk.err != nil || !blk.cache {
		close(blk.done)
		return
	}
	// The buffer goes back to the budget once done closes: the cache gets
	// a copy of its own.
	data := append([]byte(nil), (*blk.buf)[:blk.n]...)
	close(blk.done)
	h.b.blockCache.Set(h.key, blk.etag, blk.off/readBlockSize, data)
}

// cacheable (h.mu held) says whether the n bytes at off are a whole block
// of a known version (the last block may be short), the unit of the data
// cache.
func (h *readHandle) cacheable(off, n int64) bool {
	return h.b.blockCache != nil && h.etag != "" && off%readBlockSize == 0 &&
		(n == readBlockSize || off+n == h.size)
}

// cachedBlock (h.mu held) returns the n bytes at off from the data cache,
// if they are a whole block cached for the version read.
func (h *readHandle) cachedBlock(off, n int64) ([]byte, bool) {
	if !h.cacheable(off, n) {
		return nil, false
	}
	data, ok := h.b.blockCache.Get(h.key, h.etag, off/readBlockSize)
	if !ok || int64(len(data)) != n {
		return nil, false
	}
	return data, true
}

// readDirect (h.mu held) fills buf with the bytes at off without a block
// of the handle's: from a cached block holding them all, else with one GET.
func (h *readHandle) readDirect(ctx context.Context, buf []byte, off int64) error {
	start := off - off%readBlockSize
	if n := min(readBlockSize, h.size-start); off+int64(len(buf)) <= start+n {
		if data, ok := h.cachedBlock(start, n); ok {
			copy(buf, data[off-start:])
			return nil
		}
	}
	return h.getRange(ctx, "read", buf, off, h.etag)
}

// getRange fills buf from version etag of the object at off, trying up to
// three times; op names the caller in logs.
func (h *readHandle) getRange(ctx context.Context, op string, buf []byte, off int64, etag string) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		_, err = h.readRange(ctx, buf, off, etag)
		if err == nil || ctx.Err() != nil || errors.Is(err, s3client.ErrPreconditionFailed) || errors.Is(err, s3client.ErrNotFound) {
			break // retrying cannot help
		}
		h.b.log.WithError(err).WithFields(logrus.Fields{"op": op, "key": h.key, "offset": off, "attempt": attempt + 1}).Warn("block read failed")
	}
	return err
}

// readRange fills buf from version etag of the object at off with one
// ranged GET.
func (h *readHandle) readRange(ctx context.Context, buf []byte, off int64, etag string) (int, error) {
	rc, err := h.b.client.GetRange(ctx, h.key, off, int64(len(buf)), etag)
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

// release (h.mu held) cancels a block and returns its buffer to the read
// budget once its fetch has ended: until then the fetch may still write it.
func (h *readHandle) release(blk *readBlock) {
	blk.cancel()
	if blk.full {
		h.held--
		if h.held == 0 {
			h.b.reads.leave()
		}
	}
	if blk.cached {
		h.b.reads.unreserve(blk.n)
		return
	}
	select {
	case <-blk.done:
		h.b.reads.put(blk.buf)
	default:
		go func() { <-blk.done; h.b.reads.put(blk.buf) }()
	}
}

// Fsync implements gofs.FileFsyncer: through a read-only descriptor
// (`sync FILE`), as through any other, it commits what the file's open
// write session holds.
func (h *readHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if h.node == nil {
		return 0
	}
	return core.Errno(h.node.file.Sync(ctx))
}

// Release implements gofs.FileReleaser: stops the prefetches.
func (h *readHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	h.dropAll()
	h.mu.Unlock()
	h.cancel()
	return 0
}

// openRevalidateAfter is the age past which a file's attributes are checked
// with one HEAD before a read handle pins them (at most MetadataTTL).
// Younger ones are pinned as they are: if the object changed meanwhile, the
// first GET fails its If-Match, and the handle, having handed out nothing,
// moves to the new version then.
const openRevalidateAfter = time.Second

// objectVersion is one version of an object: what a read handle pins.
type objectVersion struct {
	etag string
	size int64
}

// openRead opens a read handle on one version of the object: the one the
// node's attributes name, or, when they are older than openRevalidateAfter
// or name no ETag, the one a HEAD finds. A read waits (bounded) until what
// this mount wrote is in S3.
//
// Unless Config.DirectIO, reads go through the kernel's page cache, kept
// across opens while the version is the one it holds (pageCacheOpen).
// With DirectIO every read() reaches the handle whole, up to 1 MiB.
func (f *fileNode) openRead(ctx context.Context) (gofs.FileHandle, uint32, syscall.Errno) {
	a, at, writing := f.currentAttr()
	if writing {
		// Read through the write session (readHandle.Read): what the
		// writers wrote, committed or not.
		h := newReadHandle(f.b, f.currentKey(), a.size)
		h.node, h.etag = f, a.etag
		return h, fuse.FOPEN_DIRECT_IO, 0
	}
	v := objectVersion{etag: a.etag, size: a.size}
	if v.etag == "" || time.Since(at) >= min(openRevalidateAfter, f.b.cfg.MetadataTTL) {
		var err error
		if v, err = f.headVersion(ctx); err != nil {
			f.b.warnFailed("open", f.currentKey(), err)
			return nil, 0, core.Errno(err)
		}
	}
	h := newReadHandle(f.b, f.currentKey(), v.size)
	h.node, h.etag = f, v.etag
	if f.b.cfg.DirectIO {
		return h, fuse.FOPEN_DIRECT_IO, 0
	}
	h.pageCache = true
	return h, f.pageCacheOpen(v), 0
}

// pageCacheOpen decides whether an open of version v keeps the pages the
// kernel caches for the file. Only one version's pages are ever there:
// f.cached names it, and only handles of that version may answer reads
// (readHandle.Read checks pageCacheHolds before each). An open of that
// version keeps them (FOPEN_KEEP_CACHE: a re-read costs no request); an
// open of another version makes it the cached one, and the kernel drops
// every page at this open (no FOPEN_KEEP_CACHE) before its first read.
// The kernel's attributes may be of the other version too, and it ends
// page-cache reads at the size it knows: they are invalidated before the
// open returns, so that the first read asks for the size again (Getattr,
// answered from the node, which holds v's).
func (f *fileNode) pageCacheOpen(v objectVersion) uint32 {
	f.mu.Lock()
	keep := v.etag != "" && f.cached == v.etag
	f.cached = v.etag
	f.mu.Unlock()
	if keep {
		return fuse.FOPEN_KEEP_CACHE
	}
	if f.StableAttr().Ino != 0 { // a node of a mounted tree
		// Attributes only (offset < 0): it takes no page lock, so it
		// cannot wait for a read in flight.
		f.NotifyContent(-1, 0)
	}
	return 0
}

// adoptPageCache says the page cache holds version etag: pages read
// through a write session that committed it.
func (f *fileNode) adoptPageCache(etag string) {
	f.mu.Lock()
	f.cached = etag
	f.mu.Unlock()
}

// movePageCache says the page cache may hold version to, whose bytes are
// those of version from: true when it holds either (it then holds to).
func (f *fileNode) movePageCache(from, to string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch f.cached {
	case to:
		return true
	case from:
		f.cached = to
		return true
	}
	return false
}

// pageCacheHolds says whether pages of version etag may go to the page
// cache: it is the version the file's last open pinned and no newer one
// is known.
func (f *fileNode) pageCacheHolds(etag string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cached == etag
}

// versionSeenLocked (f.mu held) is told that the object's version is now
// etag (a HEAD, a listing or this mount's own commit said so): pages of
// another version leave the kernel's page cache, and handles reading that
// version answer EIO from their next read (pageCacheHolds).
func (f *fileNode) versionSeenLocked(etag string) {
	if f.cached == "" || f.cached == etag {
		return
	}
	f.cached = ""
	if f.StableAttr().Ino != 0 {
		// Not from this goroutine: dropping pages waits for reads in
		// flight, and the kernel may hold locks while it waits for
		// this request. Until it lands, only handles of the old version
		// read the old pages, and every open of the new one drops them.
		go f.NotifyContent(0, 0)
	}
}

// headVersion reads the object's current version with one HEAD and records
// its attributes on the node.
func (f *fileNode) headVersion(ctx context.Context) (objectVersion, error) {
	info, err := f.b.client.Head(ctx, f.currentKey())
	if err != nil {
		return objectVersion{}, err
	}
	a := attrFromHead(info)
	f.setAttr(a)
	return objectVersion{etag: info.ETag, size: info.Size}, nil
}

// staleVersion is told that version etag of the object is gone: the next
// stat and open ask S3, and the kernel drops the attributes it caches.
func (f *fileNode) staleVersion(etag string) {
	f.mu.Lock()
	if f.attr.etag == etag {
		f.attrAt = time.Time{}
	}
	if f.cached == etag {
		f.cached = "" // the next open drops the pages of the old version
	}
	f.mu.Unlock()
	if f.StableAttr().Ino != 0 { // a node of a mounted tree
		// Not from the reading goroutine: the kernel may hold locks while
		// it waits for that read.
		go f.NotifyContent(0, 0)
	}
}
