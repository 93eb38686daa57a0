package fs

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bucketfs/bucketfs/s3client/s3fake"
)

// TestXattrS3fsFormat: x-amz-meta-xattr as s3fs writes it (percent-encoded
// JSON of base64 values) reads back, and what we write is that format.
func TestXattrS3fsFormat(t *testing.T) {
	// s3fs's value for user.k = "value" and user.empty = "".
	s3fs := "%7B%22user.empty%22%3A%22%22%2C%22user.k%22%3A%22dmFsdWU%3D%22%7D"
	got := parseXattrs(s3fs)
	if string(got["user.k"]) != "value" || len(got) != 2 || got["user.empty"] == nil {
		t.Fatalf("parsed %q", got)
	}
	if enc := formatXattrs(got); enc != s3fs {
		t.Fatalf("formatXattrs = %q, want s3fs's %q", enc, s3fs)
	}
	for _, bad := range []string{"%ZZ", "{not json", "%7B%22user.k%22%3A%22!!!%22%7D"} {
		if n := len(parseXattrs(bad)); n != 0 {
			t.Errorf("malformed %q read as %d attributes, want none", bad, n)
		}
	}
	if formatXattrs(nil) != "" {
		t.Error("no attributes must leave the metadata key out")
	}
}

// TestXattrChange: flags, namespaces, removal and S3's 2 KiB metadata bound.
func TestXattrChange(t *testing.T) {
	a := entryAttr{uid: -1, gid: -1, meta: map[string]string{"other": "kept"}}
	steps := []struct {
		name  string
		value []byte
		flags uint32
		want  syscall.Errno
	}{
		{"user.a", []byte("1"), 0, 0},
		{"user.a", []byte("2"), xattrCreate, syscall.EEXIST},
		{"user.b", []byte("2"), xattrReplace, syscall.ENODATA},
		{"user.a", []byte("3"), xattrReplace, 0},
		{"security.selinux", []byte("x"), 0, syscall.EOPNOTSUPP},
		{"system.posix_acl_access", []byte("x"), 0, syscall.EOPNOTSUPP},
		{`user.a"b`, []byte("x"), 0, syscall.EINVAL},
		{"user.big", make([]byte, 1600), 0, syscall.ENOSPC},
		{"user.b", nil, 0, syscall.ENODATA},
		{"user.a", nil, 0, 0},
	}
	for i, s := range steps {
		if got := xattrChange(&a, s.name, s.value, s.flags); got != s.want {
			t.Fatalf("step %d (%s): errno %v, want %v", i, s.name, got, s.want)
		}
		if i == 3 {
			if v := parseXattrs(a.meta[metaXattr])["user.a"]; string(v) != "3" {
				t.Fatalf("after replace: %q", v)
			}
			if a.ctime.IsZero() {
				t.Fatal("ctime not changed by setxattr")
			}
		}
	}
	if _, ok := a.meta[metaXattr]; ok || a.meta["other"] != "kept" {
		t.Fatalf("after removing the last attribute: %v", a.meta)
	}
}

// TestTimesBeyond32Bits: times before 1970 and past 2038, with nanoseconds,
// survive the metadata.
func TestTimesBeyond32Bits(t *testing.T) {
	for _, tm := range []time.Time{time.Unix(-1, 250000000), time.Unix(-2208988800, 1), time.Unix(1<<33, 999999999)} {
		a := entryAttr{uid: -1, gid: -1, mtime: tm, mtimeSet: true, ctime: tm, atime: tm}
		back := attrFromObject(0, time.Now(), "", a.withMeta(), true)
		if !back.mtime.Equal(tm) || !back.ctime.Equal(tm) || !back.atime.Equal(tm) {
			t.Errorf("%v came back as %v / %v / %v (%v)", tm, back.mtime, back.ctime, back.atime, a.withMeta())
		}
	}
}

// TestNodeAttributes: a FIFO, a socket and a device keep their type and
// device number; a write's times leave the metadata.
func TestNodeAttributes(t *testing.T) {
	b := &bucketFS{cfg: Config{FileMode: 0o644, DirMode: 0o755}}
	for _, mode := range []uint32{syscall.S_IFIFO | 0o640, syscall.S_IFSOCK | 0o600, syscall.S_IFCHR | 0o660, syscall.S_IFBLK | 0o660} {
		a := created(mode, 7, 8)
		a.rdev = 0x0107
		back := attrFromObject(0, time.Now(), "", a.withMeta(), true)
		var out fuse.Attr
		back.fill(b, &out)
		if out.Mode != mode || out.Rdev != 0x0107 || out.Uid != 7 || out.Gid != 8 {
			t.Errorf("mode %o: got mode %o rdev %x owner %d:%d", mode, out.Mode, out.Rdev, out.Uid, out.Gid)
		}
	}
	a := created(syscall.S_IFREG|0o644, 0, 0)
	a.mtimeSet, a.ctime, a.atime = false, time.Time{}, time.Time{}
	meta := map[string]string{metaMtime: "1", metaCtime: "2", metaAtime: "3"}
	a.meta = meta
	if m := a.withMeta(); m[metaMtime] != "" || m[metaCtime] != "" || m[metaAtime] != "" {
		t.Errorf("times the entry no longer has stayed in its metadata: %v", m)
	}
}

// TestReaddirLegacyFolderMarker: an empty "name_$folder$" object, as older
// tools marked directories, lists as the directory "name", once, with or
// without keys under it.
func TestReaddirLegacyFolderMarker(t *testing.T) {
	fake := s3fake.New()
	fake.SetObject("d/empty_$folder$", nil, nil)
	fake.SetObject("d/full_$folder$", nil, nil)
	fake.SetObject("d/full/f", []byte("f"), nil)
	fake.SetObject("d/notdir_$folder$", []byte("has bytes"), nil)
	b := newTestFS(t, fake, nil)
	h, errno := opendir(t, testDir(b, "d/"))
	if errno != 0 {
		t.Fatal(errno)
	}
	names, dirs, errno := readdir(h)
	if errno != 0 {
		t.Fatal(errno)
	}
	if got := strings.Join(names, ","); got != "empty,full,notdir_$folder$" || !dirs["empty"] || !dirs["full"] || dirs["notdir_$folder$"] {
		t.Fatalf("listed %s (directories %v)", got, dirs)
	}
}
