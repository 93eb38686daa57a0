package e2e

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPOSIXPermissions is the user story of an unprivileged user on an
// --allow-other mount: root's private file stays private and unchanged in
// S3, `test -r` agrees with open, and what the user may do works, with the
// user's uid and gid in stat and in S3's metadata.
func TestPOSIXPermissions(t *testing.T) {
	requireFUSE(t)
	start := time.Now()
	m, c, runner := posixMount(t)
	a := &pxAsserts{t: t, name: "permissions"}
	defer func() { a.report(); t.Logf("run time %s", time.Since(start).Round(time.Millisecond)) }()

	// Root's 0600 file in root's 0755 directory.
	secret := []byte("root's secret\n")
	if err := os.Mkdir(m.Path("private"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(m.Path("private"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.Path("private/secret"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(m.Path("private/secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Wait until S3 holds the file with its mode, and past the attribute
	// delay (2 s) of root's own chmod, so that "unchanged" below compares
	// with what the mount meant to store.
	wantMode := strconv.Itoa(unix.S_IFREG | 0o600)
	before, err := waitMeta(c, "private/secret", 10*time.Second, func(md map[string]string) bool { return md["mode"] == wantMode })
	a.check("S3 metadata of root's file (x-amz-meta-mode)", err == nil, wantMode, fmt.Sprintf("%v (%v)", before["mode"], err))
	time.Sleep(2500 * time.Millisecond)
	headBefore, err := headMeta(c, "private/secret")
	if err != nil {
		t.Fatalf("head private/secret: %v", err)
	}

	p := m.Path("private/secret")
	deny := []struct {
		what string
		call posixCall
		want []syscall.Errno
	}{
		{"read", posixCall{Op: "open", Path: p, Flags: unix.O_RDONLY}, errs(syscall.EACCES)},
		{"access(R_OK)", posixCall{Op: "access", Path: p, Mode: unix.R_OK}, errs(syscall.EACCES)},
		{"access(W_OK)", posixCall{Op: "access", Path: p, Mode: unix.W_OK}, errs(syscall.EACCES)},
		{"overwrite (O_TRUNC)", posixCall{Op: "write", Path: p, Flags: unix.O_TRUNC, Data: []byte("pwned")}, errs(syscall.EACCES)},
		{"append", posixCall{Op: "write", Path: p, Flags: unix.O_APPEND, Data: []byte("pwned")}, errs(syscall.EACCES)},
		{"truncate", posixCall{Op: "truncate", Path: p}, errs(syscall.EACCES)},
		{"chmod 0666", posixCall{Op: "chmod", Path: p, Mode: 0o666}, errs(syscall.EPERM)},
		{"chown to itself", posixCall{Op: "chown", Path: p, UID: int(pxU1.UID), GID: int(pxU1.GID)}, errs(syscall.EPERM)},
		{"chgrp to its group", posixCall{Op: "chown", Path: p, UID: -1, GID: int(pxU1.GID)}, errs(syscall.EPERM)},
		{"utimensat with explicit times", posixCall{Op: "utimensat", Path: p, Times: [2][2]int64{{1, 0}, {1, 0}}}, errs(syscall.EPERM)},
		{"setxattr user.k", posixCall{Op: "setxattr", Path: p, Name: "user.k", Value: []byte("v")}, errs(syscall.EACCES, syscall.EPERM)},
		{"unlink", posixCall{Op: "unlink", Path: p}, errs(syscall.EACCES)},
		{"rename within its dir", posixCall{Op: "rename", Path: p, Path2: m.Path("private/moved")}, errs(syscall.EACCES)},
	}
	for _, d := range deny {
		res, err := runner.call(pxU1, d.call)
		a.errno("u1 "+d.what+" of root's 0600 file", res, err, d.want...)
	}
	for _, flag := range []string{"-r", "-w"} {
		code, out := runner.shell(pxU1, "test "+flag+` "$1"`, p)
		a.check("u1 `test "+flag+"` of root's 0600 file agrees with open", code == 1, "exit 1", fmt.Sprintf("exit %d %s", code, out))
	}

	st, err := lstatT(p)
	a.check("root's file still 0600 root:root", err == nil && st.Mode == unix.S_IFREG|0o600 && st.Uid == 0 && st.Gid == 0,
		"0100600 0:0", statOr(err, func() string { return fmt.Sprintf("%o %d:%d", st.Mode, st.Uid, st.Gid) }))
	got, err := os.ReadFile(p)
	a.check("root reads its file unchanged", err == nil && bytes.Equal(got, secret), string(secret), fmt.Sprintf("%q %v", got, err))
	// Past the attribute delay (2 s), anything a refused call had queued would be in S3.
	time.Sleep(2500 * time.Millisecond)
	after, err := headMeta(c, "private/secret")
	a.check("the object in S3 is the same version", err == nil && after.ETag == headBefore.ETag, headBefore.ETag, statOr(err, func() string { return after.ETag }))
	a.check("the object's metadata in S3 is unchanged", err == nil && maps.Equal(after.Metadata, headBefore.Metadata),
		headBefore.Metadata, statOr(err, func() string { return fmt.Sprint(after.Metadata) }))
	inS3, err := fetchObject(c, "private/secret")
	a.check("the object's bytes in S3 are unchanged", err == nil && bytes.Equal(inS3, secret), string(secret), fmt.Sprintf("%q %v", inS3, err))
	_, err = headMeta(c, "private/moved")
	a.check("no object was made by the refused rename", err != nil, "no private/moved", "private/moved exists")

	// Allowed: u1 in a 1777 directory.
	if err := os.Mkdir(m.Path("shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	// unix.Chmod: os.Chmod would drop 0o1000 (os.ModeSticky is another bit).
	if err := unix.Chmod(m.Path("shared"), 0o1777); err != nil {
		t.Fatal(err)
	}
	mine := m.Path("shared/mine")
	body := []byte("u1's own bytes\n")
	res, err := runner.call(pxU1, posixCall{Op: "open", Path: mine, Flags: unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY, Mode: 0o600, Data: body})
	a.errno("u1 creates shared/mine 0600", res, err)
	res, err = runner.call(pxU1, posixCall{Op: "read", Path: mine})
	a.errno("u1 reads its own file", res, err)
	a.check("u1 reads what it wrote", bytes.Equal(res.Data, body), string(body), fmt.Sprintf("%q", res.Data))
	res, err = runner.call(pxU1, posixCall{Op: "write", Path: mine, Flags: unix.O_APPEND, Data: []byte("more\n")})
	a.errno("u1 appends to its own file", res, err)
	code, out := runner.shell(pxU1, `test -r "$1" && test -w "$1"`, mine)
	a.check("u1 `test -r && test -w` of its own file", code == 0, "exit 0", fmt.Sprintf("exit %d %s", code, out))
	st, err = lstatT(mine)
	a.check("stat of u1's file: owner and mode", err == nil && st.Uid == pxU1.UID && st.Gid == pxU1.GID && st.Mode == unix.S_IFREG|0o600,
		"64001:64001 0100600", statOr(err, func() string { return fmt.Sprintf("%d:%d %o", st.Uid, st.Gid, st.Mode) }))

	res, err = runner.call(pxU1, posixCall{Op: "mkdir", Path: m.Path("shared/dir"), Mode: 0o750})
	a.errno("u1 mkdir shared/dir 0750", res, err)
	res, err = runner.call(pxU1, posixCall{Op: "symlink", Path: m.Path("shared/link"), Path2: "mine"})
	a.errno("u1 symlink shared/link", res, err)
	st, err = lstatT(m.Path("shared/dir"))
	a.check("stat of u1's dir: owner and mode", err == nil && st.Uid == pxU1.UID && st.Gid == pxU1.GID && st.Mode == unix.S_IFDIR|0o750,
		"64001:64001 040750", statOr(err, func() string { return fmt.Sprintf("%d:%d %o", st.Uid, st.Gid, st.Mode) }))

	// S3 holds u1's owners (x-amz-meta-uid/gid) for each entry u1 made.
	for _, o := range []struct{ key, mode string }{
		{"shared/mine", strconv.Itoa(unix.S_IFREG | 0o600)},
		{"shared/dir/", strconv.Itoa(unix.S_IFDIR | 0o750)},
		{"shared/link", ""},
	} {
		md, err := waitMeta(c, o.key, 5*time.Second, func(md map[string]string) bool {
			return md["uid"] == "64001" && md["gid"] == "64001" && (o.mode == "" || md["mode"] == o.mode)
		})
		a.check("S3 metadata of "+o.key+" (uid, gid, mode)", err == nil, "uid 64001 gid 64001 mode "+o.mode,
			fmt.Sprintf("uid %q gid %q mode %q (%v)", md["uid"], md["gid"], md["mode"], err))
	}

	// Another user is kept out of u1's file, and the sticky bit keeps it.
	res, err = runner.call(pxU2, posixCall{Op: "open", Path: mine, Flags: unix.O_RDONLY})
	a.errno("u2 reads u1's 0600 file", res, err, syscall.EACCES)
	code, out = runner.shell(pxU2, `test -r "$1"`, mine)
	a.check("u2 `test -r` of u1's 0600 file agrees with open", code == 1, "exit 1", fmt.Sprintf("exit %d %s", code, out))
	res, err = runner.call(pxU2, posixCall{Op: "unlink", Path: mine})
	a.errno("u2 unlinks u1's file in the sticky dir", res, err, syscall.EPERM)
	_, err = lstatT(mine)
	a.check("u1's file is still there", err == nil, "present", err)

	// Groups: a root:shared 0640 file is readable by a member only; 0660
	// is writable by a member.
	if err := os.Mkdir(m.Path("group"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct {
		name string
		mode os.FileMode
	}{{"group/r", 0o640}, {"group/rw", 0o660}} {
		if err := os.WriteFile(m.Path(g.name), []byte("group data\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(m.Path(g.name), 0, posixShared); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(m.Path(g.name), g.mode); err != nil {
			t.Fatal(err)
		}
	}
	res, err = runner.call(pxU1, posixCall{Op: "read", Path: m.Path("group/r")})
	a.errno("u1 (member) reads a root:shared 0640 file", res, err)
	a.check("u1 reads the group file's bytes", string(res.Data) == "group data\n", "group data", fmt.Sprintf("%q", res.Data))
	code, out = runner.shell(pxU1, `test -r "$1"`, m.Path("group/r"))
	a.check("u1 `test -r` of the 0640 group file", code == 0, "exit 0", fmt.Sprintf("exit %d %s", code, out))
	res, err = runner.call(pxU1, posixCall{Op: "write", Path: m.Path("group/r"), Flags: unix.O_APPEND, Data: []byte("x")})
	a.errno("u1 (member) writes a root:shared 0640 file", res, err, syscall.EACCES)
	res, err = runner.call(pxU3, posixCall{Op: "read", Path: m.Path("group/r")})
	a.errno("u3 (not a member) reads a root:shared 0640 file", res, err, syscall.EACCES)
	code, out = runner.shell(pxU3, `test -r "$1"`, m.Path("group/r"))
	a.check("u3 `test -r` of the 0640 group file agrees with open", code == 1, "exit 1", fmt.Sprintf("exit %d %s", code, out))
	res, err = runner.call(pxU2, posixCall{Op: "write", Path: m.Path("group/rw"), Flags: unix.O_APPEND, Data: []byte("u2 was here\n")})
	a.errno("u2 (member) appends to a root:shared 0660 file", res, err)
	got, err = os.ReadFile(m.Path("group/rw"))
	a.check("the group file holds u2's append", err == nil && string(got) == "group data\nu2 was here\n", "group data + u2's line", fmt.Sprintf("%q %v", got, err))
	st, err = lstatT(m.Path("group/rw"))
	a.check("u2's write kept the group file's owners", err == nil && st.Uid == 0 && st.Gid == posixShared,
		"0:64100", statOr(err, func() string { return fmt.Sprintf("%d:%d", st.Uid, st.Gid) }))
}

func lstatT(path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	return st, err
}
