package fs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/s3client"
)

// A directory is read page by page (ListObjectsV2, 1,000 entries a page):
// readdir hands each page's entries to the kernel as it arrives, with the
// next page fetched meanwhile, and a lookup that lists the directory stops
// after lookupListPages pages. dirLister holds what both share: the entries
// so far, which of them may be shown yet, and the bounds of a listing.

const (
	// listPageKeys is the size of one listing page, S3's largest.
	listPageKeys = 1000
	// maxListPages cuts a listing that never ends (a server handing out
	// continuation tokens for ever): 10,000 pages are 10 million entries at
	// S3's 1,000 a page. Readdir then answers EIO, and the cut is logged.
	maxListPages = 10000
)

// errEndlessListing is a listing cut at maxListPages, or one whose server
// handed back a continuation token it had given before (it would loop).
var errEndlessListing = errors.New("the listing does not end")

// dirLister reads one listing of a directory. It is used by one goroutine
// at a time (a readdir handle under go-fuse's handle lock, or one lookup);
// only fetch may run on another goroutine, and it touches no field that
// changes.
type dirLister struct {
	d      *dirNode
	prefix string // the directory's prefix when the listing began
	gen    uint64 // d.listingGen when the listing began
	l      *dirListing

	token  string              // continues the listing; "" once done
	pages  int                 // pages added so far
	tokens map[string]struct{} // every continuation token received
	done   bool                // the last page was added
	// held are files not shown yet: in S3's key order "x" comes before
	// "x.txt" and "x-1", and only after them "x/", which would hide the
	// file "x" behind a directory of the same name. A file is shown once
	// the listing has gone past its name followed by "/".
	held map[string]struct{}
}

// newDirLister starts a listing of d as it is now.
func (d *dirNode) newDirLister() *dirLister {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &dirLister{
		d:      d,
		prefix: d.prefix,
		gen:    d.listingGen,
		l:      &dirListing{fetched: time.Now(), entries: map[string]entryAttr{}},
		tokens: map[string]struct{}{},
		held:   map[string]struct{}{},
	}
}

// fetch reads the page that token continues ("" for the first).
func (ls *dirLister) fetch(ctx context.Context, token string) (*s3client.ListPage, error) {
	return ls.d.b.client.List(ctx, ls.prefix, "/", token, listPageKeys)
}

// add takes in the next page and returns the names that may be shown now,
// in key order, each once. It fails with errEndlessListing when the
// listing would go on past its bounds; the names it returns then may still
// be shown.
func (ls *dirLister) add(page *s3client.ListPage) ([]string, error) {
	ls.pages++
	var ready []string
	var cursor string // the last key or prefix of the page: the listing has gone past everything before it
	addDir := func(name, key string) {
		if !validName(name) {
			ls.d.b.warnOnce(key, "key cannot be a file name; left out of the listing", logrus.Fields{"op": "readdir"})
			return
		}
		prev, seen := ls.l.entries[name]
		ls.l.entries[name] = entryAttr{isDir: true, uid: -1, gid: -1}
		if seen && !prev.isDir {
			ls.d.b.warnOnce(ls.prefix+name, "a file and a directory share this name; showing the directory", logrus.Fields{"op": "readdir"})
			if _, held := ls.held[name]; !held {
				return // already shown as a file (a server out of key order): not twice
			}
			delete(ls.held, name)
		}
		if !seen || !prev.isDir {
			ready = append(ready, name)
		}
	}
	for _, p := range page.CommonPrefixes {
		cursor = max(cursor, p)
		addDir(strings.TrimSuffix(strings.TrimPrefix(p, ls.prefix), "/"), p)
	}
	for _, o := range page.Objects {
		cursor = max(cursor, o.Key)
		name := strings.TrimPrefix(o.Key, ls.prefix)
		if name == "" {
			continue // this directory's own marker
		}
		if dir, ok := strings.CutSuffix(name, legacyFolderSuffix); ok && dir != "" && o.Size == 0 {
			addDir(dir, o.Key) // an empty directory as older tools marked it
			continue
		}
		if !validName(name) {
			ls.d.b.warnOnce(o.Key, "key cannot be a file name; left out of the listing", logrus.Fields{"op": "readdir"})
			continue
		}
		if prev, ok := ls.l.entries[name]; ok && prev.isDir {
			ls.d.b.warnOnce(o.Key, "a file and a directory share this name; showing the directory", logrus.Fields{"op": "readdir"})
			continue
		}
		ls.l.entries[name] = attrFromObject(o.Size, o.LastModified, o.ETag, nil, false)
		ls.held[name] = struct{}{}
	}
	last := page.NextToken == ""
	var released []string
	for name := range ls.held {
		if last || ls.prefix+name+"/" <= cursor {
			released = append(released, name)
		}
	}
	for _, name := range released {
		delete(ls.held, name)
	}
	ready = append(ready, released...)
	sort.Strings(ready)
	if last {
		ls.done, ls.token = true, ""
		return ready, nil
	}
	_, repeated := ls.tokens[page.NextToken]
	if repeated || ls.pages >= maxListPages {
		reason := "the server repeats a continuation token"
		if !repeated {
			reason = fmt.Sprintf("more than %d pages", maxListPages)
		}
		ls.d.b.log.WithFields(logrus.Fields{"op": "readdir", "key": ls.prefix, "pages": ls.pages, "entries": len(ls.l.entries)}).
			Error("listing cut: " + reason)
		return ready, fmt.Errorf("listing %q: %s: %w", ls.prefix, reason, errEndlessListing)
	}
	ls.tokens[page.NextToken] = struct{}{}
	ls.token = page.NextToken
	return ready, nil
}

// finish completes the listing once done: it becomes the directory's
// listing for lookups, unless a change through this mount (or a rename of
// the directory) happened meanwhile, which the listing may have missed.
func (ls *dirLister) finish() *dirListing {
	l := ls.l
	l.names = make([]string, 0, len(l.entries))
	for name := range l.entries {
		l.names = append(l.names, name)
	}
	sort.Strings(l.names)
	d := ls.d
	d.mu.Lock()
	if d.listingGen == ls.gen && d.prefix == ls.prefix {
		d.listing = l
	}
	d.mu.Unlock()
	return l
}

// list reads the whole directory, every page, and keeps it for lookups.
func (d *dirNode) list(ctx context.Context) (*dirListing, error) {
	return d.listUpTo(ctx, 0)
}

// errLargeDirectory stops a listing that lookups asked for when the
// directory has more than lookupListPages pages.
var errLargeDirectory = errors.New("directory too large to list for lookups")

// lookupListPages bounds the listing that lookups start (see resolve): a
// directory of more than 10,000 entries is not listed for a few lookups.
const lookupListPages = 10

// listUpTo is list, giving up with errLargeDirectory after maxPages pages
// (0: up to maxListPages).
func (d *dirNode) listUpTo(ctx context.Context, maxPages int) (*dirListing, error) {
	ls := d.newDirLister()
	for !ls.done {
		if maxPages > 0 && ls.pages >= maxPages {
			return nil, errLargeDirectory
		}
		page, err := ls.fetch(ctx, ls.token)
		if err != nil {
			return nil, err
		}
		if _, err := ls.add(page); err != nil {
			return nil, err
		}
	}
	return ls.finish(), nil
}

// listCall is one listing that lookups started; others wait for it.
type listCall struct {
	done chan struct{}
	l    *dirListing // set before done closes
	err  error
}

// relist lists the directory for lookups (up to lookupListPages pages).
// Lookups that need it at the same time share one listing.
func (d *dirNode) relist(ctx context.Context) (*dirListing, error) {
	d.mu.Lock()
	if c := d.relisting; c != nil {
		d.mu.Unlock()
		select {
		case <-c.done:
			return c.l, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &listCall{done: make(chan struct{})}
	d.relisting = c
	d.mu.Unlock()
	c.l, c.err = d.listUpTo(ctx, lookupListPages)
	d.mu.Lock()
	d.relisting = nil
	d.mu.Unlock()
	close(c.done)
	return c.l, c.err
}

// OpendirHandle implements gofs.NodeOpendirHandler. The first page is read
// here, so that a missing or forbidden directory fails opendir; the others
// are read while the entries before them are handed out (see dirHandle).
func (d *dirNode) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	ls := d.newDirLister()
	page, err := ls.fetch(ctx, "")
	if err != nil {
		d.b.log.WithError(err).WithFields(logrus.Fields{"op": "readdir", "key": ls.prefix}).Warn("listing failed")
		return nil, 0, core.Errno(err)
	}
	hctx, cancel := context.WithCancel(context.Background())
	// Files being written are shown with their current size; those the
	// listing lacks come after it.
	h := &dirHandle{d: d, lister: ls, ctx: hctx, cancel: cancel, writers: d.b.writersUnder(ls.prefix)}
	if errno := h.accept(ctx, page, nil); errno != 0 {
		cancel()
		return nil, 0, errno
	}
	return h, 0, 0
}

// dirHandle serves one opendir's entries as the listing's pages arrive:
// while the kernel takes one page's entries, the next page is fetched.
// READDIRPLUS lookups come from the listing itself, so `ls -l` costs list
// requests only.
//
// go-fuse calls Readdirent, Seekdir and Lookup of one handle under the
// handle's lock, which guards every field but ctx and cancel; the fetch
// ahead reports through its pageFetch. The handle owns that fetch's
// goroutine: Releasedir cancels it.
type dirHandle struct {
	d       *dirNode
	lister  *dirLister
	ctx     context.Context // the fetch ahead's; ended by Releasedir
	cancel  context.CancelFunc
	ahead   *pageFetch           // the next page, in flight or fetched; nil when there is none
	names   []string             // entries ready to hand out, in order
	writers map[string]*fileNode // files being written at opendir
	pos     int                  // index in names of the next entry
	err     syscall.Errno        // the listing failed: every later call answers it
}

var (
	_ gofs.FileReaddirenter = (*dirHandle)(nil)
	_ gofs.FileLookuper     = (*dirHandle)(nil)
	_ gofs.FileSeekdirer    = (*dirHandle)(nil)
	_ gofs.FileFsyncdirer   = (*dirHandle)(nil)
	_ gofs.FileReleasedirer = (*dirHandle)(nil)
)

// pageFetch is one listing page read ahead of the reader.
type pageFetch struct {
	done chan struct{}
	page *s3client.ListPage // set before done closes
	err  error
}

// fetchAhead starts reading the page that follows.
func (h *dirHandle) fetchAhead() {
	pf := &pageFetch{done: make(chan struct{})}
	token := h.lister.token
	go func() {
		defer close(pf.done)
		pf.page, pf.err = h.lister.fetch(h.ctx, token)
	}()
	h.ahead = pf
}

// accept takes a page in (or its fetch's error): the next one is fetched
// at once, and the page's entries become ready to hand out.
func (h *dirHandle) accept(ctx context.Context, page *s3client.ListPage, err error) syscall.Errno {
	var ready []string
	if err != nil {
		h.d.b.log.WithError(err).WithFields(logrus.Fields{"op": "readdir", "key": h.lister.prefix, "page": h.lister.pages + 1}).Warn("listing failed")
	} else {
		ready, err = h.lister.add(page) // a cut is logged there
	}
	if err == nil && !h.lister.done {
		h.fetchAhead()
	}
	if h.d.b.cfg.ExactAttrs {
		h.d.readListingMetadata(ctx, &dirListing{names: ready, entries: h.lister.l.entries})
	}
	h.names = append(h.names, ready...)
	if err != nil {
		// The entries before the failure are still handed out.
		h.err = core.Errno(err)
		if errors.Is(err, errEndlessListing) {
			h.err = syscall.EIO
		}
		return h.err
	}
	if h.lister.done {
		l := h.lister.finish()
		extra := make([]string, 0, len(h.writers))
		for name := range h.writers {
			if _, ok := l.entries[name]; !ok {
				extra = append(extra, name)
			}
		}
		sort.Strings(extra)
		h.names = append(h.names, extra...)
	}
	return 0
}

// more waits for the page fetched ahead (there must be one) and takes it
// in; a failed listing is left in h.err. It answers EINTR when the request
// is interrupted: the fetch goes on, and the next call waits for it again.
func (h *dirHandle) more(ctx context.Context) syscall.Errno {
	pf := h.ahead
	select {
	case <-pf.done:
	case <-ctx.Done():
		return syscall.EINTR
	}
	h.ahead = nil
	h.accept(ctx, pf.page, pf.err)
	return 0
}

// Readdirent implements gofs.FileReaddirenter. When the listing fails, the
// entries before the failure are handed out, then its errno.
func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	for h.pos >= len(h.names) {
		if h.err != 0 || h.ahead == nil {
			return nil, h.err
		}
		if errno := h.more(ctx); errno != 0 {
			return nil, errno
		}
	}
	name := h.names[h.pos]
	h.pos++
	mode := uint32(syscall.S_IFREG) // a file being written that the listing lacks
	if a, ok := h.lister.l.entries[name]; ok {
		mode = h.d.direntType(name, a)
	}
	return &fuse.DirEntry{Name: name, Off: uint64(h.pos), Mode: mode}, 0
}

// Seekdir implements gofs.FileSeekdirer (rewinddir, telldir/seekdir): the
// entries handed out so far are kept, so a seek back costs nothing.
func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	for off > uint64(len(h.names)) {
		switch {
		case h.err != 0:
			return h.err
		case h.ahead == nil:
			return syscall.EINVAL
		}
		if errno := h.more(ctx); errno != 0 {
			return errno
		}
	}
	h.pos = int(off)
	return 0
}

// Lookup implements gofs.FileLookuper for READDIRPLUS.
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n := h.d.writerChild(name); n != nil {
		return n, n.Operations().(*fileNode).fillEntry(out)
	}
	if a, ok := h.lister.l.entries[name]; ok {
		if r, hit := h.d.b.lookups.Get(h.d.key(name)); hit && r.found && (r.attr.isDir == a.isDir || legacyDirListed(r.attr, a)) {
			a = r.attr
		}
		if (a.isDir || a.size == 0) && !h.d.knows(name, a) {
			// A directory's mode and owner are in its marker; an empty
			// object may be a FIFO, a socket, a device or a directory as
			// older tools wrote it. A listing has no metadata: no
			// attributes here, and the kernel looks the name up (one
			// HEAD) before it uses them.
			return nil, syscall.ENOENT
		}
		return h.d.childInode(ctx, name, a, out), 0
	}
	return h.d.Lookup(ctx, name, out)
}

// Fsyncdir implements gofs.FileFsyncdirer: every change is in S3 once its
// operation returned, so there is nothing to flush (restic and borg call it).
func (h *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno { return 0 }

// Releasedir implements gofs.FileReleasedirer: stops the fetch ahead.
func (h *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	h.cancel()
}
