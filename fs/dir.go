package fs

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/core"
)

// dirNode is a directory: a "/"-delimited key prefix. It exists implicitly
// (keys under it) or explicitly (a "prefix/" marker object).
type dirNode struct {
	gofs.Inode
	b       *bucketFS
	mu      sync.Mutex  // guards every field below
	prefix  string      // the key prefix of the directory's children; cfg.Prefix for the root; changed by rename
	listing *dirListing // the last complete listing, trusted for MetadataTTL
	// attr holds the directory's attributes: defaults, or those of its
	// marker's metadata once read (attrKnown) or set by us.
	attr      entryAttr
	attrKnown bool
	// pending is true when attr holds changes not yet written to the marker
	// (see setattr.go); pendingTimer writes them after attrDelay.
	pending      bool
	pendingTimer *time.Timer
	// lookupMisses counts lookups since lookupWindow began that found no
	// fresh listing (see resolve).
	lookupMisses int
	lookupWindow time.Time
	largeUntil   time.Time // a lookup-started listing found too many entries; not tried again before
}

// listAfterLookups is how many lookups within MetadataTTL that find no
// fresh listing make the directory list itself, so that the next ones
// (rsync and tar looking up name after name) cost nothing, or one HEAD for
// a name that exists, instead of a HEAD and a LIST each. A directory of
// more than lookupListPages pages is not listed that way.
const listAfterLookups = 3

var (
	_ gofs.NodeLookuper       = (*dirNode)(nil)
	_ gofs.NodeGetattrer      = (*dirNode)(nil)
	_ gofs.NodeOpendirHandler = (*dirNode)(nil)
	_ gofs.NodeCreater        = (*dirNode)(nil)
	_ gofs.NodeStatfser       = (*dirNode)(nil)
	_ gofs.FileReaddirenter   = (*dirHandle)(nil)
	_ gofs.FileLookuper       = (*dirHandle)(nil)
	_ gofs.FileSeekdirer      = (*dirHandle)(nil)
	_ gofs.FileFsyncdirer     = (*dirHandle)(nil)
)

// dirListing is a directory's children as one complete listing saw them.
type dirListing struct {
	fetched time.Time
	names   []string             // sorted
	entries map[string]entryAttr // name -> attributes (from the listing)
}

func (d *dirNode) key(name string) string { return d.currentPrefix() + name }

func (d *dirNode) currentPrefix() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.prefix
}

// Getattr implements gofs.NodeGetattrer. The attributes of a directory
// with a marker are read from the marker's metadata (one HEAD) the first time.
func (d *dirNode) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.mu.Lock()
	needHead := (d.attr.marker || d.b.cfg.ExactAttrs) && !d.attrKnown && d.prefix != ""
	prefix := d.prefix
	d.mu.Unlock()
	if needHead {
		info, err := d.b.client.Head(ctx, prefix)
		d.mu.Lock()
		if err == nil && !d.attrKnown {
			a := attrFromObject(0, info.LastModified, info.ETag, info.Metadata, true)
			a.isDir, a.marker = true, true
			d.attr = a
		}
		d.attrKnown = true // a missing marker leaves the defaults
		d.mu.Unlock()
	}
	d.dirAttr().fill(d.b, &out.Attr)
	return 0
}

func (d *dirNode) dirAttr() entryAttr {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.attr
	a.isDir = true
	if a.uid == 0 && a.gid == 0 && a.mode == 0 && !a.fromHead {
		a.uid, a.gid = -1, -1
	}
	return a
}

// Statfs implements gofs.NodeStatfser with large numbers, so that df and
// tools that check free space before writing work: a bucket has no size.
func (d *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	const blockSize = 4096
	const blocks = 1 << 50 / blockSize // 1 PiB
	out.Bsize, out.Frsize = blockSize, blockSize
	out.Blocks, out.Bfree, out.Bavail = blocks, blocks, blocks
	out.Files, out.Ffree = 1<<40, 1<<40
	out.NameLen = 255
	return 0
}

// Lookup implements gofs.NodeLookuper (see resolve for its cost).
func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n := d.writerChild(name); n != nil {
		return n, n.Operations().(*fileNode).fillEntry(out)
	}
	a, errno := d.resolve(ctx, name)
	if errno != 0 {
		return nil, errno
	}
	return d.childInode(ctx, name, a, out), 0
}

// resolve says what name is in this directory. A fresh listing answers
// without asking S3 (with what a HEAD or our own change learned, when the
// object is unchanged); otherwise one HEAD and one LIST, run concurrently.
func (d *dirNode) resolve(ctx context.Context, name string) (entryAttr, syscall.Errno) {
	if !validName(name) {
		return entryAttr{}, syscall.ENOENT
	}
	key := d.key(name)
	if ch := d.GetChild(name); ch != nil {
		if fn, ok := ch.Operations().(*fileNode); ok && fn.writing() {
			a, _, _ := fn.currentAttr()
			return a, 0
		}
	}
	l := d.freshListing()
	if l == nil && d.manyLookups() {
		switch listed, err := d.listUpTo(ctx, lookupListPages); {
		case err == nil:
			l = listed
		case errors.Is(err, errLargeDirectory):
			d.mu.Lock()
			d.largeUntil = time.Now().Add(d.b.cfg.MetadataTTL)
			d.mu.Unlock()
		}
	}
	if l != nil {
		a, ok := l.entries[name]
		if !ok {
			return entryAttr{}, syscall.ENOENT
		}
		if r, hit := d.b.lookups.Get(key); hit && r.found && r.attr.isDir == a.isDir && (a.isDir || r.attr.describes(a) || !a.fromHead && r.attr.fromHead && r.attr.etag == "") {
			a = r.attr // a HEAD or a change through this mount knows more
		}
		if (!a.isDir || d.b.cfg.ExactAttrs) && !d.knows(name, a) {
			// A name looked up by itself shows its stored attributes:
			// one HEAD, as the listing has no metadata.
			h, err := d.readMetadata(ctx, name, a)
			if err != nil {
				return entryAttr{}, core.Errno(err) // gone since the listing: ENOENT
			}
			a = h
		}
		return a, 0
	}
	a, err := d.b.lookupKey(ctx, key)
	if err != nil {
		return entryAttr{}, core.Errno(err)
	}
	if d.b.cfg.ExactAttrs && !d.knows(name, a) {
		// A directory's attributes are in its marker's metadata.
		if a, err = d.readMetadata(ctx, name, a); err != nil {
			return entryAttr{}, core.Errno(err)
		}
	}
	return a, 0
}

// manyLookups counts a lookup that found no fresh listing and says whether
// there were listAfterLookups of them within MetadataTTL.
func (d *dirNode) manyLookups() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.lookupWindow) > d.b.cfg.MetadataTTL {
		d.lookupWindow, d.lookupMisses = time.Now(), 0
	}
	d.lookupMisses++
	return d.lookupMisses > listAfterLookups && time.Now().After(d.largeUntil)
}

// writerChild returns the child inode of a file with an open upload.
func (d *dirNode) writerChild(name string) *gofs.Inode {
	ch := d.GetChild(name)
	if ch == nil {
		return nil
	}
	if f, ok := ch.Operations().(*fileNode); ok && f.writing() {
		return ch
	}
	return nil
}

func (d *dirNode) freshListing() *dirListing {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.listing != nil && time.Since(d.listing.fetched) < d.b.cfg.MetadataTTL {
		return d.listing
	}
	return nil
}

func (d *dirNode) dropListing() {
	d.mu.Lock()
	d.listing = nil
	d.mu.Unlock()
}

// listingPut records a change made through this mount in the directory's
// listing (a copy: handles may still read the old one), so that it stays
// trusted; a nil attr removes the name.
func (d *dirNode) listingPut(name string, a *entryAttr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.listing
	if old == nil {
		return
	}
	l := &dirListing{fetched: old.fetched, entries: make(map[string]entryAttr, len(old.entries)+1)}
	for k, v := range old.entries {
		l.entries[k] = v
	}
	if a == nil {
		delete(l.entries, name)
	} else {
		l.entries[name] = *a
	}
	l.names = make([]string, 0, len(l.entries))
	for k := range l.entries {
		l.names = append(l.names, k)
	}
	sort.Strings(l.names)
	d.listing = l
}

// setEmptyListing marks a directory this mount just created as empty.
func (d *dirNode) setEmptyListing() {
	d.mu.Lock()
	d.listing = &dirListing{fetched: time.Now(), entries: map[string]entryAttr{}}
	d.mu.Unlock()
}

// parentListingPut updates the listing of the directory holding inode n.
func parentListingPut(n *gofs.Inode, a *entryAttr) {
	if name, parent := n.Parent(); parent != nil {
		if pd, ok := parent.Operations().(*dirNode); ok {
			pd.listingPut(name, a)
		}
	}
}

// childInode returns the inode for name with attributes a, reusing the
// existing inode when its type still matches.
func (d *dirNode) childInode(ctx context.Context, name string, a entryAttr, out *fuse.EntryOut) *gofs.Inode {
	if ch := d.GetChild(name); ch != nil {
		switch n := ch.Operations().(type) {
		case *dirNode:
			if a.isDir {
				n.mu.Lock()
				if a.marker {
					n.attr.marker = true
				}
				if a.fromHead && !n.attrKnown {
					n.attr, n.attrKnown = a, true
				}
				n.mu.Unlock()
				n.dirAttr().fill(d.b, &out.Attr)
				return ch
			}
		case *fileNode:
			if a.isDir {
				break
			}
			// A listing does not say whether an object is a link; what
			// the node learned of the same object does.
			n.mu.Lock()
			if !a.fromHead && n.attr.fromHead && n.attr.describes(a) {
				a.mode = n.attr.mode
			}
			n.mu.Unlock()
			wantLink := a.mode&syscall.S_IFMT == syscall.S_IFLNK
			isLink := ch.StableAttr().Mode&syscall.S_IFMT == syscall.S_IFLNK
			if wantLink == isLink {
				if merged := n.setAttr(a); d.b.cfg.ExactAttrs && !merged.fromHead {
					expireAttr(out)
				}
				n.fillEntry(out)
				return ch
			}
		}
	}
	a.fill(d.b, &out.Attr)
	if a.isDir {
		nd := &dirNode{b: d.b, prefix: d.key(name) + "/", attr: entryAttr{isDir: true, uid: -1, gid: -1, marker: a.marker}}
		if a.fromHead || a.mode != 0 {
			nd.attr, nd.attrKnown = a, true
		}
		if (a.marker || d.b.cfg.ExactAttrs) && !nd.attrKnown {
			// Ask again at once: Getattr reads the marker's metadata.
			expireAttr(out)
		}
		return d.NewInode(ctx, nd, gofs.StableAttr{Mode: syscall.S_IFDIR})
	}
	fn := newFileNode(d.b, d.key(name))
	fn.setAttr(a)
	if d.b.cfg.ExactAttrs && !a.fromHead {
		expireAttr(out) // Getattr reads the metadata
	}
	return d.NewInode(ctx, fn, gofs.StableAttr{Mode: out.Attr.Mode & syscall.S_IFMT})
}

// expireAttr makes the kernel ask Getattr before it uses out's attributes.
// Not zero: go-fuse replaces a zero timeout with the mount's default.
func expireAttr(out *fuse.EntryOut) {
	out.SetAttrTimeout(time.Nanosecond)
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
// (0: no limit).
func (d *dirNode) listUpTo(ctx context.Context, maxPages int) (*dirListing, error) {
	l := &dirListing{fetched: time.Now(), entries: map[string]entryAttr{}}
	prefix := d.currentPrefix()
	token := ""
	for pages := 1; ; pages++ {
		page, err := d.b.client.List(ctx, prefix, "/", token, 1000)
		if err != nil {
			return nil, err
		}
		for _, p := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(p, prefix), "/")
			if !validName(name) {
				d.b.warnOnce(p, "key cannot be a file name; left out of the listing", logrus.Fields{"op": "readdir"})
				continue
			}
			if prev, ok := l.entries[name]; ok && !prev.isDir {
				d.b.warnOnce(prefix+name, "a file and a directory share this name; showing the directory", logrus.Fields{"op": "readdir"})
			}
			l.entries[name] = entryAttr{isDir: true, uid: -1, gid: -1}
		}
		for _, o := range page.Objects {
			name := strings.TrimPrefix(o.Key, prefix)
			if name == "" {
				continue // this directory's own marker
			}
			if !validName(name) {
				d.b.warnOnce(o.Key, "key cannot be a file name; left out of the listing", logrus.Fields{"op": "readdir"})
				continue
			}
			if prev, ok := l.entries[name]; ok && prev.isDir {
				d.b.warnOnce(o.Key, "a file and a directory share this name; showing the directory", logrus.Fields{"op": "readdir"})
				continue
			}
			l.entries[name] = attrFromObject(o.Size, o.LastModified, o.ETag, nil, false)
		}
		if page.NextToken == "" {
			break
		}
		if maxPages > 0 && pages >= maxPages {
			return nil, errLargeDirectory
		}
		token = page.NextToken
	}
	l.names = make([]string, 0, len(l.entries))
	for name := range l.entries {
		l.names = append(l.names, name)
	}
	sort.Strings(l.names)
	d.mu.Lock()
	d.listing = l
	d.mu.Unlock()
	return l, nil
}

// OpendirHandle implements gofs.NodeOpendirHandler: the listing is read
// once at opendir and served from the handle.
func (d *dirNode) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	l, err := d.list(ctx)
	if err != nil {
		d.b.log.WithError(err).WithFields(logrus.Fields{"op": "readdir", "key": d.currentPrefix()}).Warn("listing failed")
		return nil, 0, core.Errno(err)
	}
	if d.b.cfg.ExactAttrs {
		d.readListingMetadata(ctx, l)
	}
	h := &dirHandle{d: d, listing: l}
	// Files still being written are shown with their current size.
	for name, n := range d.b.writersUnder(d.currentPrefix()) {
		if _, ok := l.entries[name]; !ok {
			h.extra = append(h.extra, name)
			h.extraNodes = append(h.extraNodes, n)
		}
	}
	return h, 0, 0
}

// dirHandle serves one opendir's entries; READDIRPLUS lookups come from the
// listing itself, so `ls -l` costs list requests only.
type dirHandle struct {
	d          *dirNode
	listing    *dirListing
	extra      []string    // files being written that the listing lacks
	extraNodes []*fileNode // their nodes, same order
	pos        int         // index of the next entry; guarded by go-fuse's handle lock
}

func (h *dirHandle) count() int { return len(h.listing.names) + len(h.extra) }

// Readdirent implements gofs.FileReaddirenter.
func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if h.pos >= h.count() {
		return nil, 0
	}
	i := h.pos
	h.pos++
	de := &fuse.DirEntry{Off: uint64(h.pos)}
	if i < len(h.listing.names) {
		de.Name = h.listing.names[i]
		if h.listing.entries[de.Name].isDir {
			de.Mode = syscall.S_IFDIR
		} else {
			de.Mode = syscall.S_IFREG
		}
		return de, 0
	}
	de.Name = h.extra[i-len(h.listing.names)]
	de.Mode = syscall.S_IFREG
	return de, 0
}

// Seekdir implements gofs.FileSeekdirer (rewinddir, telldir/seekdir).
func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off > uint64(h.count()) {
		return syscall.EINVAL
	}
	h.pos = int(off)
	return 0
}

// Lookup implements gofs.FileLookuper for READDIRPLUS.
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n := h.d.writerChild(name); n != nil {
		return n, n.Operations().(*fileNode).fillEntry(out)
	}
	if a, ok := h.listing.entries[name]; ok {
		if r, hit := h.d.b.lookups.Get(h.d.key(name)); hit && r.found && r.attr.isDir == a.isDir {
			a = r.attr
		}
		return h.d.childInode(ctx, name, a, out), 0
	}
	return h.d.Lookup(ctx, name, out)
}

// Fsyncdir implements gofs.FileFsyncdirer: every change is in S3 once its
// operation returned, so there is nothing to flush (restic and borg call it).
func (h *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno { return 0 }
