package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
)

// With Config.ExactAttrs, what a listing shows of an object whose metadata
// the mount has not read is completed with one HEAD (of a directory, of its
// marker) before the kernel sees it: a listing has no x-amz-meta-*, and the
// kernel would otherwise cache the listing's view for the metadata TTL.

// metadataConcurrency bounds the HEADs one listing's completion runs at once.
const metadataConcurrency = 16

// knows says whether a (from a listing) needs no HEAD: it carries metadata,
// or this mount already read or wrote the same object's.
func (d *dirNode) knows(name string, a entryAttr) bool {
	if a.fromHead {
		return true
	}
	if r, hit := d.b.lookups.Get(d.key(name)); hit && r.found && r.attr.fromHead && r.attr.isDir == a.isDir && (a.isDir || r.attr.describes(a)) {
		return true
	}
	if ch := d.GetChild(name); ch != nil {
		switch n := ch.Operations().(type) {
		case *fileNode:
			n.mu.Lock()
			defer n.mu.Unlock()
			return !a.isDir && n.attr.fromHead && n.attr.describes(a)
		case *dirNode:
			n.mu.Lock()
			defer n.mu.Unlock()
			return a.isDir && n.attrKnown
		}
	}
	return false
}

// direntType is the file type readdir hands out for a listed entry (S_IFMT
// bits; 0 is DT_UNKNOWN): a directory, or what this mount learned of the
// same object (a HEAD, its own write: a link, a FIFO); else a regular file,
// but for an object whose type a listing cannot tell. An empty object may be
// a FIFO, a socket, a device or an older tool's directory, and with
// ExactAttrs any object may be a link: those are DT_UNKNOWN, so that find,
// ls and rsync stat them (a lookup, which reads their metadata) instead of
// taking a FIFO for a file.
func (d *dirNode) direntType(name string, a entryAttr) uint32 {
	if a.isDir {
		return syscall.S_IFDIR
	}
	if r, hit := d.b.lookups.Get(d.key(name)); hit && r.found && r.attr.fromHead && (legacyDirListed(r.attr, a) || !r.attr.isDir && r.attr.describes(a)) {
		return r.attr.fileType()
	}
	if ch := d.GetChild(name); ch != nil {
		if n, ok := ch.Operations().(*fileNode); ok {
			n.mu.Lock()
			known, t := n.attr.fromHead && n.attr.describes(a), n.attr.fileType()
			n.mu.Unlock()
			if known {
				return t
			}
		}
	}
	if a.size == 0 || d.b.cfg.ExactAttrs {
		return 0
	}
	return syscall.S_IFREG
}

// readMetadata completes a listed entry's attributes with one HEAD and
// remembers them for the metadata TTL. A directory without a marker keeps
// the defaults, now known to be so.
func (d *dirNode) readMetadata(ctx context.Context, name string, a entryAttr) (entryAttr, error) {
	key := d.key(name)
	if a.isDir {
		info, err := d.b.client.Head(ctx, key+"/")
		switch {
		case err == nil:
			a = attrFromObject(0, info.LastModified, info.ETag, info.Metadata, true)
			a.isDir, a.marker = true, true
		case errors.Is(err, s3client.ErrNotFound):
			a = entryAttr{isDir: true, uid: -1, gid: -1, fromHead: true}
		default:
			return a, err
		}
	} else {
		info, err := d.b.client.Head(ctx, key)
		if err != nil {
			return a, err
		}
		a = attrFromHead(info)
		a.isDir = legacyDirObject(info)
	}
	d.b.remember(key, a)
	return a, nil
}

// readListingMetadata completes the entries of a fresh listing that the
// mount knows nothing more of, so that READDIRPLUS hands the kernel their
// stored attributes: one HEAD each, at most metadataConcurrency at once,
// all done before it returns.
func (d *dirNode) readListingMetadata(ctx context.Context, l *dirListing) {
	var names []string
	for _, name := range l.names {
		if !d.knows(name, l.entries[name]) {
			names = append(names, name)
		}
	}
	forEach(len(names), metadataConcurrency, func(i int) {
		if _, err := d.readMetadata(ctx, names[i], l.entries[names[i]]); err != nil && ctx.Err() == nil {
			d.b.log.WithError(err).WithFields(logrus.Fields{"op": "readdir", "key": d.key(names[i]), "code": s3client.Code(err)}).Warn("reading metadata failed; showing the listing's attributes")
		}
	})
}
