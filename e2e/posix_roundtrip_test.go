package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// pxEntry is what a stat, readlink and the extended attributes say of a name.
type pxEntry struct {
	Mode, UID, GID      uint32
	Rdev                uint64
	Size                int64
	Atime, Mtime, Ctime unix.Timespec
	Target              string            // a symlink's
	Xattrs              map[string]string // name -> value (as text, %q)
}

func describeEntry(path string) (pxEntry, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return pxEntry{}, err
	}
	e := pxEntry{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Rdev: st.Rdev, Size: st.Size, Atime: st.Atim, Mtime: st.Mtim, Ctime: st.Ctim}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		t, err := os.Readlink(path)
		if err != nil {
			return e, err
		}
		e.Target = t
	}
	names, err := listXattrs(path)
	if err != nil && errnoOf(err) != unix.ENOTSUP {
		return e, fmt.Errorf("listxattr: %w", err)
	}
	for _, n := range names {
		v, err := getXattr(path, n)
		if err != nil {
			return e, fmt.Errorf("getxattr %s: %w", n, err)
		}
		if e.Xattrs == nil {
			e.Xattrs = map[string]string{}
		}
		e.Xattrs[n] = fmt.Sprintf("%q", v)
	}
	return e, nil
}

// fields lists an entry's attributes by name, for comparing one by one.
func (e pxEntry) fields() map[string]string {
	xs := make([]string, 0, len(e.Xattrs))
	for k, v := range e.Xattrs {
		xs = append(xs, k+"="+v)
	}
	sort.Strings(xs)
	return map[string]string{
		"type":   fileType(e.Mode),
		"mode":   fmt.Sprintf("%04o", e.Mode&07777),
		"owner":  fmt.Sprintf("%d:%d", e.UID, e.GID),
		"rdev":   fmt.Sprintf("%d,%d", unix.Major(e.Rdev), unix.Minor(e.Rdev)),
		"size":   fmt.Sprint(e.Size),
		"atime":  tsString(e.Atime),
		"mtime":  tsString(e.Mtime),
		"ctime":  tsString(e.Ctime),
		"target": e.Target,
		"xattrs": strings.Join(xs, " "),
	}
}

var pxFieldOrder = []string{"type", "mode", "owner", "rdev", "size", "atime", "mtime", "ctime", "target", "xattrs"}

// TestPOSIXRoundTrip checks metadata round trips with s3fs's conventions:
// (a) what mount A wrote is what a second mount shows once A is gone;
// (b) objects PUT with s3fs's headers show through the mount as s3fs
// meant them, legacy directory objects included.
func TestPOSIXRoundTrip(t *testing.T) {
	requireFUSE(t)
	start := time.Now()
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)

	a := &pxAsserts{t: t, name: "roundtrip (a) remount"}
	mountA := mountBucket(t, srv, bucket)
	names := writeRoundTripTree(a, mountA)
	// An xattr change reaches S3 after the attribute delay (2 s), not only
	// at unmount.
	md, err := waitMeta(c, "a/xattrs", 6*time.Second, func(md map[string]string) bool { return strings.Contains(md["xattr"], "user.bin") })
	a.check("x-amz-meta-xattr of a/xattrs in S3 within 6 s, before unmount", err == nil, "user.a, user.bin, user.empty", fmt.Sprintf("%q (%v)", md["xattr"], err))
	written, writtenErr := map[string]pxEntry{}, map[string]error{}
	for _, n := range names {
		written[n], writtenErr[n] = describeEntry(mountA.Path(n))
	}
	mountA.Unmount(t)

	b := &pxAsserts{t: t, name: "roundtrip (b) s3fs objects"}
	putS3fsObjects(t, c)

	mountB := mountBucket(t, srv, bucket)
	for _, n := range names {
		got, err := describeEntry(mountB.Path(n))
		w := written[n].fields()
		g := got.fields()
		for _, f := range pxFieldOrder {
			if writtenErr[n] != nil {
				a.check(n+" "+f+" after remount", false, "what mount A showed", fmt.Sprintf("mount A: %v", writtenErr[n]))
				continue
			}
			same := g[f] == w[f]
			if strings.HasSuffix(f, "time") && !same {
				// A write's mtime and ctime are S3's LastModified (no
				// utimes stored one), which a HEAD gives in whole
				// seconds; mount A showed the commit's own clock.
				same = writeTime(written[n], f, got)
			}
			a.check(n+" "+f+" after remount", err == nil && same, w[f], statOr(err, func() string { return g[f] }))
		}
	}
	checkRoundTripTypes(a, mountB.Path("a"))
	checkRoundTripS3(a, c, written)
	mountC := mountBucket(t, srv, bucket) // a third mount that has looked at nothing
	checkFreshTypes(a, mountC.Path("a"))
	mountC.Unmount(t)
	a.report()

	checkS3fsObjects(b, mountB)
	b.report()
	t.Logf("run time %s", time.Since(start).Round(time.Millisecond))
}

// writeRoundTripTree makes, through m as root, one entry per attribute
// worth carrying, and returns their names. Each step is an assertion.
func writeRoundTripTree(a *pxAsserts, m *mount) []string {
	a.t.Helper()
	must := func(what string, err error) {
		a.t.Helper()
		a.check("mount A: "+what, err == nil, "success", err)
	}
	p := m.Path
	setTimes := func(name string, atime, mtime unix.Timespec) {
		a.t.Helper()
		must("utimensat "+name, unix.UtimesNanoAt(unix.AT_FDCWD, p(name), []unix.Timespec{atime, mtime}, unix.AT_SYMLINK_NOFOLLOW))
	}
	file := func(name string, body string) {
		a.t.Helper()
		must("write "+name, os.WriteFile(p(name), []byte(body), 0o644))
	}
	must("mkdir a", os.Mkdir(p("a"), 0o755))

	fd, err := unix.Open(p("a/zero"), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0)
	must("create a/zero with mode 0", err)
	if err == nil {
		_, err = unix.Write(fd, []byte("mode zero"))
		err = errors.Join(err, unix.Close(fd))
	}
	must("write a/zero", err)

	file("a/all", "all bits")
	must("chmod a/all", unix.Chmod(p("a/all"), 0o7777))

	file("a/owned", "owned")
	must("chown a/owned", os.Chown(p("a/owned"), 64001, 64002))
	must("chmod a/owned", unix.Chmod(p("a/owned"), 0o4750))

	file("a/times", "times")
	setTimes("a/times", ts(1234567890, 123456789), ts(1300000000, 987654321))
	file("a/pre1970", "old")
	setTimes("a/pre1970", ts(-1, 999999999), ts(-1000000000, 500000000))
	file("a/post2038", "future")
	setTimes("a/post2038", ts(1<<33, 1), ts(4102444800, 999999999))

	file("a/xattrs", "with attributes")
	for _, x := range []struct {
		name  string
		value []byte
	}{{"user.a", []byte("hello")}, {"user.bin", []byte{0, 1, 0xff, '"', '%', '{', '\n'}}, {"user.empty", nil}} {
		must("setxattr a/xattrs "+x.name, unix.Setxattr(p("a/xattrs"), x.name, x.value, 0))
	}

	must("mkdir a/dir", os.Mkdir(p("a/dir"), 0o700))
	must("chown a/dir", os.Chown(p("a/dir"), 64002, posixShared))
	must("chmod a/dir", unix.Chmod(p("a/dir"), 0o2750))
	must("setxattr a/dir", unix.Setxattr(p("a/dir"), "user.d", []byte("dir value"), 0))
	setTimes("a/dir", ts(1111111111, 1), ts(1222222222, 2))

	must("mkfifo a/fifo", unix.Mkfifo(p("a/fifo"), 0o640))
	must("chmod a/fifo", unix.Chmod(p("a/fifo"), 0o640))
	must("chown a/fifo", os.Lchown(p("a/fifo"), 64001, 64001))
	must("mknod a/chr", unix.Mknod(p("a/chr"), unix.S_IFCHR|0o620, int(unix.Mkdev(4, 64))))
	must("mknod a/blk", unix.Mknod(p("a/blk"), unix.S_IFBLK|0o660, int(unix.Mkdev(8, 1))))
	must("mknod a/sock", unix.Mknod(p("a/sock"), unix.S_IFSOCK|0o755, 0))
	must("chmod a/sock", unix.Chmod(p("a/sock"), 0o755))

	must("symlink a/link", os.Symlink("target/of/link", p("a/link")))
	must("lchown a/link", os.Lchown(p("a/link"), 64001, 64001))

	return []string{"a", "a/zero", "a/all", "a/owned", "a/times", "a/pre1970", "a/post2038", "a/xattrs", "a/dir", "a/fifo", "a/chr", "a/blk", "a/sock", "a/link"}
}

// checkRoundTripTypes: readdir of the second mount gives each entry its type.
func checkRoundTripTypes(a *pxAsserts, dir string) {
	want := map[string]string{"zero": "reg", "all": "reg", "owned": "reg", "times": "reg", "pre1970": "reg", "post2038": "reg", "xattrs": "reg",
		"dir": "dir", "fifo": "fifo", "chr": "chr", "blk": "blk", "sock": "sock", "link": "lnk"}
	got, err := direntTypes(dir)
	a.check("readdir d_type after remount", err == nil && fmt.Sprint(got) == fmt.Sprint(want), want, statOr(err, func() string { return fmt.Sprint(got) }))
}

// checkFreshTypes: readdir of a mount that has not looked at the entries
// yet never calls a FIFO, socket or device a regular file (find -type p
// trusts d_type): it gives their type or DT_UNKNOWN, which makes find stat
// them. A link may show as a regular file there (a listing cannot tell;
// SEMANTICS.md).
func checkFreshTypes(a *pxAsserts, dir string) {
	got, err := direntTypes(dir)
	a.check("readdir of a fresh mount", err == nil, "entries", err)
	for name, want := range map[string]string{"zero": "reg", "all": "reg", "dir": "dir", "fifo": "fifo", "chr": "chr", "blk": "blk", "sock": "sock"} {
		ok := got[name] == want || want != "reg" && want != "dir" && got[name] == direntTypeName(unix.DT_UNKNOWN)
		a.check("fresh readdir d_type of "+name, ok, want+" (or unknown)", got[name])
	}
	out, err := runWithin(a.t, 20*time.Second, "find", dir, "-type", "p")
	a.check("find -type p on a fresh mount", err == nil && strings.TrimSpace(out) == filepath.Join(dir, "fifo"), filepath.Join(dir, "fifo"), statOr(err, func() string { return strings.TrimSpace(out) }))
}

// direntTypes reads dir with getdents and returns each name's d_type.
func direntTypes(dir string) (map[string]string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	out := map[string]string{}
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		for off := 0; off < n; {
			reclen := int(buf[off+16]) | int(buf[off+17])<<8
			typ := buf[off+18]
			name := string(buf[off+19 : off+reclen])
			if i := strings.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if name != "." && name != ".." {
				out[name] = direntTypeName(typ)
			}
			off += reclen
		}
	}
}

func direntTypeName(t byte) string {
	switch t {
	case unix.DT_REG:
		return "reg"
	case unix.DT_DIR:
		return "dir"
	case unix.DT_LNK:
		return "lnk"
	case unix.DT_FIFO:
		return "fifo"
	case unix.DT_SOCK:
		return "sock"
	case unix.DT_CHR:
		return "chr"
	case unix.DT_BLK:
		return "blk"
	}
	return fmt.Sprintf("dt%d", t)
}

// checkRoundTripS3 reads S3's metadata of what mount A wrote: s3fs's keys
// and encodings.
func checkRoundTripS3(a *pxAsserts, c s3client.API, written map[string]pxEntry) {
	meta := func(key string) map[string]string {
		info, err := headMeta(c, key)
		a.check("HEAD "+key, err == nil, "the object", err)
		if err != nil {
			return map[string]string{}
		}
		return info.Metadata
	}
	for _, o := range []struct{ key, name string }{
		{"a/chr", "a/chr"}, {"a/blk", "a/blk"}, {"a/fifo", "a/fifo"}, {"a/sock", "a/sock"}, {"a/owned", "a/owned"}, {"a/zero", "a/zero"}, {"a/dir/", "a/dir"},
	} {
		md, e := meta(o.key), written[o.name]
		a.check("S3 "+o.key+" x-amz-meta-mode (decimal, type bits)", md["mode"] == strconv.FormatUint(uint64(e.Mode), 10), e.Mode, md["mode"])
		a.check("S3 "+o.key+" x-amz-meta-uid/gid", md["uid"] == fmt.Sprint(e.UID) && md["gid"] == fmt.Sprint(e.GID), fmt.Sprintf("%d/%d", e.UID, e.GID), md["uid"]+"/"+md["gid"])
	}
	for _, key := range []string{"a/chr", "a/blk"} {
		md, e := meta(key), written[key]
		a.check("S3 "+key+" x-amz-meta-rdev (decimal)", md["rdev"] == strconv.FormatUint(e.Rdev, 10), e.Rdev, md["rdev"])
	}
	md := meta("a/times")
	for _, tm := range []struct {
		key  string
		want unix.Timespec
	}{{"mtime", ts(1300000000, 987654321)}, {"atime", ts(1234567890, 123456789)}, {"ctime", written["a/times"].Ctime}} {
		got, ok := parseMetaTime(md[tm.key])
		a.check("S3 a/times x-amz-meta-"+tm.key, ok && got == tm.want, tsString(tm.want), md[tm.key])
	}
	md = meta("a/xattrs")
	x, err := decodeS3fsXattr(md["xattr"])
	want := map[string][]byte{"user.a": []byte("hello"), "user.bin": {0, 1, 0xff, '"', '%', '{', '\n'}, "user.empty": {}}
	a.check("S3 a/xattrs x-amz-meta-xattr (URL-encoded JSON of base64)", err == nil && fmt.Sprintf("%q", x) == fmt.Sprintf("%q", want),
		fmt.Sprintf("%q", want), statOr(err, func() string { return fmt.Sprintf("%q (raw %q)", x, md["xattr"]) }))
	a.check("S3 a/xattrs x-amz-meta-xattr is percent-encoded", md["xattr"] != "" && !strings.ContainsAny(md["xattr"], `{}":`), "no raw { } \" :", md["xattr"])
	md = meta("a/dir/")
	x, err = decodeS3fsXattr(md["xattr"])
	a.check("S3 a/dir/ x-amz-meta-xattr", err == nil && string(x["user.d"]) == "dir value", "user.d=dir value", statOr(err, func() string { return fmt.Sprintf("%q", x) }))
}

// The s3fs objects of (b), PUT directly.
const (
	s3fsMtime     = "1700000000"
	s3fsMtimeNano = "1700000000.123456789"
)

func putS3fsObjects(t *testing.T, c s3client.API) {
	t.Helper()
	xattr := s3fsXattrValue(map[string][]byte{"user.k": []byte("value")})
	if xattr != "%7B%22user.k%22%3A%22dmFsdWU%3D%22%7D" {
		t.Fatalf("s3fsXattrValue builds %q, not s3fs's encoding", xattr)
	}
	owner := func(mode uint32, extra ...string) map[string]string {
		md := map[string]string{"mode": strconv.FormatUint(uint64(mode), 10), "uid": "1000", "gid": "1001",
			"mtime": s3fsMtime, "ctime": "1700000001", "atime": "1700000002"}
		for i := 0; i+1 < len(extra); i += 2 {
			md[extra[i]] = extra[i+1]
		}
		return md
	}
	objects := []struct {
		key, body, contentType string
		meta                   map[string]string
	}{
		{"s3fs/reg", "hello", "", owner(33188)}, // 0100644, s3fs's decimal
		{"s3fs/regns", "nano", "", owner(unix.S_IFREG|0o755, "mtime", s3fsMtimeNano)},
		{"s3fs/fifo", "", "", owner(4516)}, // 010644
		{"s3fs/chr", "", "", owner(unix.S_IFCHR|0o644, "rdev", "1088")},
		{"s3fs/blk", "", "", owner(unix.S_IFBLK|0o640, "rdev", "2049")},
		{"s3fs/sock", "", "", owner(unix.S_IFSOCK | 0o755)},
		{"s3fs/xattr", "x", "", owner(33188, "xattr", xattr)},
		{"s3fs/link", "target/of/link", "", owner(unix.S_IFLNK | 0o777)},
		{"s3fs/marker/", "", "", owner(unix.S_IFDIR | 0o1755)},
		// MinIO cannot hold an object "olddir" and keys under "olddir/"
		// at once (its disk layout): the old directory has no children
		// here; on S3 the listing would show them (the directory wins).
		{"s3fs/olddir", "", "application/x-directory", owner(unix.S_IFDIR | 0o775)},
		{"s3fs/oldempty", "", "application/x-directory", nil},
		{"s3fs/legacy_$folder$", "", "", nil},
		{"s3fs/legacy/f", "in legacy dir", "", nil},
		{"s3fs/lonely_$folder$", "", "", nil},
	}
	for _, o := range objects {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := c.Put(ctx, o.key, bytes.NewReader([]byte(o.body)), int64(len(o.body)), s3client.PutOptions{Metadata: o.meta, Headers: s3client.ObjectHeaders{ContentType: o.contentType}})
		cancel()
		if err != nil {
			t.Fatalf("put %s: %v", o.key, err)
		}
	}
}

func checkS3fsObjects(b *pxAsserts, m *mount) {
	stat := func(name string) (unix.Stat_t, error) { return lstatT(m.Path(name)) }
	whole := func(sec int64) unix.Timespec { return ts(sec, 0) }
	for _, o := range []struct {
		name   string
		mode   uint32
		rdev   uint64
		size   int64
		mtime  unix.Timespec
		owners bool // 1000:1001 and s3fs's ctime and atime
	}{
		{"s3fs/reg", unix.S_IFREG | 0o644, 0, 5, whole(1700000000), true},
		{"s3fs/regns", unix.S_IFREG | 0o755, 0, 4, ts(1700000000, 123456789), true},
		{"s3fs/fifo", unix.S_IFIFO | 0o644, 0, 0, whole(1700000000), true},
		{"s3fs/chr", unix.S_IFCHR | 0o644, unix.Mkdev(4, 64), 0, whole(1700000000), true},
		{"s3fs/blk", unix.S_IFBLK | 0o640, unix.Mkdev(8, 1), 0, whole(1700000000), true},
		{"s3fs/sock", unix.S_IFSOCK | 0o755, 0, 0, whole(1700000000), true},
		{"s3fs/xattr", unix.S_IFREG | 0o644, 0, 1, whole(1700000000), true},
		{"s3fs/link", unix.S_IFLNK | 0o777, 0, int64(len("target/of/link")), whole(1700000000), true},
		{"s3fs/marker", unix.S_IFDIR | 0o1755, 0, -1, whole(1700000000), true},
		{"s3fs/olddir", unix.S_IFDIR | 0o775, 0, -1, whole(1700000000), true},
	} {
		st, err := stat(o.name)
		b.check(o.name+" type and mode", err == nil && st.Mode == o.mode, fmt.Sprintf("%s %04o", fileType(o.mode), o.mode&07777),
			statOr(err, func() string { return fmt.Sprintf("%s %04o", fileType(st.Mode), st.Mode&07777) }))
		if o.rdev != 0 {
			b.check(o.name+" rdev", err == nil && st.Rdev == o.rdev, fmt.Sprintf("%d,%d", unix.Major(o.rdev), unix.Minor(o.rdev)),
				statOr(err, func() string { return fmt.Sprintf("%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)) }))
		}
		if o.size >= 0 {
			b.check(o.name+" size", err == nil && st.Size == o.size, o.size, statOr(err, func() string { return fmt.Sprint(st.Size) }))
		}
		b.check(o.name+" mtime", err == nil && st.Mtim == o.mtime, tsString(o.mtime), statOr(err, func() string { return tsString(st.Mtim) }))
		if o.owners {
			b.check(o.name+" owner", err == nil && st.Uid == 1000 && st.Gid == 1001, "1000:1001", statOr(err, func() string { return fmt.Sprintf("%d:%d", st.Uid, st.Gid) }))
			b.check(o.name+" ctime", err == nil && st.Ctim == whole(1700000001), "1700000001", statOr(err, func() string { return tsString(st.Ctim) }))
			b.check(o.name+" atime", err == nil && st.Atim == whole(1700000002), "1700000002", statOr(err, func() string { return tsString(st.Atim) }))
		}
	}
	target, err := os.Readlink(m.Path("s3fs/link"))
	b.check("s3fs/link target", err == nil && target == "target/of/link", "target/of/link", statOr(err, func() string { return target }))
	v, err := getXattr(m.Path("s3fs/xattr"), "user.k")
	b.check("s3fs/xattr user.k (s3fs's encoding)", err == nil && string(v) == "value", "value", statOr(err, func() string { return fmt.Sprintf("%q", v) }))
	names, err := listXattrs(m.Path("s3fs/xattr"))
	b.check("s3fs/xattr listxattr", err == nil && strings.Join(names, ",") == "user.k", "user.k", statOr(err, func() string { return strings.Join(names, ",") }))

	for _, d := range []string{"s3fs/oldempty", "s3fs/legacy", "s3fs/lonely"} {
		st, err := stat(d)
		b.check(d+" is a directory", err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR, "dir", statOr(err, func() string { return fileType(st.Mode) }))
	}
	for _, d := range []struct {
		dir  string
		want map[string]string
	}{
		{"s3fs", map[string]string{"reg": "reg", "regns": "reg", "fifo": "fifo", "chr": "chr", "blk": "blk", "sock": "sock", "xattr": "reg", "link": "lnk",
			"marker": "dir", "olddir": "dir", "oldempty": "dir", "legacy": "dir", "lonely": "dir"}},
		{"s3fs/olddir", map[string]string{}},
		{"s3fs/oldempty", map[string]string{}},
		{"s3fs/legacy", map[string]string{"f": "reg"}},
		{"s3fs/lonely", map[string]string{}},
	} {
		got, err := direntTypes(m.Path(d.dir))
		b.check("readdir "+d.dir, err == nil && fmt.Sprint(got) == fmt.Sprint(d.want), d.want, statOr(err, func() string { return fmt.Sprint(got) }))
	}
	// The listing of s3fs/ above must not have turned them into files.
	for _, d := range []string{"s3fs/olddir", "s3fs/oldempty", "s3fs/legacy", "s3fs/lonely"} {
		st, err := stat(d)
		b.check(d+" is still a directory after its parent's listing", err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR, "dir", statOr(err, func() string { return fileType(st.Mode) }))
	}
	body, err := os.ReadFile(m.Path("s3fs/legacy/f"))
	b.check("s3fs/legacy/f reads", err == nil && string(body) == "in legacy dir", "in legacy dir", statOr(err, func() string { return string(body) }))
	_, err = stat(filepath.Join("s3fs", "legacy_$folder$"))
	b.check("legacy_$folder$ is not a name", errnoOf(err) == unix.ENOENT, "ENOENT", errOrSuccess(err))
}

// writeTime says whether field f (atime, mtime or ctime) of got, read after
// a remount, is the LastModified of a write that mount A showed as was:
// whole seconds, within a second of A's, and equal to got's mtime (an
// entry whose times came from a write shows them all as LastModified).
func writeTime(was pxEntry, f string, got pxEntry) bool {
	pick := func(e pxEntry) unix.Timespec {
		switch f {
		case "atime":
			return e.Atime
		case "ctime":
			return e.Ctime
		}
		return e.Mtime
	}
	w, g := pick(was), pick(got)
	diff := time.Unix(g.Unix()).Sub(time.Unix(w.Unix()))
	return g.Nsec == 0 && g == got.Mtime && diff > -time.Second && diff < time.Second
}
