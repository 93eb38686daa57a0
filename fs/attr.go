package fs

import (
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/s3client"
)

// Metadata keys bucketfs reads and writes, the ones s3fs and rclone use, so
// that buckets written by those tools show the same attributes.
const (
	metaMode  = "mode"
	metaUID   = "uid"
	metaGID   = "gid"
	metaMtime = "mtime"
	metaCtime = "ctime"
	metaAtime = "atime"
	metaRdev  = "rdev"
	metaXattr = "xattr"
)

// entryAttr is what bucketfs knows of one name: a file or a directory and
// its attributes. Values are immutable once built; updates build new ones.
type entryAttr struct {
	isDir bool
	size  int64
	mtime time.Time
	// mode is the full mode (type and permission bits) from x-amz-meta-mode;
	// zero when the object carries none and the mount's defaults apply.
	mode     uint32
	uid, gid int64 // -1 when the object carries none
	mtimeSet bool  // mtime comes from x-amz-meta-mtime (or a utimes), not LastModified
	// ctime and atime come from x-amz-meta-ctime and -atime, or from a
	// change through this mount; zero when unknown (mtime is shown).
	ctime, atime time.Time
	rdev         uint32 // a device node's number (x-amz-meta-rdev)
	// marker is true for a directory known to have a "dir/" marker object,
	// whose metadata holds the directory's attributes.
	marker   bool
	etag     string
	modified time.Time // S3's LastModified
	// fromHead is true when the attributes come from HeadObject or from our
	// own write (metadata known), false when from a listing (size and
	// LastModified only).
	fromHead bool
	// meta is the object's whole user metadata when fromHead, kept so that a
	// self-copy replacing it loses nothing; headers likewise are its
	// Content-Type, storage class, encryption and the rest a copy keeps.
	meta    map[string]string
	headers s3client.ObjectHeaders
}

// describes says whether a (what a HEAD or our own write learned) still
// describes the object a listing shows as listed, so that a's metadata holds
// for it. ETag and size must match. LastModified is compared in whole
// seconds, because HEAD gives it with second precision and a listing with
// milliseconds; a zero a.modified (an object we just wrote or copied, whose
// LastModified S3 did not tell us) matches on ETag and size alone.
func (a entryAttr) describes(listed entryAttr) bool {
	if a.etag == "" || a.etag != listed.etag || a.size != listed.size {
		return false
	}
	return a.modified.IsZero() || a.modified.Unix() == listed.modified.Unix()
}

// withMeta returns a's metadata with the attribute keys set from a.
func (a entryAttr) withMeta() map[string]string {
	m := make(map[string]string, len(a.meta)+4)
	for k, v := range a.meta {
		m[k] = v
	}
	if a.mode != 0 {
		m[metaMode] = strconv.FormatUint(uint64(a.mode), 10)
	}
	if a.uid >= 0 {
		m[metaUID] = strconv.FormatInt(a.uid, 10)
	}
	if a.gid >= 0 {
		m[metaGID] = strconv.FormatInt(a.gid, 10)
	}
	// A time the entry no longer has (a write made LastModified its mtime
	// and ctime) leaves the metadata.
	delete(m, metaMtime)
	delete(m, metaCtime)
	delete(m, metaAtime)
	if a.mtimeSet {
		m[metaMtime] = formatMtime(a.mtime)
	}
	if !a.ctime.IsZero() {
		m[metaCtime] = formatMtime(a.ctime)
	}
	if !a.atime.IsZero() {
		m[metaAtime] = formatMtime(a.atime)
	}
	if a.rdev != 0 {
		m[metaRdev] = strconv.FormatUint(uint64(a.rdev), 10)
	}
	return m
}

// created returns the attributes of an entry this mount makes now: type and
// permission bits mode, owned by the caller (uid, gid), its three times now.
func created(mode uint32, uid, gid uint32) entryAttr {
	now := time.Now()
	return entryAttr{mode: mode, uid: int64(uid), gid: int64(gid), mtime: now, mtimeSet: true, ctime: now, atime: now}
}

// changed records a change of the entry's status (chmod, chown, rename,
// write, truncate, xattr): ctime becomes now.
func (a *entryAttr) changed() {
	a.ctime = time.Now()
}

// attrFromHead builds a file's attributes from a HeadObject's answer.
func attrFromHead(info *s3client.ObjectInfo) entryAttr {
	a := attrFromObject(info.Size, info.LastModified, info.ETag, info.Metadata, true)
	a.headers = info.Headers
	return a
}

// attrFromObject builds a file's attributes from S3's answer.
func attrFromObject(size int64, lastModified time.Time, etag string, meta map[string]string, fromHead bool) entryAttr {
	a := entryAttr{size: size, mtime: lastModified, modified: lastModified, etag: etag, uid: -1, gid: -1, fromHead: fromHead, meta: meta}
	if v, ok := meta[metaMtime]; ok {
		if t, ok := parseMtime(v); ok {
			a.mtime, a.mtimeSet = t, true
		}
	}
	if v, ok := meta[metaCtime]; ok {
		if t, ok := parseMtime(v); ok {
			a.ctime = t
		}
	}
	if v, ok := meta[metaAtime]; ok {
		if t, ok := parseMtime(v); ok {
			a.atime = t
		}
	}
	if v, ok := meta[metaMode]; ok {
		if m, err := strconv.ParseUint(v, 10, 32); err == nil {
			a.mode = uint32(m)
		}
	}
	if v, ok := meta[metaRdev]; ok {
		if n, err := strconv.ParseUint(v, 10, 32); err == nil {
			a.rdev = uint32(n)
		}
	}
	if v, ok := meta[metaUID]; ok {
		if n, err := strconv.ParseUint(v, 10, 32); err == nil {
			a.uid = int64(n)
		}
	}
	if v, ok := meta[metaGID]; ok {
		if n, err := strconv.ParseUint(v, 10, 32); err == nil {
			a.gid = int64(n)
		}
	}
	return a
}

// parseMtime reads x-amz-meta-mtime, -ctime and -atime: s3fs writes whole
// seconds, or seconds and nanoseconds, rclone seconds with a fraction
// ("1700000000.123456789"). Both parts are read as integers: a float64
// cannot hold nanoseconds at today's epoch. Before 1970 the seconds are
// negative and the fraction still counts forward from them, as
// formatMtime writes it ("-2.750000000" is 1.25 s before the epoch).
func parseMtime(v string) (time.Time, bool) {
	secText, fracText, _ := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(secText, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var nsec int64
	if fracText != "" {
		if len(fracText) > 9 {
			fracText = fracText[:9]
		}
		fracText += strings.Repeat("0", 9-len(fracText))
		if nsec, err = strconv.ParseInt(fracText, 10, 64); err != nil || nsec < 0 {
			return time.Time{}, false
		}
	}
	return time.Unix(sec, nsec), true
}

// formatMtime writes x-amz-meta-mtime, -ctime and -atime in rclone's format,
// which s3fs also reads: Unix seconds (negative before 1970), a dot, and the
// nanoseconds after them.
func formatMtime(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10) + "." + strconv.FormatInt(int64(t.Nanosecond())+1e9, 10)[1:]
}

// fill writes a into out, with the mount's defaults for what a lacks.
func (a entryAttr) fill(b *bucketFS, out *fuse.Attr) {
	out.Size = uint64(a.size)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 1 << 20
	t := a.mtime
	if t.IsZero() {
		t = b.started
	}
	at, ct := t, t
	if !a.atime.IsZero() {
		at = a.atime
	}
	if !a.ctime.IsZero() {
		ct = a.ctime
	}
	out.SetTimes(&at, &t, &ct)
	out.Uid, out.Gid = b.cfg.UID, b.cfg.GID
	if a.uid >= 0 {
		out.Uid = uint32(a.uid)
	}
	if a.gid >= 0 {
		out.Gid = uint32(a.gid)
	}
	typ, perm := a.fileType(), a.mode&07777
	out.Nlink = 1
	switch {
	case typ == syscall.S_IFDIR:
		out.Nlink = 2
		if a.mode == 0 {
			perm = uint32(b.cfg.DirMode.Perm())
		}
	case typ == syscall.S_IFREG:
		if a.mode == 0 {
			perm = uint32(b.cfg.FileMode.Perm())
		}
	case isNode(a.mode):
		out.Rdev = a.rdev
	}
	out.Mode = typ | perm
	if b.cfg.ReadOnly {
		out.Mode &^= 0222
	}
}

// fileType is the S_IFMT bits of what a describes: a directory, a link, a
// FIFO, socket or device, else a regular file.
func (a entryAttr) fileType() uint32 {
	switch {
	case a.isDir:
		return syscall.S_IFDIR
	case a.mode&syscall.S_IFMT == syscall.S_IFLNK || isNode(a.mode):
		return a.mode & syscall.S_IFMT
	}
	return syscall.S_IFREG
}

// isNode says whether mode is of a FIFO, a socket or a device: an object
// with no content whose type lives in x-amz-meta-mode (s3fs's layout).
func isNode(mode uint32) bool {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
		return true
	}
	return false
}
