package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPOSIXConformance is a POSIX conformance table in the spirit of
// pjdfstest, run through one --allow-other mount: each row prepares a
// fresh directory as root, makes one call as root or as another uid (a
// child process), and checks the errno and the attributes that follow
// (owners, modes, the three times, nlink, sticky directories, long names).
// Every check is one assertion; the test logs "call: ok/planned" per call
// and fails listing each assertion that failed.
func TestPOSIXConformance(t *testing.T) {
	requireFUSE(t)
	start := time.Now()
	m, _, runner := posixMount(t)

	tally := &pxTally{byCall: map[string][2]int{}}
	groups := map[string]bool{}
	for i, row := range posixRows() {
		if !groups[row.call] {
			groups[row.call] = true
			if err := os.Mkdir(m.Path(row.call), 0o755); err != nil {
				t.Fatalf("mkdir %s: %v", row.call, err)
			}
		}
		r := &pxRun{row: row, tally: tally, dir: m.Path(fmt.Sprintf("%s/%02d", row.call, i)), mnt: m.Dir}
		r.run(runner)
		if time.Since(start) > 4*time.Minute {
			t.Errorf("conformance: stopped after %d rows, past 4 minutes", i+1)
			break
		}
	}

	calls := make([]string, 0, len(tally.byCall))
	for c := range tally.byCall {
		calls = append(calls, c)
	}
	sort.Strings(calls)
	okAll, all := 0, 0
	for _, c := range calls {
		n := tally.byCall[c]
		t.Logf("%s: %d/%d ok", c, n[0], n[1])
		okAll, all = okAll+n[0], all+n[1]
	}
	t.Logf("conformance: %d/%d ok (%s)", okAll, all, time.Since(start).Round(time.Millisecond))
	for _, n := range tally.notes {
		t.Logf("note: %s", n)
	}
	for _, f := range tally.failed {
		t.Errorf("%s", f)
	}
}

// pxRow is one row of the table.
type pxRow struct {
	call  string         // the call the row counts under ("open", "mkdir", ...)
	what  string         // what the row shows
	as    posixUser      // who makes the call
	setup func(r *pxRun) // as root, in the row's directory (mode 0777, root's)
	do    func(r *pxRun) posixCall
	want  []syscall.Errno // any of these; none: success
	check func(r *pxRun, res posixResult)
}

type pxTally struct {
	byCall map[string][2]int // ok, planned
	failed []string
	notes  []string // which of several allowed answers a call gave
}

// pxRun is one row being run.
type pxRun struct {
	row      pxRow
	tally    *pxTally
	dir      string // the row's directory
	mnt      string
	names    []string // what setup made, relative to dir ("." included)
	before   map[string]unix.Stat_t
	t0       time.Time // just before the call
	setupErr error
}

func (r *pxRun) label() string {
	return fmt.Sprintf("%s [%s] as %s", r.row.call, r.row.what, r.row.as.Name)
}

// expect records one assertion.
func (r *pxRun) expect(what string, ok bool, want, got any) {
	n := r.tally.byCall[r.row.call]
	n[1]++
	if ok {
		n[0]++
	} else {
		r.tally.failed = append(r.tally.failed, fmt.Sprintf("%s: %s: want %v, got %v", r.label(), what, want, got))
	}
	r.tally.byCall[r.row.call] = n
}

func (r *pxRun) p(name string) string { return filepath.Join(r.dir, name) }

func (r *pxRun) run(runner *posixRunner) {
	r.names = []string{"."}
	if err := os.Mkdir(r.dir, 0o777); err == nil {
		r.setupErr = os.Chmod(r.dir, 0o777)
	} else {
		r.setupErr = err
	}
	if r.row.setup != nil && r.setupErr == nil {
		r.row.setup(r)
	}
	r.before = map[string]unix.Stat_t{}
	for _, n := range r.names {
		var st unix.Stat_t
		if err := unix.Lstat(r.p(n), &st); err == nil {
			r.before[n] = st
		}
	}
	var res posixResult
	var callErr error
	if r.setupErr == nil {
		r.t0 = time.Now()
		res, callErr = runner.call(r.row.as, r.row.do(r))
	}
	want := r.row.want
	if len(want) == 0 {
		want = []syscall.Errno{0}
	}
	switch {
	case r.setupErr != nil:
		r.expect("errno", false, errnoNames(want), fmt.Sprintf("no call: setup failed: %v", r.setupErr))
	case callErr != nil:
		r.expect("errno", false, errnoNames(want), callErr)
	default:
		ok := false
		for _, w := range want {
			ok = ok || res.Errno == w
		}
		r.expect("errno", ok, errnoNames(want), errnoName(res.Errno))
		if len(want) > 1 {
			r.tally.notes = append(r.tally.notes, fmt.Sprintf("%s answered %s (allowed: %s)", r.label(), errnoName(res.Errno), errnoNames(want)))
		}
	}
	if r.row.check != nil {
		r.row.check(r, res)
	}
}

func errnoName(e syscall.Errno) string {
	if e == 0 {
		return "success"
	}
	name := unix.ErrnoName(e)
	if name == "" {
		return fmt.Sprintf("errno %d", int(e))
	}
	return name
}

func errnoNames(es []syscall.Errno) string {
	var s []string
	for _, e := range es {
		s = append(s, errnoName(e))
	}
	return strings.Join(s, " or ")
}

// Setup helpers: each makes one entry as root and remembers it for the
// snapshot taken before the call. The first failure stops the setup.

func (r *pxRun) note(name string, err error) {
	if err != nil && r.setupErr == nil {
		r.setupErr = fmt.Errorf("%s: %w", name, err)
	}
	if err == nil {
		r.names = append(r.names, name)
	}
}

// own sets owners then mode (in that order: chown clears set-id bits).
func (r *pxRun) own(name string, mode uint32, u posixUser) {
	if r.setupErr != nil {
		return
	}
	if err := os.Lchown(r.p(name), int(u.UID), int(u.GID)); err != nil {
		r.setupErr = fmt.Errorf("chown %s: %w", name, err)
		return
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, r.p(name), mode, 0); err != nil {
		r.setupErr = fmt.Errorf("chmod %s: %w", name, err)
	}
}

// ownGroup is own with another group than u's.
func (r *pxRun) ownGroup(name string, mode uint32, u posixUser, gid uint32) {
	u.GID = gid
	r.own(name, mode, u)
}

func (r *pxRun) file(name string, mode uint32, u posixUser) {
	if r.setupErr != nil {
		return
	}
	r.note(name, os.WriteFile(r.p(name), []byte("bucketfs"), 0o600))
	r.own(name, mode, u)
}

func (r *pxRun) subdir(name string, mode uint32, u posixUser) {
	if r.setupErr != nil {
		return
	}
	r.note(name, os.Mkdir(r.p(name), 0o700))
	r.own(name, mode, u)
}

func (r *pxRun) symlink(target, name string) {
	if r.setupErr != nil {
		return
	}
	r.note(name, os.Symlink(target, r.p(name)))
}

func (r *pxRun) node(name string, mode uint32, dev int) {
	if r.setupErr != nil {
		return
	}
	r.note(name, unix.Mknod(r.p(name), mode, dev))
}

func (r *pxRun) setx(name, attr, value string) {
	if r.setupErr != nil {
		return
	}
	if err := unix.Lsetxattr(r.p(name), attr, []byte(value), 0); err != nil {
		r.setupErr = fmt.Errorf("setxattr %s %s: %w", name, attr, err)
	}
}

func (r *pxRun) times(name string, atime, mtime unix.Timespec) {
	if r.setupErr != nil {
		return
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, r.p(name), []unix.Timespec{atime, mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		r.setupErr = fmt.Errorf("utimensat %s: %w", name, err)
	}
}

// Checks: each records exactly one assertion, whatever happens.

func (r *pxRun) stat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Lstat(r.p(name), &st)
	return st, err
}

func (r *pxRun) exists(name string) {
	_, err := r.stat(name)
	r.expect(name+" exists", err == nil, "present", err)
}

func (r *pxRun) absent(name string) {
	_, err := r.stat(name)
	r.expect(name+" is gone", errnoOf(err) == syscall.ENOENT, "ENOENT", errOrSuccess(err))
}

func errOrSuccess(err error) string {
	if err == nil {
		return "present"
	}
	return err.Error()
}

func (r *pxRun) owner(name string, uid, gid uint32) {
	st, err := r.stat(name)
	r.expect(name+" owner", err == nil && st.Uid == uid && st.Gid == gid, fmt.Sprintf("%d:%d", uid, gid), statOr(err, func() string { return fmt.Sprintf("%d:%d", st.Uid, st.Gid) }))
}

func (r *pxRun) perm(name string, perm uint32) {
	st, err := r.stat(name)
	r.expect(name+" mode", err == nil && st.Mode&07777 == perm, fmt.Sprintf("%04o", perm), statOr(err, func() string { return fmt.Sprintf("%04o", st.Mode&07777) }))
}

func (r *pxRun) ftype(name string, typ uint32) {
	st, err := r.stat(name)
	r.expect(name+" type", err == nil && st.Mode&unix.S_IFMT == typ, fileType(typ), statOr(err, func() string { return fileType(st.Mode) }))
}

func (r *pxRun) rdev(name string, dev uint64) {
	st, err := r.stat(name)
	r.expect(name+" rdev", err == nil && st.Rdev == dev, fmt.Sprintf("%d,%d", unix.Major(dev), unix.Minor(dev)), statOr(err, func() string { return fmt.Sprintf("%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)) }))
}

func (r *pxRun) size(name string, n int64) {
	st, err := r.stat(name)
	r.expect(name+" size", err == nil && st.Size == n, n, statOr(err, func() string { return fmt.Sprint(st.Size) }))
}

// nlink: files 1, directories at least 2.
func (r *pxRun) nlink(name string) {
	st, err := r.stat(name)
	ok := err == nil && (st.Nlink == 1 || (st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Nlink >= 2))
	r.expect(name+" nlink", ok, "1 (a directory: at least 2)", statOr(err, func() string { return fmt.Sprint(st.Nlink) }))
}

func statOr(err error, f func() string) string {
	if err != nil {
		return err.Error()
	}
	return f()
}

func pick(st unix.Stat_t, which byte) unix.Timespec {
	switch which {
	case 'a':
		return st.Atim
	case 'm':
		return st.Mtim
	}
	return st.Ctim
}

func tsTime(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }

// fresh: the times named (of "amc") are the call's time (between just
// before it, less 100 ms, and now).
func (r *pxRun) fresh(name, which string) {
	st, err := r.stat(name)
	for _, w := range []byte(which) {
		ok, got := false, ""
		if err == nil {
			ts := tsTime(pick(st, w))
			ok = !ts.Before(r.t0.Add(-100*time.Millisecond)) && !ts.After(time.Now().Add(100*time.Millisecond))
			got = ts.UTC().Format(time.RFC3339Nano)
		} else {
			got = err.Error()
		}
		r.expect(fmt.Sprintf("%s %ctime is the call's", name, w), ok, "≈ "+r.t0.UTC().Format(time.RFC3339Nano), got)
	}
}

// changed: the times named are later than before the call (of the entry
// that had name before, or of from when given).
func (r *pxRun) changed(name, which string, from ...string) {
	r.compareTimes(name, which, from, "changed", func(now, was unix.Timespec) (bool, string, string) {
		return tsTime(now).After(tsTime(was)), "later than before the call", fmt.Sprintf("%s (before: %s)", tsString(now), tsString(was))
	})
}

// same: the times named are what they were before the call.
func (r *pxRun) same(name, which string, from ...string) {
	r.compareTimes(name, which, from, "unchanged", func(now, was unix.Timespec) (bool, string, string) {
		return now == was, tsString(was), tsString(now)
	})
}

// compareTimes checks each time named in which (a, m, c) of name against
// the one before the call (of from[0] when given) with cmp, which says
// whether it holds and what was wanted and found.
func (r *pxRun) compareTimes(name, which string, from []string, verb string, cmp func(now, was unix.Timespec) (ok bool, want, got string)) {
	was := name
	if len(from) > 0 {
		was = from[0]
	}
	b, known := r.before[was]
	st, err := r.stat(name)
	for _, w := range []byte(which) {
		ok, want, got := false, "", fmt.Sprintf("stat: %v, known before: %v", err, known)
		if err == nil && known {
			ok, want, got = cmp(pick(st, w), pick(b, w))
		}
		r.expect(fmt.Sprintf("%s %ctime %s", name, w, verb), ok, want, got)
	}
}

// timeIs: the time named is exactly ts.
func (r *pxRun) timeIs(name string, which byte, ts unix.Timespec) {
	st, err := r.stat(name)
	r.expect(fmt.Sprintf("%s %ctime", name, which), err == nil && pick(st, which) == ts, tsString(ts), statOr(err, func() string { return tsString(pick(st, which)) }))
}

func (r *pxRun) xattrIs(name, attr string, want []byte) {
	got, err := getXattr(r.p(name), attr)
	r.expect(fmt.Sprintf("%s %s", name, attr), err == nil && bytes.Equal(got, want), fmt.Sprintf("%q", want), statOr(err, func() string { return fmt.Sprintf("%q", got) }))
}

func (r *pxRun) xattrAbsent(name, attr string) {
	_, err := getXattr(r.p(name), attr)
	r.expect(fmt.Sprintf("%s %s absent", name, attr), errnoOf(err) == syscall.ENODATA, "ENODATA", errOrSuccess(err))
}

// Row builders.

var (
	n255 = strings.Repeat("n", 255)
	n256 = strings.Repeat("n", 256)
	// n246 is the longest directory name MinIO stores a marker of: it
	// keeps "name/" as "name__XLDIR__" on disk, under the 255-byte limit.
	n246 = strings.Repeat("n", 246)
	// seg240 is a 240-byte directory name: four nested fit in a key of
	// 1,024 bytes, a fifth (or a long file name in the fourth) does not.
	seg240 = strings.Repeat("k", 240)
)

func ts(sec, nsec int64) unix.Timespec { return unix.Timespec{Sec: sec, Nsec: nsec} }

// old times a setup gives entries, so that a change is plain.
var (
	oldA = ts(1000000000, 111111111)
	oldM = ts(1000000001, 222222222)
)

func pathCall(op string, name string) func(r *pxRun) posixCall {
	return func(r *pxRun) posixCall { return posixCall{Op: op, Path: r.p(name)} }
}

func errs(e ...syscall.Errno) []syscall.Errno { return e }

func posixRows() []pxRow {
	var rows []pxRow
	rows = append(rows, openRows()...)
	rows = append(rows, mkdirRows()...)
	rows = append(rows, rmdirRows()...)
	rows = append(rows, unlinkRows()...)
	rows = append(rows, renameRows()...)
	rows = append(rows, truncateRows()...)
	rows = append(rows, chmodRows()...)
	rows = append(rows, chownRows()...)
	rows = append(rows, utimensatRows()...)
	rows = append(rows, symlinkRows()...)
	rows = append(rows, mknodRows()...)
	rows = append(rows, linkRows()...)
	rows = append(rows, xattrRows()...)
	rows = append(rows, nameRows()...)
	return rows
}

func openCall(name string, flags int, mode uint32, umask int) func(r *pxRun) posixCall {
	return func(r *pxRun) posixCall {
		return posixCall{Op: "open", Path: r.p(name), Flags: flags, Mode: mode, Umask: umask}
	}
}

const creat = unix.O_CREAT | unix.O_WRONLY

func openRows() []pxRow {
	newFile := func(u posixUser, perm uint32) func(r *pxRun, _ posixResult) {
		return func(r *pxRun, _ posixResult) {
			r.ftype("f", unix.S_IFREG)
			r.owner("f", u.UID, u.GID)
			r.perm("f", perm)
			r.nlink("f")
			r.size("f", 0)
			r.fresh("f", "amc")
			r.changed(".", "mc")
		}
	}
	return []pxRow{
		{call: "open", what: "O_CREAT 0644 in a 0777 dir", as: pxU1, do: openCall("f", creat, 0o644, 0), check: newFile(pxU1, 0o644)},
		{call: "open", what: "O_CREAT mode 0", as: pxU1, do: openCall("f", creat, 0, 0), check: newFile(pxU1, 0)},
		{call: "open", what: "O_CREAT 0666 with umask 022", as: pxU1, do: openCall("f", creat, 0o666, 0o022), check: newFile(pxU1, 0o644)},
		{call: "open", what: "O_CREAT 07777 as root", as: pxRoot, do: openCall("f", creat, 0o7777, 0), check: newFile(pxRoot, 0o7777)},
		{call: "open", what: "O_CREAT in a root 0755 dir", as: pxU1,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot) }, do: openCall("d/f", creat, 0o644, 0), want: errs(syscall.EACCES),
			check: func(r *pxRun, _ posixResult) { r.absent("d/f"); r.same("d", "mc") }},
		{call: "open", what: "O_RDONLY of a root 0600 file", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o600, pxRoot) }, do: openCall("f", unix.O_RDONLY, 0, 0), want: errs(syscall.EACCES)},
		{call: "open", what: "O_WRONLY of a root 0644 file", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: openCall("f", unix.O_WRONLY, 0, 0), want: errs(syscall.EACCES),
			check: func(r *pxRun, _ posixResult) { r.same("f", "mc"); r.size("f", 8) }},
		{call: "open", what: "O_RDONLY of a root:shared 0640 file by a group member", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o640, posixUser{GID: posixShared}) }, do: openCall("f", unix.O_RDONLY, 0, 0)},
		{call: "open", what: "O_RDONLY of a root:shared 0640 file by a non-member", as: pxU3,
			setup: func(r *pxRun) { r.file("f", 0o640, posixUser{GID: posixShared}) }, do: openCall("f", unix.O_RDONLY, 0, 0), want: errs(syscall.EACCES)},
		{call: "open", what: "O_RDONLY of an own 0066 file (owner bits rule)", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o066, pxU1) }, do: openCall("f", unix.O_RDONLY, 0, 0), want: errs(syscall.EACCES)},
		{call: "open", what: "O_RDONLY through a 0666 dir (no search)", as: pxU1,
			setup: func(r *pxRun) { r.subdir("d", 0o777, pxRoot); r.file("d/f", 0o644, pxRoot); r.own("d", 0o666, pxRoot) },
			do:    openCall("d/f", unix.O_RDONLY, 0, 0), want: errs(syscall.EACCES)},
		{call: "open", what: "O_CREAT|O_EXCL of an existing file", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o666, pxRoot) }, do: openCall("f", creat|unix.O_EXCL, 0o644, 0), want: errs(syscall.EEXIST),
			check: func(r *pxRun, _ posixResult) { r.owner("f", 0, 0); r.perm("f", 0o666) }},
		{call: "open", what: "O_CREAT of an existing root 0666 file keeps its owner and mode", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o666, pxRoot) }, do: openCall("f", creat, 0o600, 0),
			check: func(r *pxRun, _ posixResult) { r.owner("f", 0, 0); r.perm("f", 0o666); r.size("f", 8) }},
		{call: "open", what: "O_CREAT in a missing dir", as: pxRoot, do: openCall("missing/f", creat, 0o644, 0), want: errs(syscall.ENOENT)},
		{call: "open", what: "a component is a file", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: openCall("f/g", creat, 0o644, 0), want: errs(syscall.ENOTDIR)},
		{call: "open", what: "O_RDWR of a directory", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot) }, do: openCall("d", unix.O_RDWR, 0, 0), want: errs(syscall.EISDIR)},
		{call: "open", what: "O_CREAT of a 256-byte name", as: pxRoot, do: openCall(n256, creat, 0o644, 0), want: errs(syscall.ENAMETOOLONG)},
		{call: "open", what: "O_RDONLY of a 256-byte name", as: pxRoot, do: openCall(n256, unix.O_RDONLY, 0, 0), want: errs(syscall.ENAMETOOLONG)},
		{call: "open", what: "O_CREAT of a 255-byte name", as: pxRoot, do: openCall(n255, creat, 0o644, 0),
			check: func(r *pxRun, _ posixResult) { r.exists(n255) }},
		{call: "open", what: "O_CREAT of a key over 1,024 bytes", as: pxRoot,
			setup: func(r *pxRun) {
				p := ""
				for i := 0; i < 4; i++ {
					p = filepath.Join(p, seg240)
					r.subdir(p, 0o777, pxRoot)
				}
			},
			do: openCall(strings.Repeat(seg240+"/", 4)+strings.Repeat("f", 60), creat, 0o644, 0), want: errs(syscall.ENAMETOOLONG)},
		{call: "open", what: "O_CREAT in four nested 240-byte dirs, key under 1,024 bytes", as: pxRoot,
			setup: func(r *pxRun) {
				p := ""
				for i := 0; i < 4; i++ {
					p = filepath.Join(p, seg240)
					r.subdir(p, 0o777, pxRoot)
				}
			},
			do:    openCall(strings.Repeat(seg240+"/", 4)+"short", creat, 0o644, 0),
			check: func(r *pxRun, _ posixResult) { r.exists(strings.Repeat(seg240+"/", 4) + "short") }},
		{call: "open", what: "O_CREAT in a setgid root:shared dir takes its group", as: pxU1,
			setup: func(r *pxRun) { r.subdir("d", 0o2777, posixUser{GID: posixShared}) }, do: openCall("d/f", creat, 0o644, 0),
			check: func(r *pxRun, _ posixResult) { r.owner("d/f", pxU1.UID, posixShared); r.perm("d/f", 0o644) }},
		{call: "open", what: "O_CREAT in a setgid dir by a non-member takes its group", as: pxU3,
			setup: func(r *pxRun) { r.subdir("d", 0o2777, posixUser{GID: posixShared}) }, do: openCall("d/f", creat, 0o644, 0),
			check: func(r *pxRun, _ posixResult) { r.owner("d/f", pxU3.UID, posixShared) }},
		{call: "open", what: "O_TRUNC of a root 0666 file", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o666, pxRoot); r.times("f", oldA, oldM) },
			do:    openCall("f", unix.O_WRONLY|unix.O_TRUNC, 0, 0),
			check: func(r *pxRun, _ posixResult) {
				r.size("f", 0)
				r.changed("f", "mc")
				r.same("f", "a")
				r.owner("f", 0, 0)
			}},
		{call: "open", what: "a write-only write by a non-owner clears set-id bits of a root 06777 file", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o6777, pxRoot) },
			do: func(r *pxRun) posixCall {
				return posixCall{Op: "write", Path: r.p("f"), Flags: unix.O_APPEND, Data: []byte("more")}
			},
			check: func(r *pxRun, _ posixResult) { r.perm("f", 0o777); r.size("f", 12); r.changed("f", "mc") }},
		// An O_RDWR descriptor writes through the page cache, where the
		// kernel strips the bits itself (a SETATTR); a write-only one
		// writes direct, and the kernel only asks the daemon to
		// (FUSE_WRITE_KILL_SUIDGID).
		{call: "open", what: "an O_RDWR write by a non-owner clears set-id bits of a root 06777 file", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o6777, pxRoot) },
			do: func(r *pxRun) posixCall {
				return posixCall{Op: "open", Path: r.p("f"), Flags: unix.O_RDWR | unix.O_APPEND, Data: []byte("more")}
			},
			check: func(r *pxRun, _ posixResult) { r.perm("f", 0o777); r.size("f", 12) }},
		{call: "open", what: "a read leaves atime (noatime)", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot); r.times("f", oldA, oldM) },
			do:    func(r *pxRun) posixCall { return posixCall{Op: "read", Path: r.p("f")} },
			check: func(r *pxRun, res posixResult) {
				r.expect("bytes read", string(res.Data) == "bucketfs", "bucketfs", string(res.Data))
				r.timeIs("f", 'a', oldA)
				r.timeIs("f", 'm', oldM)
				r.same("f", "c")
			}},
	}
}

func mkdirCall(name string, mode uint32, umask int) func(r *pxRun) posixCall {
	return func(r *pxRun) posixCall { return posixCall{Op: "mkdir", Path: r.p(name), Mode: mode, Umask: umask} }
}

func mkdirRows() []pxRow {
	newDir := func(u posixUser, gid, perm uint32) func(r *pxRun, _ posixResult) {
		return func(r *pxRun, _ posixResult) {
			r.ftype("d", unix.S_IFDIR)
			r.owner("d", u.UID, gid)
			r.perm("d", perm)
			r.nlink("d")
			r.fresh("d", "amc")
			r.changed(".", "mc")
		}
	}
	return []pxRow{
		{call: "mkdir", what: "0755 in a 0777 dir", as: pxU1, do: mkdirCall("d", 0o755, 0), check: newDir(pxU1, pxU1.GID, 0o755)},
		{call: "mkdir", what: "01777 keeps the sticky bit", as: pxU1, do: mkdirCall("d", 0o1777, 0), check: newDir(pxU1, pxU1.GID, 0o1777)},
		{call: "mkdir", what: "mode 0", as: pxU1, do: mkdirCall("d", 0, 0), check: newDir(pxU1, pxU1.GID, 0)},
		{call: "mkdir", what: "0777 with umask 022", as: pxU1, do: mkdirCall("d", 0o777, 0o022), check: newDir(pxU1, pxU1.GID, 0o755)},
		{call: "mkdir", what: "in a setgid root:shared dir takes its group and setgid", as: pxU1,
			setup: func(r *pxRun) { r.ownGroup(".", 0o2777, pxRoot, posixShared) }, do: mkdirCall("d", 0o755, 0), check: newDir(pxU1, posixShared, 0o2755)},
		{call: "mkdir", what: "in a root 0755 dir", as: pxU1,
			setup: func(r *pxRun) { r.own(".", 0o755, pxRoot) }, do: mkdirCall("d", 0o755, 0), want: errs(syscall.EACCES),
			check: func(r *pxRun, _ posixResult) { r.absent("d"); r.same(".", "mc") }},
		{call: "mkdir", what: "over an existing file", as: pxRoot,
			setup: func(r *pxRun) { r.file("d", 0o644, pxRoot) }, do: mkdirCall("d", 0o755, 0), want: errs(syscall.EEXIST),
			check: func(r *pxRun, _ posixResult) { r.ftype("d", unix.S_IFREG) }},
		{call: "mkdir", what: "over an existing dir", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o700, pxRoot) }, do: mkdirCall("d", 0o755, 0), want: errs(syscall.EEXIST),
			check: func(r *pxRun, _ posixResult) { r.perm("d", 0o700) }},
		{call: "mkdir", what: "in a missing dir", as: pxRoot, do: mkdirCall("missing/d", 0o755, 0), want: errs(syscall.ENOENT)},
		{call: "mkdir", what: "a component is a file", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: mkdirCall("f/d", 0o755, 0), want: errs(syscall.ENOTDIR)},
		{call: "mkdir", what: "a 256-byte name", as: pxRoot, do: mkdirCall(n256, 0o755, 0), want: errs(syscall.ENAMETOOLONG)},
		{call: "mkdir", what: "a 246-byte name (MinIO's longest marker)", as: pxRoot, do: mkdirCall(n246, 0o755, 0),
			check: func(r *pxRun, _ posixResult) { r.ftype(n246, unix.S_IFDIR) }},
		{call: "mkdir", what: "four nested 240-byte dirs then a fifth (key over 1,024 bytes)", as: pxRoot,
			setup: func(r *pxRun) {
				p := ""
				for i := 0; i < 4; i++ {
					p = filepath.Join(p, seg240)
					r.subdir(p, 0o777, pxRoot)
				}
			},
			do: mkdirCall(strings.Repeat(seg240+"/", 4)+seg240, 0o755, 0), want: errs(syscall.ENAMETOOLONG),
			check: func(r *pxRun, _ posixResult) { r.ftype(strings.Repeat(seg240+"/", 3)+seg240, unix.S_IFDIR) }},
	}
}

func rmdirRows() []pxRow {
	return []pxRow{
		{call: "rmdir", what: "an empty dir", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot) }, do: pathCall("rmdir", "d"),
			check: func(r *pxRun, _ posixResult) { r.absent("d"); r.changed(".", "mc") }},
		{call: "rmdir", what: "a dir holding a file", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot); r.file("d/f", 0o644, pxRoot) }, do: pathCall("rmdir", "d"),
			want: errs(syscall.ENOTEMPTY, syscall.EEXIST), check: func(r *pxRun, _ posixResult) { r.exists("d/f") }},
		{call: "rmdir", what: "a file", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: pathCall("rmdir", "f"), want: errs(syscall.ENOTDIR)},
		{call: "rmdir", what: "a missing name", as: pxRoot, do: pathCall("rmdir", "d"), want: errs(syscall.ENOENT)},
		{call: "rmdir", what: "an own dir in a root 0755 dir", as: pxU1,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxU1); r.own(".", 0o755, pxRoot) }, do: pathCall("rmdir", "d"),
			want: errs(syscall.EACCES), check: func(r *pxRun, _ posixResult) { r.exists("d") }},
		{call: "rmdir", what: "another's dir in a sticky 01777 dir", as: pxU2,
			setup: func(r *pxRun) { r.own(".", 0o1777, pxRoot); r.subdir("d", 0o777, pxU1) }, do: pathCall("rmdir", "d"),
			want: errs(syscall.EPERM), check: func(r *pxRun, _ posixResult) { r.exists("d"); r.same(".", "mc") }},
		{call: "rmdir", what: "an own dir in a sticky 01777 dir", as: pxU1,
			setup: func(r *pxRun) { r.own(".", 0o1777, pxRoot); r.subdir("d", 0o755, pxU1) }, do: pathCall("rmdir", "d"),
			check: func(r *pxRun, _ posixResult) { r.absent("d") }},
		{call: "rmdir", what: "a 256-byte name", as: pxRoot, do: pathCall("rmdir", n256), want: errs(syscall.ENAMETOOLONG)},
	}
}

func unlinkRows() []pxRow {
	return []pxRow{
		{call: "unlink", what: "a root file in a 0777 dir", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o600, pxRoot) }, do: pathCall("unlink", "f"),
			check: func(r *pxRun, _ posixResult) { r.absent("f"); r.changed(".", "mc") }},
		{call: "unlink", what: "a directory", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot) }, do: pathCall("unlink", "d"),
			want: errs(syscall.EISDIR), check: func(r *pxRun, _ posixResult) { r.exists("d") }},
		{call: "unlink", what: "a missing name", as: pxRoot, do: pathCall("unlink", "f"), want: errs(syscall.ENOENT)},
		{call: "unlink", what: "a component is a file", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: pathCall("unlink", "f/g"), want: errs(syscall.ENOTDIR)},
		{call: "unlink", what: "an own file in a root 0755 dir", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1); r.own(".", 0o755, pxRoot) }, do: pathCall("unlink", "f"),
			want: errs(syscall.EACCES), check: func(r *pxRun, _ posixResult) { r.exists("f"); r.same("f", "c"); r.same(".", "mc") }},
		{call: "unlink", what: "another's file in a sticky 01777 dir", as: pxU2,
			setup: func(r *pxRun) { r.own(".", 0o1777, pxRoot); r.file("f", 0o666, pxU1) }, do: pathCall("unlink", "f"),
			want: errs(syscall.EPERM), check: func(r *pxRun, _ posixResult) { r.exists("f") }},
		{call: "unlink", what: "an own file in a sticky 01777 dir", as: pxU1,
			setup: func(r *pxRun) { r.own(".", 0o1777, pxRoot); r.file("f", 0o644, pxU1) }, do: pathCall("unlink", "f"),
			check: func(r *pxRun, _ posixResult) { r.absent("f") }},
		{call: "unlink", what: "another's file in a sticky dir the caller owns", as: pxU2,
			setup: func(r *pxRun) { r.own(".", 0o1777, pxU2); r.file("f", 0o644, pxU1) }, do: pathCall("unlink", "f"),
			check: func(r *pxRun, _ posixResult) { r.absent("f") }},
		{call: "unlink", what: "u1's file in a sticky dir, by root", as: pxRoot,
			setup: func(r *pxRun) { r.own(".", 0o1777, pxRoot); r.file("f", 0o644, pxU1) }, do: pathCall("unlink", "f"),
			check: func(r *pxRun, _ posixResult) { r.absent("f") }},
		{call: "unlink", what: "a FIFO", as: pxU1,
			setup: func(r *pxRun) { r.node("p", unix.S_IFIFO|0o644, 0) }, do: pathCall("unlink", "p"),
			check: func(r *pxRun, _ posixResult) { r.absent("p") }},
		{call: "unlink", what: "a character device", as: pxRoot,
			setup: func(r *pxRun) { r.node("c", unix.S_IFCHR|0o644, int(unix.Mkdev(4, 64))) }, do: pathCall("unlink", "c"),
			check: func(r *pxRun, _ posixResult) { r.absent("c") }},
		{call: "unlink", what: "a socket", as: pxRoot,
			setup: func(r *pxRun) { r.node("s", unix.S_IFSOCK|0o644, 0) }, do: pathCall("unlink", "s"),
			check: func(r *pxRun, _ posixResult) { r.absent("s") }},
		{call: "unlink", what: "a symlink (its target stays)", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot); r.symlink("f", "l") }, do: pathCall("unlink", "l"),
			check: func(r *pxRun, _ posixResult) { r.absent("l"); r.exists("f") }},
		{call: "unlink", what: "a 256-byte name", as: pxRoot, do: pathCall("unlink", n256), want: errs(syscall.ENAMETOOLONG)},
	}
}

func renameCall(from, to string) func(r *pxRun) posixCall {
	return func(r *pxRun) posixCall { return posixCall{Op: "rename", Path: r.p(from), Path2: r.p(to)} }
}

func renameRows() []pxRow {
	return []pxRow{
		{call: "rename", what: "an own file in a 0777 dir", as: pxU1,
			setup: func(r *pxRun) { r.file("a", 0o640, pxU1); r.times("a", oldA, oldM); r.setx("a", "user.k", "kept") }, do: renameCall("a", "b"),
			check: func(r *pxRun, _ posixResult) {
				r.absent("a")
				r.xattrIs("b", "user.k", []byte("kept"))
				r.owner("b", pxU1.UID, pxU1.GID)
				r.perm("b", 0o640)
				r.timeIs("b", 'm', oldM)
				r.timeIs("b", 'a', oldA)
				r.changed("b", "c", "a")
				r.changed(".", "mc")
			}},
		{call: "rename", what: "a file to another dir", as: pxRoot,
			setup: func(r *pxRun) {
				r.subdir("s", 0o755, pxRoot)
				r.subdir("t", 0o755, pxRoot)
				r.file("s/f", 0o644, pxRoot)
			},
			do: renameCall("s/f", "t/f"),
			check: func(r *pxRun, _ posixResult) {
				r.absent("s/f")
				r.exists("t/f")
				r.changed("s", "mc")
				r.changed("t", "mc")
			}},
		{call: "rename", what: "a file over a file", as: pxRoot,
			setup: func(r *pxRun) {
				r.file("a", 0o644, pxRoot)
				r.note("b", os.WriteFile(r.p("b"), []byte("longer old target"), 0o644))
			},
			do: renameCall("a", "b"), check: func(r *pxRun, _ posixResult) { r.absent("a"); r.size("b", 8) }},
		{call: "rename", what: "a file over a dir", as: pxRoot,
			setup: func(r *pxRun) { r.file("a", 0o644, pxRoot); r.subdir("d", 0o755, pxRoot) }, do: renameCall("a", "d"),
			want: errs(syscall.EISDIR), check: func(r *pxRun, _ posixResult) { r.exists("a"); r.ftype("d", unix.S_IFDIR) }},
		{call: "rename", what: "a dir over a file", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot); r.file("f", 0o644, pxRoot) }, do: renameCall("d", "f"),
			want: errs(syscall.ENOTDIR), check: func(r *pxRun, _ posixResult) { r.ftype("f", unix.S_IFREG) }},
		{call: "rename", what: "a dir over a non-empty dir", as: pxRoot,
			setup: func(r *pxRun) {
				r.subdir("d", 0o755, pxRoot)
				r.subdir("e", 0o755, pxRoot)
				r.file("e/f", 0o644, pxRoot)
			},
			do: renameCall("d", "e"), want: errs(syscall.ENOTEMPTY, syscall.EEXIST), check: func(r *pxRun, _ posixResult) { r.exists("e/f") }},
		{call: "rename", what: "a dir into itself", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot) }, do: renameCall("d", "d/e"), want: errs(syscall.EINVAL)},
		{call: "rename", what: "a dir with a file", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o750, pxU1); r.file("d/f", 0o600, pxU2) }, do: renameCall("d", "e"),
			check: func(r *pxRun, _ posixResult) {
				r.absent("d")
				r.changed("e", "c", "d")
				r.perm("e", 0o750)
				r.owner("e", pxU1.UID, pxU1.GID)
				r.owner("e/f", pxU2.UID, pxU2.GID)
				r.perm("e/f", 0o600)
			}},
		{call: "rename", what: "in a root 0755 dir", as: pxU1,
			setup: func(r *pxRun) { r.file("a", 0o644, pxU1); r.own(".", 0o755, pxRoot) }, do: renameCall("a", "b"),
			want: errs(syscall.EACCES), check: func(r *pxRun, _ posixResult) { r.exists("a"); r.same("a", "c") }},
		{call: "rename", what: "into a root 0755 dir", as: pxU1,
			setup: func(r *pxRun) { r.file("a", 0o644, pxU1); r.subdir("t", 0o755, pxRoot) }, do: renameCall("a", "t/a"),
			want: errs(syscall.EACCES), check: func(r *pxRun, _ posixResult) { r.exists("a") }},
		{call: "rename", what: "another's file out of a sticky dir", as: pxU2,
			setup: func(r *pxRun) { r.own(".", 0o1777, pxRoot); r.file("a", 0o666, pxU1) }, do: renameCall("a", "b"),
			want: errs(syscall.EPERM), check: func(r *pxRun, _ posixResult) { r.exists("a"); r.absent("b") }},
		{call: "rename", what: "an own file over another's in a sticky dir", as: pxU2,
			setup: func(r *pxRun) { r.own(".", 0o1777, pxRoot); r.file("a", 0o666, pxU2); r.file("b", 0o666, pxU1) },
			do:    renameCall("a", "b"), want: errs(syscall.EPERM),
			check: func(r *pxRun, _ posixResult) { r.exists("a"); r.owner("b", pxU1.UID, pxU1.GID) }},
		{call: "rename", what: "an own file in a sticky dir", as: pxU1,
			setup: func(r *pxRun) { r.own(".", 0o1777, pxRoot); r.file("a", 0o644, pxU1) }, do: renameCall("a", "b"),
			check: func(r *pxRun, _ posixResult) { r.absent("a"); r.owner("b", pxU1.UID, pxU1.GID) }},
		{call: "rename", what: "a root 0755 dir between 0777 dirs (needs write on it for ..)", as: pxU1,
			setup: func(r *pxRun) {
				r.subdir("s", 0o777, pxRoot)
				r.subdir("t", 0o777, pxRoot)
				r.subdir("s/d", 0o755, pxRoot)
			},
			do: renameCall("s/d", "t/d"), want: errs(syscall.EACCES), check: func(r *pxRun, _ posixResult) { r.exists("s/d") }},
		{call: "rename", what: "from a 256-byte name", as: pxRoot, do: renameCall(n256, "b"), want: errs(syscall.ENAMETOOLONG)},
		{call: "rename", what: "to a 256-byte name", as: pxRoot,
			setup: func(r *pxRun) { r.file("a", 0o644, pxRoot) }, do: renameCall("a", n256),
			want: errs(syscall.ENAMETOOLONG), check: func(r *pxRun, _ posixResult) { r.exists("a") }},
		{call: "rename", what: "to a 255-byte name", as: pxRoot,
			setup: func(r *pxRun) { r.file("a", 0o644, pxRoot) }, do: renameCall("a", n255),
			check: func(r *pxRun, _ posixResult) { r.absent("a"); r.exists(n255) }},
		{call: "rename", what: "a missing name", as: pxRoot, do: renameCall("a", "b"), want: errs(syscall.ENOENT)},
		{call: "rename", what: "a FIFO keeps its type and mode", as: pxRoot,
			setup: func(r *pxRun) { r.node("p", unix.S_IFIFO|0o640, 0) }, do: renameCall("p", "q"),
			check: func(r *pxRun, _ posixResult) {
				r.absent("p")
				r.ftype("q", unix.S_IFIFO)
				r.perm("q", 0o640)
				r.changed("q", "c", "p")
			}},
		{call: "rename", what: "a character device keeps its rdev", as: pxRoot,
			setup: func(r *pxRun) { r.node("c", unix.S_IFCHR|0o600, int(unix.Mkdev(4, 64))) }, do: renameCall("c", "d"),
			check: func(r *pxRun, _ posixResult) { r.ftype("d", unix.S_IFCHR); r.rdev("d", unix.Mkdev(4, 64)) }},
		{call: "rename", what: "a symlink keeps its target", as: pxRoot,
			setup: func(r *pxRun) { r.symlink("some/where", "l") }, do: renameCall("l", "m"),
			check: func(r *pxRun, _ posixResult) {
				got, err := os.Readlink(r.p("m"))
				r.expect("m target", err == nil && got == "some/where", "some/where", statOr(err, func() string { return got }))
			}},
	}
}

func truncateRows() []pxRow {
	trunc := func(name string, n int64) func(r *pxRun) posixCall {
		return func(r *pxRun) posixCall { return posixCall{Op: "truncate", Path: r.p(name), Size: n} }
	}
	ftrunc := func(op, name string, flags int, n int64) func(r *pxRun) posixCall {
		return func(r *pxRun) posixCall { return posixCall{Op: op, Path: r.p(name), Flags: flags, Size: n} }
	}
	return []pxRow{
		{call: "truncate", what: "an own 0644 file to 123", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1); r.times("f", oldA, oldM) }, do: trunc("f", 123),
			check: func(r *pxRun, _ posixResult) { r.size("f", 123); r.changed("f", "mc"); r.timeIs("f", 'a', oldA) }},
		{call: "truncate", what: "a root 0644 file", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: trunc("f", 0),
			want: errs(syscall.EACCES), check: func(r *pxRun, _ posixResult) { r.size("f", 8); r.same("f", "mc") }},
		{call: "truncate", what: "a directory", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot) }, do: trunc("d", 0), want: errs(syscall.EISDIR)},
		{call: "truncate", what: "a missing name", as: pxRoot, do: trunc("f", 0), want: errs(syscall.ENOENT)},
		{call: "truncate", what: "a component is a file", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: trunc("f/g", 0), want: errs(syscall.ENOTDIR)},
		{call: "truncate", what: "a 256-byte name", as: pxRoot, do: trunc(n256, 0), want: errs(syscall.ENAMETOOLONG)},
		{call: "truncate", what: "a negative length", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: trunc("f", -1), want: errs(syscall.EINVAL)},
		{call: "truncate", what: "by a non-owner clears set-id bits of a root 06777 file", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o6777, pxRoot) }, do: trunc("f", 2),
			check: func(r *pxRun, _ posixResult) { r.size("f", 2); r.perm("f", 0o777) }},
		{call: "ftruncate", what: "an own file opened O_RDWR, to 77", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1); r.times("f", oldA, oldM) }, do: ftrunc("ftruncate", "f", unix.O_RDWR, 77),
			check: func(r *pxRun, _ posixResult) { r.size("f", 77); r.changed("f", "mc") }},
		{call: "ftruncate", what: "a descriptor opened O_RDONLY", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1) }, do: ftrunc("ftruncate", "f", unix.O_RDONLY, 0),
			want: errs(syscall.EINVAL, syscall.EBADF), check: func(r *pxRun, _ posixResult) { r.size("f", 8) }},
		{call: "ftruncate", what: "after fchmod 0 of the open file", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1) }, do: ftrunc("ftruncate-after-fchmod0", "f", unix.O_RDWR, 3),
			check: func(r *pxRun, _ posixResult) { r.size("f", 3); r.perm("f", 0) }},
		{call: "ftruncate", what: "a negative length", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1) }, do: ftrunc("ftruncate", "f", unix.O_RDWR, -1), want: errs(syscall.EINVAL)},
	}
}

func chmodCall(name string, mode uint32) func(r *pxRun) posixCall {
	return func(r *pxRun) posixCall { return posixCall{Op: "chmod", Path: r.p(name), Mode: mode} }
}

func chmodRows() []pxRow {
	return []pxRow{
		{call: "chmod", what: "an own file 0644 -> 0640", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1); r.times("f", oldA, oldM) }, do: chmodCall("f", 0o640),
			check: func(r *pxRun, _ posixResult) { r.perm("f", 0o640); r.changed("f", "c"); r.same("f", "am") }},
		{call: "chmod", what: "another's file", as: pxU2,
			setup: func(r *pxRun) { r.file("f", 0o666, pxU1) }, do: chmodCall("f", 0o600),
			want: errs(syscall.EPERM), check: func(r *pxRun, _ posixResult) { r.perm("f", 0o666); r.same("f", "c") }},
		{call: "chmod", what: "u1's file, by root", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1) }, do: chmodCall("f", 0o600),
			check: func(r *pxRun, _ posixResult) { r.perm("f", 0o600); r.owner("f", pxU1.UID, pxU1.GID) }},
		{call: "chmod", what: "07777 by root", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: chmodCall("f", 0o7777),
			check: func(r *pxRun, _ posixResult) { r.perm("f", 0o7777) }},
		{call: "chmod", what: "setgid on an own file of a group the caller is not in (dropped)", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, posixUser{UID: pxU1.UID}) }, do: chmodCall("f", 0o2755),
			check: func(r *pxRun, _ posixResult) { r.perm("f", 0o755) }},
		{call: "chmod", what: "setgid on an own file of a group the caller is in", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, posixUser{UID: pxU1.UID, GID: posixShared}) }, do: chmodCall("f", 0o2755),
			check: func(r *pxRun, _ posixResult) { r.perm("f", 0o2755) }},
		{call: "chmod", what: "an own dir 0755 -> 01700", as: pxU1,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxU1) }, do: chmodCall("d", 0o1700),
			check: func(r *pxRun, _ posixResult) { r.perm("d", 0o1700); r.ftype("d", unix.S_IFDIR); r.changed("d", "c") }},
		{call: "chmod", what: "through a symlink changes the target", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot); r.symlink("f", "l") }, do: chmodCall("l", 0o600),
			check: func(r *pxRun, _ posixResult) { r.perm("f", 0o600); r.ftype("l", unix.S_IFLNK) }},
		{call: "chmod", what: "a FIFO keeps its type", as: pxRoot,
			setup: func(r *pxRun) { r.node("p", unix.S_IFIFO|0o644, 0) }, do: chmodCall("p", 0o600),
			check: func(r *pxRun, _ posixResult) { r.perm("p", 0o600); r.ftype("p", unix.S_IFIFO) }},
		{call: "chmod", what: "a missing name", as: pxRoot, do: chmodCall("f", 0o644), want: errs(syscall.ENOENT)},
		{call: "chmod", what: "a component is a file", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: chmodCall("f/g", 0o644), want: errs(syscall.ENOTDIR)},
		{call: "chmod", what: "a 256-byte name", as: pxRoot, do: chmodCall(n256, 0o644), want: errs(syscall.ENAMETOOLONG)},
		{call: "chmod", what: "an own file in a root 0700 dir (no search)", as: pxU1,
			setup: func(r *pxRun) { r.subdir("d", 0o777, pxRoot); r.file("d/f", 0o644, pxU1); r.own("d", 0o700, pxRoot) },
			do:    chmodCall("d/f", 0o600), want: errs(syscall.EACCES)},
	}
}

func chownCall(name string, uid, gid int, flags int) func(r *pxRun) posixCall {
	return func(r *pxRun) posixCall {
		return posixCall{Op: "chown", Path: r.p(name), UID: uid, GID: gid, Flags: flags}
	}
}

func chownRows() []pxRow {
	return []pxRow{
		{call: "chown", what: "a root file to 64001:64002", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot); r.times("f", oldA, oldM) }, do: chownCall("f", 64001, 64002, 0),
			check: func(r *pxRun, _ posixResult) {
				r.owner("f", 64001, 64002)
				r.changed("f", "c")
				r.same("f", "am")
				r.perm("f", 0o644)
			}},
		{call: "chown", what: "an own file to another uid", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1) }, do: chownCall("f", int(pxU2.UID), -1, 0),
			want: errs(syscall.EPERM), check: func(r *pxRun, _ posixResult) { r.owner("f", pxU1.UID, pxU1.GID); r.same("f", "c") }},
		{call: "chown", what: "an own file to its own uid", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1) }, do: chownCall("f", int(pxU1.UID), -1, 0),
			check: func(r *pxRun, _ posixResult) { r.owner("f", pxU1.UID, pxU1.GID) }},
		{call: "chown", what: "chgrp of an own file to a group the caller is in", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1) }, do: chownCall("f", -1, posixShared, 0),
			check: func(r *pxRun, _ posixResult) { r.owner("f", pxU1.UID, posixShared); r.changed("f", "c") }},
		{call: "chown", what: "chgrp of an own file to a group the caller is not in", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1) }, do: chownCall("f", -1, int(pxU2.GID), 0),
			want: errs(syscall.EPERM), check: func(r *pxRun, _ posixResult) { r.owner("f", pxU1.UID, pxU1.GID) }},
		{call: "chown", what: "chgrp of another's file", as: pxU2,
			setup: func(r *pxRun) { r.file("f", 0o666, pxU1) }, do: chownCall("f", -1, posixShared, 0),
			want: errs(syscall.EPERM), check: func(r *pxRun, _ posixResult) { r.owner("f", pxU1.UID, pxU1.GID) }},
		{call: "chown", what: "by root clears set-id bits of a 06755 file", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o6755, pxRoot) }, do: chownCall("f", 64001, 64001, 0),
			check: func(r *pxRun, _ posixResult) { r.perm("f", 0o755); r.owner("f", 64001, 64001) }},
		{call: "chown", what: "by the owner to its group clears set-id bits of a 06755 file", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o6755, pxU1) }, do: chownCall("f", -1, posixShared, 0),
			check: func(r *pxRun, _ posixResult) { r.perm("f", 0o755) }},
		{call: "chown", what: "a 02755 dir keeps setgid", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o2755, pxRoot) }, do: chownCall("d", 64001, 64001, 0),
			check: func(r *pxRun, _ posixResult) { r.perm("d", 0o2755); r.owner("d", 64001, 64001) }},
		{call: "chown", what: "lchown of a symlink leaves the target", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot); r.symlink("f", "l") }, do: chownCall("l", 64001, 64002, unix.AT_SYMLINK_NOFOLLOW),
			check: func(r *pxRun, _ posixResult) { r.owner("l", 64001, 64002); r.owner("f", 0, 0) }},
		{call: "chown", what: "through a symlink changes the target", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot); r.symlink("f", "l") }, do: chownCall("l", 64001, 64002, 0),
			check: func(r *pxRun, _ posixResult) { r.owner("f", 64001, 64002); r.owner("l", 0, 0) }},
		{call: "chown", what: "a missing name", as: pxRoot, do: chownCall("f", 1, 1, 0), want: errs(syscall.ENOENT)},
		{call: "chown", what: "a component is a file", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: chownCall("f/g", 1, 1, 0), want: errs(syscall.ENOTDIR)},
		{call: "chown", what: "a 256-byte name", as: pxRoot, do: chownCall(n256, 1, 1, 0), want: errs(syscall.ENAMETOOLONG)},
	}
}

func utimensCall(name string, atime, mtime unix.Timespec, flags int) func(r *pxRun) posixCall {
	return func(r *pxRun) posixCall {
		return posixCall{Op: "utimensat", Path: r.p(name), Times: [2][2]int64{{atime.Sec, atime.Nsec}, {mtime.Sec, mtime.Nsec}}, Flags: flags}
	}
}

var (
	utimeNow  = ts(0, unix.UTIME_NOW)
	utimeOmit = ts(0, unix.UTIME_OMIT)
)

func utimensatRows() []pxRow {
	a1, m1 := ts(1234567890, 123456789), ts(1300000000, 987654321)
	pre1970a, pre1970m := ts(-1, 999999999), ts(-1000000000, 500000000)
	post2038a, post2038m := ts(1<<33, 1), ts(4102444800, 999999999)
	withOld := func(name string, mode uint32, u posixUser) func(r *pxRun) {
		return func(r *pxRun) { r.file(name, mode, u); r.times(name, oldA, oldM) }
	}
	return []pxRow{
		{call: "utimensat", what: "explicit times with nanoseconds by the owner", as: pxU1,
			setup: withOld("f", 0o644, pxU1), do: utimensCall("f", a1, m1, 0),
			check: func(r *pxRun, _ posixResult) { r.timeIs("f", 'a', a1); r.timeIs("f", 'm', m1); r.changed("f", "c") }},
		{call: "utimensat", what: "explicit times on another's 0666 file", as: pxU2,
			setup: withOld("f", 0o666, pxU1), do: utimensCall("f", a1, m1, 0),
			want: errs(syscall.EPERM), check: func(r *pxRun, _ posixResult) { r.same("f", "amc") }},
		{call: "utimensat", what: "UTIME_NOW on another's 0666 file (write permission)", as: pxU2,
			setup: withOld("f", 0o666, pxU1), do: utimensCall("f", utimeNow, utimeNow, 0),
			check: func(r *pxRun, _ posixResult) { r.fresh("f", "amc") }},
		{call: "utimensat", what: "UTIME_NOW on another's 0644 file", as: pxU2,
			setup: withOld("f", 0o644, pxU1), do: utimensCall("f", utimeNow, utimeNow, 0),
			want: errs(syscall.EACCES), check: func(r *pxRun, _ posixResult) { r.same("f", "am") }},
		{call: "utimensat", what: "UTIME_OMIT for both", as: pxU1,
			setup: withOld("f", 0o644, pxU1), do: utimensCall("f", utimeOmit, utimeOmit, 0),
			check: func(r *pxRun, _ posixResult) { r.timeIs("f", 'a', oldA); r.timeIs("f", 'm', oldM) }},
		{call: "utimensat", what: "atime only, mtime UTIME_OMIT (touch -a)", as: pxU1,
			setup: withOld("f", 0o644, pxU1), do: utimensCall("f", a1, utimeOmit, 0),
			check: func(r *pxRun, _ posixResult) { r.timeIs("f", 'a', a1); r.timeIs("f", 'm', oldM); r.changed("f", "c") }},
		{call: "utimensat", what: "mtime only, atime UTIME_OMIT", as: pxU1,
			setup: withOld("f", 0o644, pxU1), do: utimensCall("f", utimeOmit, m1, 0),
			check: func(r *pxRun, _ posixResult) { r.timeIs("f", 'a', oldA); r.timeIs("f", 'm', m1) }},
		{call: "utimensat", what: "mtime UTIME_NOW, atime UTIME_OMIT", as: pxU1,
			setup: withOld("f", 0o644, pxU1), do: utimensCall("f", utimeOmit, utimeNow, 0),
			check: func(r *pxRun, _ posixResult) { r.timeIs("f", 'a', oldA); r.fresh("f", "mc") }},
		{call: "utimensat", what: "before 1970", as: pxRoot,
			setup: withOld("f", 0o644, pxRoot), do: utimensCall("f", pre1970a, pre1970m, 0),
			check: func(r *pxRun, _ posixResult) { r.timeIs("f", 'a', pre1970a); r.timeIs("f", 'm', pre1970m) }},
		{call: "utimensat", what: "past 2038", as: pxRoot,
			setup: withOld("f", 0o644, pxRoot), do: utimensCall("f", post2038a, post2038m, 0),
			check: func(r *pxRun, _ posixResult) { r.timeIs("f", 'a', post2038a); r.timeIs("f", 'm', post2038m) }},
		{call: "utimensat", what: "explicit times of another's file, by root", as: pxRoot,
			setup: withOld("f", 0o600, pxU1), do: utimensCall("f", a1, m1, 0),
			check: func(r *pxRun, _ posixResult) { r.timeIs("f", 'm', m1) }},
		{call: "utimensat", what: "explicit times of a directory", as: pxU1,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxU1) }, do: utimensCall("d", a1, m1, 0),
			check: func(r *pxRun, _ posixResult) {
				r.timeIs("d", 'a', a1)
				r.timeIs("d", 'm', m1)
				r.ftype("d", unix.S_IFDIR)
			}},
		{call: "utimensat", what: "AT_SYMLINK_NOFOLLOW sets the symlink's own times", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot); r.times("f", oldA, oldM); r.symlink("f", "l") },
			do:    utimensCall("l", a1, m1, unix.AT_SYMLINK_NOFOLLOW),
			check: func(r *pxRun, _ posixResult) { r.timeIs("l", 'm', m1); r.timeIs("f", 'm', oldM) }},
		{call: "utimensat", what: "a missing name", as: pxRoot, do: utimensCall("f", a1, m1, 0), want: errs(syscall.ENOENT)},
		{call: "utimensat", what: "a 256-byte name", as: pxRoot, do: utimensCall(n256, a1, m1, 0), want: errs(syscall.ENAMETOOLONG)},
	}
}

func symlinkCall(link, target string) func(r *pxRun) posixCall {
	return func(r *pxRun) posixCall { return posixCall{Op: "symlink", Path: r.p(link), Path2: target} }
}

func symlinkRows() []pxRow {
	longTarget := strings.Repeat(strings.Repeat("t", 99)+"/", 10) + "end"
	return []pxRow{
		{call: "symlink", what: "in a 0777 dir", as: pxU1, do: symlinkCall("l", "../some/target"),
			check: func(r *pxRun, _ posixResult) {
				r.ftype("l", unix.S_IFLNK)
				r.owner("l", pxU1.UID, pxU1.GID)
				r.nlink("l")
				got, err := os.Readlink(r.p("l"))
				r.expect("l target", err == nil && got == "../some/target", "../some/target", statOr(err, func() string { return got }))
				r.fresh("l", "mc")
				r.changed(".", "mc")
			}},
		{call: "symlink", what: "in a setgid root:shared dir takes its group", as: pxU1,
			setup: func(r *pxRun) { r.ownGroup(".", 0o2777, pxRoot, posixShared) }, do: symlinkCall("l", "x"),
			check: func(r *pxRun, _ posixResult) { r.owner("l", pxU1.UID, posixShared) }},
		{call: "symlink", what: "over an existing file", as: pxRoot,
			setup: func(r *pxRun) { r.file("l", 0o644, pxRoot) }, do: symlinkCall("l", "x"),
			want: errs(syscall.EEXIST), check: func(r *pxRun, _ posixResult) { r.ftype("l", unix.S_IFREG) }},
		{call: "symlink", what: "in a root 0755 dir", as: pxU1,
			setup: func(r *pxRun) { r.own(".", 0o755, pxRoot) }, do: symlinkCall("l", "x"),
			want: errs(syscall.EACCES), check: func(r *pxRun, _ posixResult) { r.absent("l") }},
		{call: "symlink", what: "in a missing dir", as: pxRoot, do: symlinkCall("missing/l", "x"), want: errs(syscall.ENOENT)},
		{call: "symlink", what: "a 256-byte link name", as: pxRoot, do: symlinkCall(n256, "x"), want: errs(syscall.ENAMETOOLONG)},
		{call: "symlink", what: "a 255-byte link name", as: pxRoot, do: symlinkCall(n255, "x"),
			check: func(r *pxRun, _ posixResult) { r.ftype(n255, unix.S_IFLNK) }},
		{call: "symlink", what: "a 1,003-byte target", as: pxRoot, do: symlinkCall("l", longTarget),
			check: func(r *pxRun, _ posixResult) {
				got, err := os.Readlink(r.p("l"))
				r.expect("l target", err == nil && got == longTarget, len(longTarget), statOr(err, func() string { return fmt.Sprint(len(got)) }))
			}},
	}
}

func mknodCall(name string, mode uint32, dev uint64) func(r *pxRun) posixCall {
	return func(r *pxRun) posixCall { return posixCall{Op: "mknod", Path: r.p(name), Mode: mode, Dev: dev} }
}

func mkfifoCall(name string, mode uint32) func(r *pxRun) posixCall {
	return func(r *pxRun) posixCall { return posixCall{Op: "mkfifo", Path: r.p(name), Mode: mode} }
}

func mknodRows() []pxRow {
	node := func(name string, typ, perm uint32, u posixUser) func(r *pxRun, _ posixResult) {
		return func(r *pxRun, _ posixResult) {
			r.ftype(name, typ)
			r.perm(name, perm)
			r.owner(name, u.UID, u.GID)
			r.nlink(name)
			r.fresh(name, "amc")
			r.changed(".", "mc")
		}
	}
	chr, blk := unix.Mkdev(4, 64), unix.Mkdev(8, 1)
	return []pxRow{
		{call: "mknod", what: "S_IFIFO 0644", as: pxU1, do: mknodCall("p", unix.S_IFIFO|0o644, 0), check: node("p", unix.S_IFIFO, 0o644, pxU1)},
		{call: "mknod", what: "S_IFREG 0600", as: pxU1, do: mknodCall("f", unix.S_IFREG|0o600, 0),
			check: func(r *pxRun, res posixResult) { node("f", unix.S_IFREG, 0o600, pxU1)(r, res); r.size("f", 0) }},
		{call: "mknod", what: "S_IFSOCK 0755", as: pxU1, do: mknodCall("s", unix.S_IFSOCK|0o755, 0), check: node("s", unix.S_IFSOCK, 0o755, pxU1)},
		{call: "mknod", what: "S_IFCHR as a user", as: pxU1, do: mknodCall("c", unix.S_IFCHR|0o644, chr),
			want: errs(syscall.EPERM), check: func(r *pxRun, _ posixResult) { r.absent("c") }},
		{call: "mknod", what: "S_IFCHR 0620 (4,64) as root", as: pxRoot, do: mknodCall("c", unix.S_IFCHR|0o620, chr),
			check: func(r *pxRun, res posixResult) { node("c", unix.S_IFCHR, 0o620, pxRoot)(r, res); r.rdev("c", chr) }},
		{call: "mknod", what: "S_IFBLK 0660 (8,1) as root", as: pxRoot, do: mknodCall("b", unix.S_IFBLK|0o660, blk),
			check: func(r *pxRun, res posixResult) { r.ftype("b", unix.S_IFBLK); r.rdev("b", blk) }},
		{call: "mknod", what: "a FIFO with umask 022", as: pxU1,
			do: func(r *pxRun) posixCall {
				return posixCall{Op: "mknod", Path: r.p("p"), Mode: unix.S_IFIFO | 0o666, Umask: 0o022}
			},
			check: func(r *pxRun, _ posixResult) { r.perm("p", 0o644) }},
		{call: "mknod", what: "in a setgid root:shared dir takes its group", as: pxU1,
			setup: func(r *pxRun) { r.ownGroup(".", 0o2777, pxRoot, posixShared) }, do: mknodCall("p", unix.S_IFIFO|0o644, 0),
			check: func(r *pxRun, _ posixResult) { r.owner("p", pxU1.UID, posixShared) }},
		{call: "mknod", what: "over an existing file", as: pxRoot,
			setup: func(r *pxRun) { r.file("p", 0o644, pxRoot) }, do: mknodCall("p", unix.S_IFIFO|0o644, 0),
			want: errs(syscall.EEXIST), check: func(r *pxRun, _ posixResult) { r.ftype("p", unix.S_IFREG) }},
		{call: "mknod", what: "in a root 0755 dir", as: pxU1,
			setup: func(r *pxRun) { r.own(".", 0o755, pxRoot) }, do: mknodCall("p", unix.S_IFIFO|0o644, 0), want: errs(syscall.EACCES)},
		{call: "mknod", what: "a 256-byte name", as: pxRoot, do: mknodCall(n256, unix.S_IFIFO|0o644, 0), want: errs(syscall.ENAMETOOLONG)},
		{call: "mknod", what: "readdir types of every kind", as: pxRoot,
			setup: func(r *pxRun) {
				r.file("f", 0o644, pxRoot)
				r.subdir("d", 0o755, pxRoot)
				r.symlink("f", "l")
				r.node("p", unix.S_IFIFO|0o644, 0)
				r.node("c", unix.S_IFCHR|0o644, int(chr))
			},
			do: mknodCall("s", unix.S_IFSOCK|0o644, 0),
			check: func(r *pxRun, _ posixResult) {
				want := map[string]os.FileMode{"f": 0, "d": os.ModeDir, "l": os.ModeSymlink, "p": os.ModeNamedPipe, "c": os.ModeDevice | os.ModeCharDevice, "s": os.ModeSocket}
				entries, err := os.ReadDir(r.dir)
				got := map[string]os.FileMode{}
				for _, e := range entries {
					got[e.Name()] = e.Type()
				}
				r.expect("readdir d_type", err == nil && fmt.Sprint(got) == fmt.Sprint(want), want, statOr(err, func() string { return fmt.Sprint(got) }))
			}},
		{call: "mkfifo", what: "0640 in a 0777 dir", as: pxU1, do: mkfifoCall("p", 0o640), check: node("p", unix.S_IFIFO, 0o640, pxU1)},
		{call: "mkfifo", what: "over an existing FIFO", as: pxRoot,
			setup: func(r *pxRun) { r.node("p", unix.S_IFIFO|0o600, 0) }, do: mkfifoCall("p", 0o644),
			want: errs(syscall.EEXIST), check: func(r *pxRun, _ posixResult) { r.perm("p", 0o600) }},
		{call: "mkfifo", what: "in a root 0755 dir", as: pxU1,
			setup: func(r *pxRun) { r.own(".", 0o755, pxRoot) }, do: mkfifoCall("p", 0o644), want: errs(syscall.EACCES)},
		{call: "mkfifo", what: "in a missing dir", as: pxRoot, do: mkfifoCall("missing/p", 0o644), want: errs(syscall.ENOENT)},
		{call: "mkfifo", what: "a 256-byte name", as: pxRoot, do: mkfifoCall(n256, 0o644), want: errs(syscall.ENAMETOOLONG)},
		{call: "mkfifo", what: "a 255-byte name", as: pxRoot, do: mkfifoCall(n255, 0o644),
			check: func(r *pxRun, _ posixResult) { r.ftype(n255, unix.S_IFIFO) }},
	}
}

func linkCall(from, to string) func(r *pxRun) posixCall {
	return func(r *pxRun) posixCall { return posixCall{Op: "link", Path: r.p(from), Path2: r.p(to)} }
}

func linkRows() []pxRow {
	return []pxRow{
		// ENOTSUP and EOPNOTSUPP are one value on Linux; EPERM if the kernel decides.
		{call: "link", what: "a hard link of a file", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: linkCall("f", "g"), want: errs(syscall.EOPNOTSUPP, syscall.EPERM),
			check: func(r *pxRun, _ posixResult) { r.absent("g"); r.nlink("f") }},
		{call: "link", what: "a hard link of a directory", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot) }, do: linkCall("d", "e"), want: errs(syscall.EPERM)},
		{call: "link", what: "to an existing name", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot); r.file("g", 0o644, pxRoot) }, do: linkCall("f", "g"), want: errs(syscall.EEXIST)},
		{call: "link", what: "to a 256-byte name", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: linkCall("f", n256), want: errs(syscall.ENAMETOOLONG)},
	}
}

func xattrCall(op, name, attr string, value []byte, flags int, size int64) func(r *pxRun) posixCall {
	return func(r *pxRun) posixCall {
		return posixCall{Op: op, Path: r.p(name), Name: attr, Value: value, Flags: flags, Size: size}
	}
}

func xattrRows() []pxRow {
	big := bytes.Repeat([]byte("v"), 3000)
	withX := func(name string, mode uint32, u posixUser) func(r *pxRun) {
		return func(r *pxRun) { r.file(name, mode, u); r.setx(name, "user.a", "alpha") }
	}
	return []pxRow{
		{call: "setxattr", what: "user.k on a file", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: xattrCall("setxattr", "f", "user.k", []byte("value"), 0, 0),
			check: func(r *pxRun, _ posixResult) { r.xattrIs("f", "user.k", []byte("value")) }},
		{call: "setxattr", what: "user.k on a directory", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot) }, do: xattrCall("setxattr", "d", "user.k", []byte("dir value"), 0, 0),
			check: func(r *pxRun, _ posixResult) { r.xattrIs("d", "user.k", []byte("dir value")) }},
		{call: "setxattr", what: "binary and empty values", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot); r.setx("f", "user.empty", "") },
			do:    xattrCall("setxattr", "f", "user.bin", []byte{0, 1, 0xff, '"', '%', '\n'}, 0, 0),
			check: func(r *pxRun, _ posixResult) {
				r.xattrIs("f", "user.bin", []byte{0, 1, 0xff, '"', '%', '\n'})
				r.xattrIs("f", "user.empty", []byte{})
			}},
		{call: "setxattr", what: "XATTR_CREATE of an existing name", as: pxRoot,
			setup: withX("f", 0o644, pxRoot), do: xattrCall("setxattr", "f", "user.a", []byte("beta"), unix.XATTR_CREATE, 0),
			want: errs(syscall.EEXIST), check: func(r *pxRun, _ posixResult) { r.xattrIs("f", "user.a", []byte("alpha")) }},
		{call: "setxattr", what: "XATTR_REPLACE of a missing name", as: pxRoot,
			setup: withX("f", 0o644, pxRoot), do: xattrCall("setxattr", "f", "user.b", []byte("beta"), unix.XATTR_REPLACE, 0),
			want: errs(syscall.ENODATA), check: func(r *pxRun, _ posixResult) { r.xattrAbsent("f", "user.b") }},
		{call: "setxattr", what: "XATTR_REPLACE of an existing name", as: pxRoot,
			setup: withX("f", 0o644, pxRoot), do: xattrCall("setxattr", "f", "user.a", []byte("beta"), unix.XATTR_REPLACE, 0),
			check: func(r *pxRun, _ posixResult) { r.xattrIs("f", "user.a", []byte("beta")) }},
		{call: "setxattr", what: "a 3,000-byte value (over S3's 2 KiB of metadata)", as: pxRoot,
			setup: withX("f", 0o644, pxRoot), do: xattrCall("setxattr", "f", "user.big", big, 0, 0),
			want: errs(syscall.E2BIG, syscall.ENOSPC),
			check: func(r *pxRun, _ posixResult) {
				r.xattrAbsent("f", "user.big")
				r.xattrIs("f", "user.a", []byte("alpha"))
			}},
		{call: "setxattr", what: "system.posix_acl_access", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) },
			do:    xattrCall("setxattr", "f", "system.posix_acl_access", posixACL(), 0, 0), want: errs(syscall.EOPNOTSUPP),
			check: func(r *pxRun, _ posixResult) { r.perm("f", 0o644) }},
		{call: "setxattr", what: "system.posix_acl_default on a dir", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot) },
			do:    xattrCall("setxattr", "d", "system.posix_acl_default", posixACL(), 0, 0), want: errs(syscall.EOPNOTSUPP)},
		{call: "setxattr", what: "user.k on an own 0644 file", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1) }, do: xattrCall("setxattr", "f", "user.k", []byte("mine"), 0, 0),
			check: func(r *pxRun, _ posixResult) { r.xattrIs("f", "user.k", []byte("mine")) }},
		{call: "setxattr", what: "user.k on another's 0644 file", as: pxU2,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1) }, do: xattrCall("setxattr", "f", "user.k", []byte("theirs"), 0, 0),
			want: errs(syscall.EACCES, syscall.EPERM), check: func(r *pxRun, _ posixResult) { r.xattrAbsent("f", "user.k") }},
		// Linux lets whoever may write the file set user.* (xattr(7)).
		{call: "setxattr", what: "user.k on another's 0666 file (write permission suffices on Linux)", as: pxU2,
			setup: func(r *pxRun) { r.file("f", 0o666, pxU1) }, do: xattrCall("setxattr", "f", "user.k", []byte("theirs"), 0, 0),
			check: func(r *pxRun, _ posixResult) { r.xattrIs("f", "user.k", []byte("theirs")) }},
		{call: "setxattr", what: "user.k on a symlink", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot); r.symlink("f", "l") }, do: xattrCall("lsetxattr", "l", "user.k", []byte("v"), 0, 0),
			want: errs(syscall.EPERM), check: func(r *pxRun, _ posixResult) { r.xattrAbsent("f", "user.k") }},
		{call: "setxattr", what: "trusted.k as a user", as: pxU1,
			setup: func(r *pxRun) { r.file("f", 0o644, pxU1) }, do: xattrCall("setxattr", "f", "trusted.k", []byte("v"), 0, 0),
			want: errs(syscall.EPERM)},
		{call: "setxattr", what: "trusted.k as root", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: xattrCall("setxattr", "f", "trusted.k", []byte("t"), 0, 0),
			check: func(r *pxRun, _ posixResult) { r.xattrIs("f", "trusted.k", []byte("t")) }},
		// s3fs's format cannot carry these characters in a name (SEMANTICS.md).
		{call: "setxattr", what: `a name holding ":"`, as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: xattrCall("setxattr", "f", "user.a:b", []byte("v"), 0, 0),
			want: errs(syscall.EINVAL), check: func(r *pxRun, _ posixResult) { r.xattrAbsent("f", "user.a:b") }},
		{call: "setxattr", what: "a 256-byte name in the path", as: pxRoot,
			do: xattrCall("setxattr", n256, "user.k", []byte("v"), 0, 0), want: errs(syscall.ENAMETOOLONG)},

		{call: "getxattr", what: "an existing name", as: pxU1,
			setup: withX("f", 0o644, pxRoot), do: xattrCall("getxattr", "f", "user.a", nil, 0, 64),
			check: func(r *pxRun, res posixResult) {
				r.expect("value", string(res.Data) == "alpha", "alpha", fmt.Sprintf("%q", res.Data))
			}},
		{call: "getxattr", what: "the size of a value (empty buffer)", as: pxRoot,
			setup: withX("f", 0o644, pxRoot), do: xattrCall("getxattr", "f", "user.a", nil, 0, 0),
			check: func(r *pxRun, res posixResult) { r.expect("size", res.N == 5, 5, res.N) }},
		{call: "getxattr", what: "a missing name", as: pxRoot,
			setup: withX("f", 0o644, pxRoot), do: xattrCall("getxattr", "f", "user.zz", nil, 0, 64), want: errs(syscall.ENODATA)},
		{call: "getxattr", what: "a buffer too small", as: pxRoot,
			setup: withX("f", 0o644, pxRoot), do: xattrCall("getxattr", "f", "user.a", nil, 0, 2), want: errs(syscall.ERANGE)},
		{call: "getxattr", what: "of a root 0600 file by another uid", as: pxU3,
			setup: withX("f", 0o600, pxRoot), do: xattrCall("getxattr", "f", "user.a", nil, 0, 64), want: errs(syscall.EACCES)},
		{call: "getxattr", what: "system.posix_acl_access (no ACLs)", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: xattrCall("getxattr", "f", "system.posix_acl_access", nil, 0, 256),
			want: errs(syscall.EOPNOTSUPP, syscall.ENODATA)},
		{call: "getxattr", what: "security.selinux reads as absent", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: xattrCall("getxattr", "f", "security.selinux", nil, 0, 256),
			want: errs(syscall.ENODATA)},
		{call: "getxattr", what: "on a directory", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot); r.setx("d", "user.d", "dv") }, do: xattrCall("getxattr", "d", "user.d", nil, 0, 64),
			check: func(r *pxRun, res posixResult) {
				r.expect("value", string(res.Data) == "dv", "dv", fmt.Sprintf("%q", res.Data))
			}},
		{call: "getxattr", what: "a 256-byte name in the path", as: pxRoot,
			do: xattrCall("getxattr", n256, "user.k", nil, 0, 64), want: errs(syscall.ENAMETOOLONG)},

		{call: "listxattr", what: "two names", as: pxU1,
			setup: func(r *pxRun) { withX("f", 0o644, pxRoot)(r); r.setx("f", "user.b", "") }, do: xattrCall("listxattr", "f", "", nil, 0, 256),
			check: func(r *pxRun, res posixResult) {
				got := strings.Split(strings.TrimSuffix(string(res.Data), "\x00"), "\x00")
				sort.Strings(got)
				r.expect("names", strings.Join(got, ",") == "user.a,user.b", "user.a,user.b", strings.Join(got, ","))
			}},
		{call: "listxattr", what: "none", as: pxRoot,
			setup: func(r *pxRun) { r.file("f", 0o644, pxRoot) }, do: xattrCall("listxattr", "f", "", nil, 0, 256),
			check: func(r *pxRun, res posixResult) {
				r.expect("length", res.N == 0, 0, fmt.Sprintf("%d %q", res.N, res.Data))
			}},
		{call: "listxattr", what: "a buffer too small", as: pxRoot,
			setup: withX("f", 0o644, pxRoot), do: xattrCall("listxattr", "f", "", nil, 0, 3), want: errs(syscall.ERANGE)},
		{call: "listxattr", what: "on a directory", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot); r.setx("d", "user.d", "dv") }, do: xattrCall("listxattr", "d", "", nil, 0, 256),
			check: func(r *pxRun, res posixResult) {
				r.expect("names", string(res.Data) == "user.d\x00", "user.d", fmt.Sprintf("%q", res.Data))
			}},

		{call: "removexattr", what: "an existing name", as: pxRoot,
			setup: func(r *pxRun) { withX("f", 0o644, pxRoot)(r); r.setx("f", "user.b", "b") }, do: xattrCall("removexattr", "f", "user.a", nil, 0, 0),
			check: func(r *pxRun, _ posixResult) { r.xattrAbsent("f", "user.a"); r.xattrIs("f", "user.b", []byte("b")) }},
		{call: "removexattr", what: "a missing name", as: pxRoot,
			setup: withX("f", 0o644, pxRoot), do: xattrCall("removexattr", "f", "user.zz", nil, 0, 0), want: errs(syscall.ENODATA)},
		{call: "removexattr", what: "on another's 0644 file", as: pxU2,
			setup: withX("f", 0o644, pxU1), do: xattrCall("removexattr", "f", "user.a", nil, 0, 0),
			want: errs(syscall.EACCES, syscall.EPERM), check: func(r *pxRun, _ posixResult) { r.xattrIs("f", "user.a", []byte("alpha")) }},
		{call: "removexattr", what: "on a directory", as: pxRoot,
			setup: func(r *pxRun) { r.subdir("d", 0o755, pxRoot); r.setx("d", "user.d", "dv") }, do: xattrCall("removexattr", "d", "user.d", nil, 0, 0),
			check: func(r *pxRun, _ posixResult) { r.xattrAbsent("d", "user.d") }},
	}
}

// posixACL is a minimal access ACL (user::rw-, group::r--, other::r--) in
// the kernel's xattr format.
func posixACL() []byte {
	b := []byte{2, 0, 0, 0} // version 2
	for _, e := range [][2]uint16{{0x01, 6}, {0x04, 4}, {0x20, 4}} {
		b = append(b, byte(e[0]), byte(e[0]>>8), byte(e[1]), byte(e[1]>>8), 0xff, 0xff, 0xff, 0xff)
	}
	return b
}

func nameRows() []pxRow {
	return []pxRow{
		{call: "stat", what: "a 256-byte name", as: pxRoot, do: pathCall("stat", n256), want: errs(syscall.ENAMETOOLONG)},
		{call: "stat", what: "a 256-byte directory in the path", as: pxRoot, do: pathCall("stat", n256+"/f"), want: errs(syscall.ENAMETOOLONG)},
		{call: "stat", what: "the mount's root has inode 1", as: pxRoot,
			do: func(r *pxRun) posixCall { return posixCall{Op: "stat", Path: r.mnt} },
			check: func(r *pxRun, _ posixResult) {
				var st unix.Stat_t
				err := unix.Stat(r.mnt, &st)
				r.expect("root st_ino", err == nil && st.Ino == 1, 1, statOr(err, func() string { return fmt.Sprint(st.Ino) }))
			}},
		{call: "stat", what: "a new directory's times are its creation time", as: pxU1, do: mkdirCall("d", 0o755, 0),
			check: func(r *pxRun, _ posixResult) { r.fresh("d", "amc") }},
	}
}
