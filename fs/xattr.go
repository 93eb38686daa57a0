package fs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/bucketfs/bucketfs/core"
)

// Extended attributes live in the object's (a directory's marker's)
// x-amz-meta-xattr, as s3fs keeps them: a JSON object of names and base64
// values, percent-encoded. The user.* and trusted.* namespaces are stored
// (the kernel lets only CAP_SYS_ADMIN near trusted.*); security.* reads as
// absent and cannot be set; POSIX ACLs (system.posix_acl_*) answer
// EOPNOTSUPP, so tools fall back to the mode bits. A change is written like
// a chmod: with the file's upload, or by a self-copy (a directory: its
// marker) after attrDelay.
//
// S3 holds at most 2 KiB of user metadata per object (names and values,
// with the mode, owner and times): a set that would pass it answers ENOSPC.
const maxUserMetadata = 2048

var (
	_ gofs.NodeGetxattrer    = (*fileNode)(nil)
	_ gofs.NodeSetxattrer    = (*fileNode)(nil)
	_ gofs.NodeListxattrer   = (*fileNode)(nil)
	_ gofs.NodeRemovexattrer = (*fileNode)(nil)
	_ gofs.NodeGetxattrer    = (*dirNode)(nil)
	_ gofs.NodeSetxattrer    = (*dirNode)(nil)
	_ gofs.NodeListxattrer   = (*dirNode)(nil)
	_ gofs.NodeRemovexattrer = (*dirNode)(nil)
)

// Linux setxattr flags.
const (
	xattrCreate  = 1
	xattrReplace = 2
)

// xattrStored says whether attribute name is kept in S3; otherwise errno
// is what a get of it answers (ENODATA: absent; EOPNOTSUPP: not supported).
func xattrStored(name string) (stored bool, errno syscall.Errno) {
	switch {
	case strings.HasPrefix(name, "user."), strings.HasPrefix(name, "trusted."):
		return true, 0
	case strings.HasPrefix(name, "security."):
		return false, syscall.ENODATA
	default:
		return false, syscall.EOPNOTSUPP
	}
}

// parseXattrs reads an x-amz-meta-xattr value; a malformed one reads as no
// attributes (s3fs does the same).
func parseXattrs(v string) map[string][]byte {
	out := map[string][]byte{}
	if v == "" {
		return out
	}
	raw, err := url.PathUnescape(v)
	if err != nil {
		return out
	}
	var enc map[string]string
	if json.Unmarshal([]byte(raw), &enc) != nil {
		return out
	}
	for k, b64 := range enc {
		if val, err := base64.StdEncoding.DecodeString(b64); err == nil {
			out[k] = val
		}
	}
	return out
}

// formatXattrs writes attrs as x-amz-meta-xattr; "" for none.
func formatXattrs(attrs map[string][]byte) string {
	if len(attrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + k + `":"` + base64.StdEncoding.EncodeToString(attrs[k]) + `"`)
	}
	b.WriteByte('}')
	return percentEncode(b.String())
}

// percentEncode escapes every byte but letters, digits and -_.~/ as s3fs's
// urlEncodePath does, so that the value is a plain ASCII header.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-_.~/", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// validXattrName refuses names s3fs's format cannot carry.
func validXattrName(name string) bool {
	return !strings.ContainsAny(name, "\",:\\{}") && len(name) <= 255
}

// metadataSize is the size S3 counts of user metadata.
func metadataSize(meta map[string]string) int {
	n := 0
	for k, v := range meta {
		n += len(k) + len(v)
	}
	return n
}

// xattrGet answers getxattr from attrs (see gofs.NodeGetxattrer).
func xattrGet(attrs map[string][]byte, name string, dest []byte) (uint32, syscall.Errno) {
	v, ok := attrs[name]
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

// xattrList answers listxattr from attrs.
func xattrList(attrs map[string][]byte, dest []byte) (uint32, syscall.Errno) {
	names := make([]string, 0, len(attrs))
	n := 0
	for k := range attrs {
		names = append(names, k)
		n += len(k) + 1
	}
	if len(dest) == 0 {
		return uint32(n), 0
	}
	if len(dest) < n {
		return uint32(n), syscall.ERANGE
	}
	sort.Strings(names)
	off := 0
	for _, k := range names {
		off += copy(dest[off:], k)
		dest[off] = 0
		off++
	}
	return uint32(n), 0
}

// xattrChange applies a set (value non-nil) or a remove of name to the
// metadata a, checking flags and S3's size limit. a.meta is updated.
func xattrChange(a *entryAttr, name string, value []byte, flags uint32) syscall.Errno {
	if stored, _ := xattrStored(name); !stored {
		return syscall.EOPNOTSUPP
	}
	if !validXattrName(name) {
		return syscall.EINVAL
	}
	attrs := parseXattrs(a.meta[metaXattr])
	_, exists := attrs[name]
	switch {
	case value == nil && !exists:
		return syscall.ENODATA
	case value != nil && flags&xattrCreate != 0 && exists:
		return syscall.EEXIST
	case value != nil && flags&xattrReplace != 0 && !exists:
		return syscall.ENODATA
	}
	if value == nil {
		delete(attrs, name)
	} else {
		attrs[name] = append([]byte{}, value...)
	}
	meta := make(map[string]string, len(a.meta)+1)
	for k, v := range a.meta {
		meta[k] = v
	}
	if enc := formatXattrs(attrs); enc != "" {
		meta[metaXattr] = enc
	} else {
		delete(meta, metaXattr)
	}
	next := *a
	next.meta = meta
	next.changed()
	if metadataSize(next.withMeta()) > maxUserMetadata {
		return syscall.ENOSPC
	}
	*a = next
	return 0
}

// knownMetadata returns the file's attributes with its whole metadata,
// reading it with one HEAD when only a listing described the object.
func (f *fileNode) knownMetadata(ctx context.Context) (entryAttr, syscall.Errno) {
	a, _, writing := f.currentAttr()
	if a.fromHead || writing || a.etag == "" {
		return a, 0
	}
	if _, err := f.headVersion(ctx); err != nil {
		return a, core.Errno(err)
	}
	a, _, _ = f.currentAttr()
	return a, 0
}

// xattrHolder is a node whose extended attributes live in its metadata.
type xattrHolder interface {
	// xattrs returns the node's attributes, its metadata read if need be.
	xattrs(ctx context.Context) (map[string][]byte, syscall.Errno)
	// changeXattr sets (value non-nil) or removes name.
	changeXattr(ctx context.Context, name string, value []byte, flags uint32) syscall.Errno
}

func getxattr(ctx context.Context, n xattrHolder, name string, dest []byte) (uint32, syscall.Errno) {
	if stored, errno := xattrStored(name); !stored {
		return 0, errno // no request: the kernel asks security.capability at every write
	}
	attrs, errno := n.xattrs(ctx)
	if errno != 0 {
		return 0, errno
	}
	return xattrGet(attrs, name, dest)
}

func listxattr(ctx context.Context, n xattrHolder, dest []byte) (uint32, syscall.Errno) {
	attrs, errno := n.xattrs(ctx)
	if errno != 0 {
		return 0, errno
	}
	return xattrList(attrs, dest)
}

func setxattr(ctx context.Context, n xattrHolder, name string, value []byte, flags uint32) syscall.Errno {
	if value == nil {
		value = []byte{} // an empty value is a value
	}
	return n.changeXattr(ctx, name, value, flags)
}

// Getxattr implements gofs.NodeGetxattrer.
func (f *fileNode) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	return getxattr(ctx, f, name, dest)
}

// Listxattr implements gofs.NodeListxattrer.
func (f *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(ctx, f, dest)
}

// Setxattr implements gofs.NodeSetxattrer.
func (f *fileNode) Setxattr(ctx context.Context, name string, value []byte, flags uint32) syscall.Errno {
	return setxattr(ctx, f, name, value, flags)
}

// Removexattr implements gofs.NodeRemovexattrer.
func (f *fileNode) Removexattr(ctx context.Context, name string) syscall.Errno {
	return f.changeXattr(ctx, name, nil, 0)
}

func (f *fileNode) xattrs(ctx context.Context) (map[string][]byte, syscall.Errno) {
	a, errno := f.knownMetadata(ctx)
	if errno != 0 {
		return nil, errno
	}
	return parseXattrs(a.meta[metaXattr]), 0
}

func (f *fileNode) changeXattr(ctx context.Context, name string, value []byte, flags uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	if f.b.cfg.ReadOnly {
		return syscall.EROFS
	}
	if _, errno := f.knownMetadata(ctx); errno != 0 {
		return errno
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attr.meta == nil {
		f.attr.meta = map[string]string{}
	}
	if errno := xattrChange(&f.attr, name, value, flags); errno != 0 {
		return errno
	}
	f.pinMtimeLocked()
	if !f.file.SetMetadata(f.attr.withMeta()) {
		f.markPendingLocked()
	}
	return 0
}

func (d *dirNode) xattrs(ctx context.Context) (map[string][]byte, syscall.Errno) {
	if err := d.loadMarkerAttr(ctx); err != nil {
		return nil, core.Errno(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return parseXattrs(d.attr.meta[metaXattr]), 0
}

// Getxattr implements gofs.NodeGetxattrer.
func (d *dirNode) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	return getxattr(ctx, d, name, dest)
}

// Listxattr implements gofs.NodeListxattrer.
func (d *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(ctx, d, dest)
}

// Setxattr implements gofs.NodeSetxattrer. The bucket's root has no marker:
// its attributes last for the mount only.
func (d *dirNode) Setxattr(ctx context.Context, name string, value []byte, flags uint32) syscall.Errno {
	return setxattr(ctx, d, name, value, flags)
}

// Removexattr implements gofs.NodeRemovexattrer.
func (d *dirNode) Removexattr(ctx context.Context, name string) syscall.Errno {
	return d.changeXattr(ctx, name, nil, 0)
}

func (d *dirNode) changeXattr(ctx context.Context, name string, value []byte, flags uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	if d.b.cfg.ReadOnly {
		return syscall.EROFS
	}
	if _, errno := d.xattrs(ctx); errno != 0 {
		return errno
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.attrKnown && d.attr.mode == 0 {
		d.attr.mode = syscall.S_IFDIR | uint32(d.b.cfg.DirMode.Perm())
	}
	d.attrKnown = true
	if errno := xattrChange(&d.attr, name, value, flags); errno != 0 {
		return errno
	}
	if d.prefix != "" {
		d.schedulePendingLocked()
	}
	return 0
}
