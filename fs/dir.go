package fs

import (
	"context"
	"errors"
	"sort"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/s3client"
)

// dirNode is a directory: a "/"-delimited key prefix. It exists implicitly
// (keys under it) or explicitly (a "prefix/" marker object).
type dirNode struct {
	gofs.Inode
	b       *bucketFS
	mu      sync.Mutex  // guards every field below
	prefix  string      // the key prefix of the directory's children; cfg.Prefix for the root; changed by rename
	listing *dirListing // the last complete listing: its entries trusted for MetadataTTL, its absences for NegativeTTL
	// listingGen counts changes to the listing through this mount: a
	// listing that began before one may lack it and is not kept.
	listingGen uint64
	relisting  *listCall // the listing lookups started, while it runs
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
)

// dirListing is a directory's children as one complete listing saw them.
type dirListing struct {
	fetched time.Time            // when the listing began: a key made later may be missing
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
	if err := d.loadMarkerAttr(ctx); err != nil {
		return core.Errno(err)
	}
	d.dirAttr().fill(d.b, &out.Attr)
	return 0
}

// loadMarkerAttr reads a directory's attributes from its marker's metadata
// (one HEAD) the first time they are needed: a listing does not say whether
// a directory has a marker, and the kernel checks permissions against its
// mode and owner. A directory without one keeps the defaults. Times this
// mount set since (entriesChanged) are kept.
func (d *dirNode) loadMarkerAttr(ctx context.Context) error {
	d.mu.Lock()
	needHead := !d.attrKnown && d.prefix != ""
	prefix := d.prefix
	d.mu.Unlock()
	if !needHead {
		return nil
	}
	info, err := d.b.client.Head(ctx, prefix)
	if err != nil && !errors.Is(err, s3client.ErrNotFound) {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil && !d.attrKnown {
		a := attrFromObject(0, info.LastModified, info.ETag, info.Metadata, true)
		a.isDir, a.marker = true, true
		if d.attr.mtimeSet {
			a.mtime, a.mtimeSet, a.ctime = d.attr.mtime, true, d.attr.ctime
		}
		d.attr = a
	}
	d.attrKnown = true // a missing marker leaves the defaults
	return nil
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

// Lookup implements gofs.NodeLookuper (see resolve for its cost). The
// kernel keeps an absence only for what remains of NegativeTTL since S3
// said it, so that another client's new object shows within NegativeTTL.
func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if len(name) > 255 || len(d.key(name)) > maxKeyLen {
		// Every call on such a name (unlink, chmod, rename...) looks it
		// up first: they all answer this.
		return nil, syscall.ENAMETOOLONG
	}
	if n := d.writerChild(name); n != nil {
		return n, n.Operations().(*fileNode).fillEntry(out)
	}
	a, absentSince, errno := d.resolveName(ctx, name)
	if errno != 0 {
		if errno == syscall.ENOENT && !absentSince.IsZero() {
			// Not zero: go-fuse replaces a zero timeout with NegativeTTL.
			out.SetEntryTimeout(max(d.b.cfg.NegativeTTL-time.Since(absentSince), time.Nanosecond))
		}
		return nil, errno
	}
	return d.childInode(ctx, name, a, out), 0
}

// resolve says what name is in this directory (see resolveName).
func (d *dirNode) resolve(ctx context.Context, name string) (entryAttr, syscall.Errno) {
	a, _, errno := d.resolveName(ctx, name)
	return a, errno
}

// resolveName says what name is in this directory. A listing answers
// without asking S3 (with what a HEAD or our own change learned, when the
// object is unchanged): for a name it holds within MetadataTTL, for a name
// it lacks within NegativeTTL. Otherwise a small directory (one page) is
// listed again, as that one LIST answers every name, and other names cost
// one HEAD and one LIST, run concurrently. For a name that is absent it
// also says since when S3 said so.
func (d *dirNode) resolveName(ctx context.Context, name string) (entryAttr, time.Time, syscall.Errno) {
	if !validName(name) {
		return entryAttr{}, time.Time{}, syscall.ENOENT
	}
	key := d.key(name)
	if ch := d.GetChild(name); ch != nil {
		if fn, ok := ch.Operations().(*fileNode); ok && fn.writing() {
			a, _, _ := fn.currentAttr()
			return a, time.Time{}, 0
		}
	}
	l := d.freshListing()
	if l == nil && d.manyLookups() {
		l = d.relistForLookups(ctx)
	}
	var a entryAttr
	var ok bool
	if l != nil {
		a, ok = l.entries[name]
		if !ok && time.Since(l.fetched) >= d.b.cfg.NegativeTTL {
			// Too old to say the name is absent: another client may have
			// made it since.
			small := len(l.entries) < listPageKeys
			if l = nil; small {
				l = d.relistForLookups(ctx)
			}
			if l != nil {
				a, ok = l.entries[name]
			}
		}
	}
	if l != nil {
		if !ok {
			return entryAttr{}, l.fetched, syscall.ENOENT
		}
		if r, hit := d.b.lookups.Get(key); hit && r.found && (r.attr.isDir == a.isDir && (a.isDir || r.attr.describes(a) || !a.fromHead && r.attr.fromHead && r.attr.etag == "") || legacyDirListed(r.attr, a)) {
			a = r.attr // a HEAD or a change through this mount knows more
		}
		if !d.knows(name, a) {
			// A name looked up by itself shows its stored attributes:
			// one HEAD (of a directory: of its marker), as the listing
			// has no metadata and the kernel checks permissions
			// against them.
			h, err := d.readMetadata(ctx, name, a)
			if err != nil {
				d.b.warnFailed("lookup", key, err)
				return entryAttr{}, time.Time{}, core.Errno(err) // gone since the listing: ENOENT
			}
			a = h
		}
		return a, time.Time{}, 0
	}
	a, absentSince, err := d.b.lookupKey(ctx, key)
	if err != nil {
		return entryAttr{}, absentSince, core.Errno(err)
	}
	if a.isDir && !d.knows(name, a) {
		// A directory's attributes are in its marker's metadata.
		if a, err = d.readMetadata(ctx, name, a); err != nil {
			return entryAttr{}, time.Time{}, core.Errno(err)
		}
	}
	return a, time.Time{}, 0
}

// relistForLookups lists the directory for lookups, or returns nil when it
// cannot: a failure (the caller asks by name), or more than lookupListPages
// pages (not tried again for MetadataTTL).
func (d *dirNode) relistForLookups(ctx context.Context) *dirListing {
	l, err := d.relist(ctx)
	if errors.Is(err, errLargeDirectory) {
		d.mu.Lock()
		d.largeUntil = time.Now().Add(d.b.cfg.MetadataTTL)
		d.mu.Unlock()
	}
	return l
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
	d.listingGen++
	d.mu.Unlock()
}

// listingPut records a change made through this mount in the directory's
// listing (a copy: handles may still read the old one), so that it stays
// trusted; a nil attr removes the name.
func (d *dirNode) listingPut(name string, a *entryAttr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.listingGen++
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
	d.listingGen++
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
				known := n.attrKnown
				n.mu.Unlock()
				n.dirAttr().fill(d.b, &out.Attr)
				if !known {
					expireAttr(out) // Getattr reads the marker's metadata
				}
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
		if !nd.attrKnown {
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
