package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// Staged writes (issue 10) driven by real tools: files that are appended
// to, changed in place, truncated to any size, read and mapped while
// written, or unlinked while open. Each tool runs the same commands on the
// mount and on a local directory, and the two must end alike; the S3
// requests and bytes the mount sent are logged, and bounded where the
// point is what they cost (an append to a 1 GiB object sends the append,
// not the object). BUCKETFS_E2E_STAGED_TARGET=local runs the "mount" side
// on a second local directory (staged_helpers_test.go).

// stepLimit is the deadline of one step of a tool's scenario.
const stepLimit = 3 * time.Minute

// TestStagedTools: git, sqlite3, cp --sparse and truncate, dd conv=notrunc,
// appends to a 1 GiB object, borg and restic, each on a bucket and a
// daemon of its own.
func TestStagedTools(t *testing.T) {
	srv := stagedServer(t)
	t.Run("git", func(t *testing.T) { testStagedGit(t, srv) })
	for _, mode := range []string{"delete", "wal"} {
		t.Run("sqlite-"+mode, func(t *testing.T) { testStagedSQLite(t, srv, mode) })
	}
	t.Run("sparse-and-truncate", func(t *testing.T) { testStagedSparse(t, srv) })
	t.Run("dd-notrunc", func(t *testing.T) { testStagedDDNotrunc(t, srv) })
	t.Run("append-1GiB", func(t *testing.T) { testStagedAppend(t, srv) })
	t.Run("borg", func(t *testing.T) { testStagedBorg(t, srv) })
	t.Run("restic", func(t *testing.T) { testStagedRestic(t, srv) })
}

// requireTools fails (CI=true) or skips the test when a tool is missing.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		_, err := exec.LookPath(n)
		s3test.Require(t, err == nil, n)
	}
}

// gitFiles is how many files the git scenario's repository holds:
// BUCKETFS_E2E_GIT_FILES, else 300.
func gitFiles(t *testing.T) int {
	t.Helper()
	if s := os.Getenv("BUCKETFS_E2E_GIT_FILES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			t.Fatalf("BUCKETFS_E2E_GIT_FILES=%q: want a count of at least 10", s)
		}
		return n
	}
	return 300
}

// gitEnv makes git's runs alike wherever they happen: no system or user
// configuration, fixed names and dates (so commits have the same hashes),
// no background work.
func gitEnv(home string) []string {
	return []string{
		"HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=bucketfs e2e", "GIT_AUTHOR_EMAIL=e2e@bucketfs.invalid", "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z",
		"GIT_COMMITTER_NAME=bucketfs e2e", "GIT_COMMITTER_EMAIL=e2e@bucketfs.invalid", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
		"GIT_CONFIG_COUNT=3",
		"GIT_CONFIG_KEY_0=gc.autoDetach", "GIT_CONFIG_VALUE_0=false",
		"GIT_CONFIG_KEY_1=init.defaultBranch", "GIT_CONFIG_VALUE_1=main",
		"GIT_CONFIG_KEY_2=maintenance.auto", "GIT_CONFIG_VALUE_2=false",
	}
}

// testStagedGit: git clone of a local repository onto the mount, git fsck,
// a commit of a rewritten file and of one appended to with >> (the reflog
// is appended to as well), git gc; then git log, ls-files -s, fsck and the
// appended bytes must be the same as on a local directory, and again after
// a remount.
func testStagedGit(t *testing.T, srv *s3test.Server) {
	requireTools(t, "git")
	m := newStagedMount(t, srv)
	home := t.TempDir()
	env := gitEnv(home)
	n := gitFiles(t)

	// The source repository, on the local disk: n files in directories of
	// 100, small texts and one binary in 50, in two commits.
	src := filepath.Join(t.TempDir(), "src")
	for i := 0; i < n; i++ {
		p := filepath.Join(src, fmt.Sprintf("d%02d", i/100), fmt.Sprintf("f%04d.txt", i))
		var b bytes.Buffer
		for l := 0; l <= i%40; l++ {
			fmt.Fprintf(&b, "file %d line %d\n", i, l)
		}
		if i%50 == 7 {
			p = strings.TrimSuffix(p, ".txt") + ".bin"
			b.Write(randomBytes(uint64(i), 64<<10))
		}
		writeFile(t, p, b.Bytes())
	}
	m.runSteps(t, src, stepLimit, env, []toolStep{{name: "source", script: `git init -q
git add -A
git commit -q -m initial
for f in d00/f000[3-9].txt; do echo "second version" >> "$f"; done
git commit -q -a -m second`}})
	env = append(env, "SRC="+src)

	first := []toolStep{
		{name: "git clone", script: `git clone -q --no-local "$SRC" repo`, same: true},
		{name: "git fsck", script: `cd repo && git fsck --full --strict --no-progress`, same: true},
		{name: "edit, >>, commit", script: `cd repo
printf 'rewritten\n' > d00/f0002.txt
echo appended >> d00/f0001.txt
git commit -q -a -m "edit and append"
git status --porcelain`, same: true},
		{name: "git gc", script: `cd repo && git gc -q --prune=now`},
		{name: "compare", script: gitCompare, same: true},
	}
	again := []toolStep{{name: "compare after remount", script: gitCompare, same: true}}

	localDir := t.TempDir()
	local := m.runSteps(t, localDir, stepLimit, env, append(first, again...))
	before := m.Counts()
	stop := m.watchdog(t, 5*stepLimit, "git")
	mounted := m.runSteps(t, m.Dir, stepLimit, env, first)
	m.Remount(t)
	mounted = append(mounted, m.runSteps(t, m.Dir, stepLimit, env, again)...)
	stop()
	compareSteps(t, fmt.Sprintf("git (%d files)", n), local, mounted)
	t.Logf("git: S3 %s; %s", describeCounts(m.Counts().Sub(before)), m.figures(t))
}

// gitCompare prints what must be the same after the git scenario.
const gitCompare = `cd repo
git log --format='%H %s'
git reflog --format='%H %gs'
git ls-files -s
git fsck --full --strict --no-progress
git status --porcelain
git count-objects -v | grep -E '^(count|in-pack|packs|garbage):'
tail -c 40 d00/f0001.txt | od -c`

// testStagedSQLite: sqlite3 creates a database and inserts 100,000 rows in
// one transaction, then changes and deletes rows and vacuums, in rollback-
// journal mode (delete) or in WAL mode (whose -shm file it maps shared);
// PRAGMA integrity_check answers ok, and the counts, sums and a hash of
// .dump are those of a local run, again after a remount.
func testStagedSQLite(t *testing.T, srv *s3test.Server, mode string) {
	requireTools(t, "sqlite3", "sha256sum")
	m := newStagedMount(t, srv)
	steps := []toolStep{
		{name: "create, 100,000 rows", same: true, script: `sqlite3 db.sqlite <<'SQL'
PRAGMA journal_mode=` + mode + `;
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER NOT NULL, b TEXT NOT NULL);
CREATE INDEX t_a ON t(a);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t SELECT x, (x * 7919) % 100003, printf('row %d %x ', x, x * x) || hex(zeroblob(20)) FROM c;
COMMIT;
PRAGMA integrity_check;
SQL`},
		{name: "update, delete", same: true, script: `sqlite3 db.sqlite <<'SQL'
BEGIN;
UPDATE t SET b = b || ' updated' WHERE id % 10 = 0;
DELETE FROM t WHERE id % 97 = 0;
INSERT INTO t(a, b) SELECT a + 1, b || ' copy' FROM t WHERE id % 1000 = 1;
COMMIT;
PRAGMA integrity_check;
SQL`},
		{name: "vacuum", same: true, script: `sqlite3 db.sqlite 'VACUUM; PRAGMA integrity_check;'`},
		{name: "query", same: true, script: sqliteQuery},
	}
	again := []toolStep{{name: "query after remount", same: true, script: sqliteQuery}}

	local := m.runSteps(t, t.TempDir(), stepLimit, nil, append(steps, again...))
	before := m.Counts()
	stop := m.watchdog(t, 5*stepLimit, "sqlite3")
	mounted := m.runSteps(t, m.Dir, stepLimit, nil, steps)
	figures := m.figures(t)
	m.Remount(t)
	mounted = append(mounted, m.runSteps(t, m.Dir, stepLimit, nil, again)...)
	stop()
	compareSteps(t, "sqlite3 journal_mode="+mode, local, mounted)
	if !strings.Contains(mounted[len(mounted)-1].out, "\nok\n") {
		t.Errorf("integrity_check after the remount: %s; want ok", mounted[len(mounted)-1].out)
	}
	t.Logf("sqlite3 journal_mode=%s: S3 %s; %s", mode, describeCounts(m.Counts().Sub(before)), figures)
}

// sqliteQuery prints what must be the same after the sqlite3 scenario,
// and the names left in the directory (no journal, WAL or -shm file once
// the last connection closed).
const sqliteQuery = `sqlite3 db.sqlite 'PRAGMA journal_mode; PRAGMA integrity_check; SELECT count(*), sum(a), sum(length(b)), total(id) FROM t;'
sqlite3 db.sqlite .dump | sha256sum
ls`

// testStagedSparse: cp --sparse=always of a 25 MiB file that is mostly
// holes and ends in one (cp seeks over them and extends the file with
// ftruncate), truncate -s 25M of a new file, and truncate -s 1024 of an
// existing empty file: sizes and bytes as on a local directory, in S3 and
// after a remount.
func testStagedSparse(t *testing.T, srv *s3test.Server) {
	requireTools(t, "cp", "truncate", "cmp")
	m := newStagedMount(t, srv)
	src := filepath.Join(t.TempDir(), "sparse-src")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ off, n int64 }{{0, 64 << 10}, {7 << 20, 1 << 20}, {20 << 20, 4 << 10}} {
		if _, err := f.WriteAt(randomBytes(uint64(r.off), int(r.n)), r.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(25 << 20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	env := []string{"SRC=" + src}
	steps := []toolStep{
		{name: "cp --sparse=always", script: `cp --sparse=always "$SRC" sparse.bin`},
		{name: "truncate -s 25M new", script: `truncate -s 25M new25.bin`},
		{name: "truncate -s 1024 empty", script: `: > empty.bin
sleep 0.2
truncate -s 1024 empty.bin`},
		{name: "sizes", same: true, script: `stat -c '%n %s' sparse.bin new25.bin empty.bin
cmp "$SRC" sparse.bin`},
	}
	localDir := t.TempDir()
	local := m.runSteps(t, localDir, stepLimit, env, steps)
	before := m.Counts()
	stop := m.watchdog(t, 5*stepLimit, "sparse copies and truncations")
	mounted := m.runSteps(t, m.Dir, stepLimit, env, steps)
	stop()
	compareSteps(t, "sparse and truncate", local, mounted)
	want := map[string]int64{"sparse.bin": 25 << 20, "new25.bin": 25 << 20, "empty.bin": 1024}
	check := func(when string) {
		for name, size := range want {
			got, wantSum := shaFile(t, m.Path(name)), shaFile(t, filepath.Join(localDir, name))
			if got != wantSum {
				t.Errorf("%s %s: the mount's bytes differ from the local directory's", when, name)
			}
			if st := statT(t, m.Path(name)); st.Size != size {
				t.Errorf("%s %s: size %d, want %d", when, name, st.Size, size)
			}
			if !m.local() {
				if b := m.object(t, name); int64(len(b)) != size || sha(b) != wantSum {
					t.Errorf("%s object %s: %d bytes (same as local: %v), want %d", when, name, len(b), sha(b) == wantSum, size)
				}
			}
		}
	}
	check("before the remount:")
	m.Remount(t)
	check("after the remount:")
	t.Logf("sparse and truncate: S3 %s; %s", describeCounts(m.Counts().Sub(before)), m.figures(t))
}

// testStagedDDNotrunc: dd conv=notrunc writes 4 KiB into the middle (at
// 10 MiB) of a 20 MiB file written through the mount: the bytes are those
// of the same dd on a local directory, and the rewrite sends S3 less than
// the file (its unchanged ranges are copied on the server).
func testStagedDDNotrunc(t *testing.T, srv *s3test.Server) {
	requireTools(t, "dd", "cp")
	m := newStagedMount(t, srv)
	tmp := t.TempDir()
	src, patch := filepath.Join(tmp, "src20"), filepath.Join(tmp, "patch4k")
	writeFile(t, src, randomBytes(20, 20<<20))
	writeFile(t, patch, randomBytes(4, 4<<10))
	env := []string{"SRC=" + src, "PATCH=" + patch}
	write := []toolStep{{name: "cp 20 MiB", script: `cp "$SRC" f20.bin`}}
	rewrite := []toolStep{
		{name: "dd conv=notrunc", script: `dd if="$PATCH" of=f20.bin bs=4096 seek=2560 conv=notrunc status=none`},
		{name: "check", same: true, script: `stat -c '%n %s' f20.bin; sha256sum f20.bin`},
	}
	localDir := t.TempDir()
	local := m.runSteps(t, localDir, stepLimit, env, append(write, rewrite...))
	stop := m.watchdog(t, 4*stepLimit, "dd conv=notrunc")
	mounted := m.runSteps(t, m.Dir, stepLimit, env, write)
	m.settle(t)
	before := m.Counts()
	mounted = append(mounted, m.runSteps(t, m.Dir, stepLimit, env, rewrite)...)
	m.settle(t)
	stop()
	compareSteps(t, "dd conv=notrunc", local, mounted)
	if m.local() {
		return
	}
	rewriteCost := m.Counts().Sub(before)
	t.Logf("the 4 KiB rewrite at 10 MiB of a 20 MiB file: S3 %s; %s", describeCounts(rewriteCost), m.figures(t))
	if got, want := m.object(t, "f20.bin"), shaFile(t, filepath.Join(localDir, "f20.bin")); sha(got) != want {
		t.Errorf("object f20.bin (%d bytes) differs from the local file", len(got))
	}
	if up := rewriteCost.Total().BytesUp; up >= 20<<20 {
		t.Errorf("the 4 KiB rewrite sent %s to S3; want less than the 20 MiB file: its unchanged ranges copied with UploadPartCopy", mib(up))
	}
}

// testStagedAppend: echo line >> f and a 1 MiB append to a 1 GiB object;
// size and tail bytes as on a local directory (and in S3), and each append
// sends S3 less than 16 MiB: the object is copied on the server, not
// uploaded again.
func testStagedAppend(t *testing.T, srv *s3test.Server) {
	requireTools(t, "cat", "stat")
	m := newStagedMount(t, srv)
	const size = 1 << 30
	tailSeed := randomBytes(1030, 8<<20) // the object's last 8 MiB
	tmp := t.TempDir()
	add := filepath.Join(tmp, "append1M")
	writeFile(t, add, randomBytes(1031, 1<<20))
	env := []string{"ADD=" + add}

	localDir := t.TempDir()
	makeSparseTail(t, filepath.Join(localDir, "big.bin"), size, tailSeed)
	if m.local() {
		makeSparseTail(t, m.Path("big.bin"), size, tailSeed)
	} else {
		start := time.Now()
		putLargeObject(t, m.Client, "big.bin", size, tailSeed)
		t.Logf("a 1 GiB object made on the server in %v", time.Since(start).Round(time.Millisecond))
	}

	steps := []toolStep{
		{name: "echo line >>", script: `echo line >> big.bin`},
		{name: "1 MiB >>", script: `cat "$ADD" >> big.bin`},
		{name: "size", same: true, script: `stat -c '%n %s' big.bin`},
	}
	local := m.runSteps(t, localDir, stepLimit, env, steps)
	stop := m.watchdog(t, 4*stepLimit, "appends to a 1 GiB object")
	var mounted []stepResult
	for _, s := range steps {
		m.settle(t)
		before := m.Counts()
		mounted = append(mounted, m.runSteps(t, m.Dir, stepLimit, env, []toolStep{s})...)
		m.settle(t)
		cost := m.Counts().Sub(before)
		if s.same {
			continue
		}
		t.Logf("%s on a 1 GiB object: S3 %s", s.name, describeCounts(cost))
		if up := cost.Total().BytesUp; up >= 16<<20 {
			t.Errorf("%s on a 1 GiB object sent %s to S3; want less than 16 MiB (the object copied on the server with UploadPartCopy, not uploaded again)", s.name, mib(up))
		}
	}
	stop()
	compareSteps(t, "appends to 1 GiB", local, mounted)

	wantSize := int64(size + len("line\n") + 1<<20)
	const tailLen = 17 << 20
	want := readTail(t, filepath.Join(localDir, "big.bin"), tailLen)
	if st := statT(t, m.Path("big.bin")); st.Size != wantSize {
		t.Errorf("big.bin on the mount: size %d, want %d", st.Size, wantSize)
	}
	if got := readTail(t, m.Path("big.bin"), tailLen); !bytes.Equal(got, want) {
		t.Errorf("the last 17 MiB of big.bin read through the mount differ from the local file's")
	}
	if !m.local() {
		got := objectRange(t, m.Client, "big.bin", wantSize-tailLen, tailLen)
		if !bytes.Equal(got, want) {
			t.Errorf("the last 17 MiB of object big.bin (%d bytes read) differ from the local file's", len(got))
		}
		if info, err := headObject(m.Client, "big.bin"); err != nil || info.Size != wantSize {
			t.Errorf("HeadObject big.bin: %+v, %v; want size %d", info, err, wantSize)
		}
	}
	t.Logf("appends to 1 GiB: %s", m.figures(t))
}

// makeSparseTail makes a local file of size bytes, a hole but for tail at
// its end.
func makeSparseTail(t *testing.T, path string, size int64, tail []byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(tail, size-int64(len(tail))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// putLargeObject makes key an object of size bytes, zeros but for tail at
// its end, on the server: 8 MiB parts (bucketfs's own first part size)
// copied from two 8 MiB objects.
func putLargeObject(t *testing.T, c *s3client.Client, key string, size int64, tail []byte) {
	t.Helper()
	const piece = 8 << 20
	if size%piece != 0 || len(tail) != piece {
		t.Fatalf("putLargeObject: size %d must be a multiple of 8 MiB, and tail 8 MiB (not %d)", size, len(tail))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	zeros, end := key+".zeros", key+".tail"
	zerosETag, err := c.Put(ctx, zeros, bytes.NewReader(make([]byte, piece)), piece, s3client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	endETag, err := c.Put(ctx, end, bytes.NewReader(tail), piece, s3client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateMultipartUpload(ctx, key, s3client.PutOptions{CopiedParts: true})
	if err != nil {
		t.Fatal(err)
	}
	var parts []s3client.CompletedPart
	for n := int32(1); int64(n)*piece <= size; n++ {
		src, etag := zeros, zerosETag
		if int64(n)*piece == size {
			src, etag = end, endETag
		}
		p, err := c.UploadPartCopy(ctx, src, etag, key, id, n, 0, piece-1)
		if err != nil {
			_ = c.AbortMultipartUpload(ctx, key, id)
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	if _, err := c.CompleteMultipartUpload(ctx, key, id, parts, s3client.PutOptions{CopiedParts: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMany(ctx, []string{zeros, end}); err != nil {
		t.Fatal(err)
	}
}

// readTail reads the last n bytes of a file.
func readTail(t *testing.T, path string, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, min(n, st.Size()))
	if _, err := f.ReadAt(b, st.Size()-int64(len(b))); err != nil {
		t.Fatalf("reading the end of %s: %v", path, err)
	}
	return b
}

// objectRange reads n bytes of key from off directly from S3.
func objectRange(t *testing.T, c s3client.API, key string, off, n int64) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, err := c.GetRange(ctx, key, off, n, "")
	if err != nil {
		t.Fatalf("GetObject %s bytes %d+%d: %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("GetObject %s bytes %d+%d: %v", key, off, n, err)
	}
	return b
}

// backupSource makes the tree borg and restic back up: the shared test
// tree (files of 0 to 1 MiB, modes, mtimes, symlinks, an empty directory)
// and a few larger files, about 12 MiB in all.
func backupSource(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "src")
	makeTree(t, root, false)
	for i := 0; i < 3; i++ {
		writeFile(t, filepath.Join(root, "large", fmt.Sprintf("l%d.bin", i)), randomBytes(uint64(700+i), (i+1)<<20*2))
	}
	for i := 0; i < 40; i++ {
		writeFile(t, filepath.Join(root, "many", fmt.Sprintf("m%02d.txt", i)), []byte(strings.Repeat(fmt.Sprintf("line of file %d\n", i), i+1)))
	}
	return root
}

// testStagedBorg: a borg repository on the mount: init --encryption=none,
// two creates, check --verify-data, list and extract; the extracted tree
// is the source's, and list prints what it prints for a local repository.
func testStagedBorg(t *testing.T, srv *s3test.Server) {
	requireTools(t, "borg")
	m := newStagedMount(t, srv)
	src := backupSource(t)
	run := func(dir string) ([]stepResult, string) {
		base, extract := t.TempDir(), t.TempDir()
		env := []string{
			"HOME=" + base, "BORG_BASE_DIR=" + base, "BORG_REPO=" + filepath.Join(dir, "borg"),
			"BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes", "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes",
			"BORG_PASSPHRASE=", "SRCPARENT=" + filepath.Dir(src), "EXTRACT=" + extract,
		}
		steps := []toolStep{
			{name: "borg init", script: `borg init --encryption=none`},
			{name: "borg create", script: `cd "$SRCPARENT" && borg create --compression lz4 ::one src`},
			{name: "borg create again", script: `cd "$SRCPARENT" && borg create --compression lz4 ::two src`},
			{name: "borg check", script: `borg check --verify-data`, same: true},
			{name: "borg list", script: `borg list --format '{mode} {size} {path}{NL}' ::two`, same: true},
			{name: "borg extract", script: `cd "$EXTRACT" && borg extract ::two`},
		}
		for i := range steps {
			// borg keeps the old repository config by a hard link to
			// erase it; bucketfs has none (ENOTSUP, SEMANTICS.md), and
			// borg says so and goes on.
			steps[i].ignore = "hardlinks not supported"
		}
		return m.runSteps(t, dir, stepLimit, env, steps), filepath.Join(extract, "src")
	}
	local, localOut := run(t.TempDir())
	before := m.Counts()
	stop := m.watchdog(t, 7*stepLimit, "borg")
	mounted, mountedOut := run(m.Dir)
	stop()
	compareSteps(t, "borg", local, mounted)
	t.Logf("borg: S3 %s; %s", describeCounts(m.Counts().Sub(before)), m.figures(t))
	want := modelState(t, src)
	compareTrees(t, want, modelState(t, localOut))
	compareTrees(t, want, modelState(t, mountedOut))
}

// testStagedRestic: a restic repository on the mount: init, backup, check
// --read-data, restore; the restored tree is the source's, and ls lists
// what it lists for a local repository.
func testStagedRestic(t *testing.T, srv *s3test.Server) {
	requireTools(t, "restic")
	m := newStagedMount(t, srv)
	src := backupSource(t)
	run := func(dir string) ([]stepResult, string) {
		home, restore := t.TempDir(), t.TempDir()
		env := []string{
			"HOME=" + home, "RESTIC_CACHE_DIR=" + filepath.Join(home, "cache"), "RESTIC_PASSWORD=bucketfs-e2e",
			"RESTIC_REPOSITORY=" + filepath.Join(dir, "restic"), "SRCPARENT=" + filepath.Dir(src), "RESTORE=" + restore,
		}
		return m.runSteps(t, dir, stepLimit, env, []toolStep{
			{name: "restic init", script: `restic init -q`},
			{name: "restic backup", script: `cd "$SRCPARENT" && restic backup -q src`},
			{name: "restic check", script: `restic check -q --read-data`},
			{name: "restic ls", script: `restic ls -q latest`, same: true},
			{name: "restic restore", script: `restic restore -q latest --target "$RESTORE"`},
		}), filepath.Join(restore, "src")
	}
	local, localOut := run(t.TempDir())
	before := m.Counts()
	stop := m.watchdog(t, 6*stepLimit, "restic")
	mounted, mountedOut := run(m.Dir)
	stop()
	compareSteps(t, "restic", local, mounted)
	t.Logf("restic: S3 %s; %s", describeCounts(m.Counts().Sub(before)), m.figures(t))
	want := modelState(t, src)
	compareTrees(t, want, modelState(t, localOut))
	compareTrees(t, want, modelState(t, mountedOut))
}

// TestStagedFileBasics: what a program does with system calls to a file
// that is no longer written front to back, on a local directory and on
// the mount: open an existing file O_RDWR and pread and pwrite in the
// middle; read through a second descriptor while a first writes (it sees
// the writes); append with O_APPEND; ftruncate up and down; unlink a file
// while it is open (its data stays readable and writable through the
// descriptor, and nothing appears under its name in S3). After each
// close, the file (and the object) holds exactly what was written.
func TestStagedFileBasics(t *testing.T) {
	srv := stagedServer(t)
	var targets []string
	targets = append(targets, "local directory")
	if srv != nil {
		targets = append(targets, "mount")
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			m := newStagedMount(t, nil)
			if target == "mount" {
				m = newStagedMount(t, srv)
			}
			stop := m.watchdog(t, 2*time.Minute, "the system calls of "+t.Name())
			defer stop()
			testStagedFileBasics(t, m)
		})
	}
}

// basicFiles is what the files of TestStagedFileBasics must hold, and the
// system calls that keep it up to date as they change the files. Each
// takes the (sub)test it runs in.
type basicFiles struct {
	m     *stagedMount
	model map[string][]byte
}

// put writes a file whole and closes it: an existing object to change.
func (b *basicFiles) put(t *testing.T, name string, data []byte) {
	t.Helper()
	writeFile(t, b.m.Path(name), data)
	b.model[name] = append([]byte(nil), data...)
}

func (b *basicFiles) patch(name string, off int64, data []byte) {
	f := b.model[name]
	if end := off + int64(len(data)); end > int64(len(f)) {
		f = append(f, make([]byte, end-int64(len(f)))...)
	}
	copy(f[off:], data)
	b.model[name] = f
}

func (b *basicFiles) resize(name string, size int64) {
	f := b.model[name]
	if size <= int64(len(f)) {
		b.model[name] = f[:size]
	} else {
		b.model[name] = append(f, make([]byte, size-int64(len(f)))...)
	}
}

// open opens name; the test's cleanup closes it if the test does not.
func (b *basicFiles) open(t *testing.T, name string, flag int) *os.File {
	t.Helper()
	f, err := os.OpenFile(b.m.Path(name), flag, 0o644)
	if err != nil {
		t.Fatalf("open %s (flags %#x): %v", name, flag, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func (b *basicFiles) pwrite(t *testing.T, f *os.File, name string, off int64, data []byte) {
	t.Helper()
	if n, err := f.WriteAt(data, off); err != nil || n != len(data) {
		t.Fatalf("pwrite %d bytes at %d of %s: wrote %d, %v", len(data), off, name, n, err)
	}
	b.patch(name, off, data)
}

func (b *basicFiles) appendTo(t *testing.T, f *os.File, name string, data []byte) {
	t.Helper()
	if n, err := f.Write(data); err != nil || n != len(data) {
		t.Fatalf("append %d bytes to %s: wrote %d, %v", len(data), name, n, err)
	}
	b.patch(name, int64(len(b.model[name])), data)
}

// expectRange reads n bytes at off through f: the model's bytes there.
func (b *basicFiles) expectRange(t *testing.T, f *os.File, what, name string, off int64, n int) {
	t.Helper()
	got := make([]byte, n)
	k, err := f.ReadAt(got, off)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("%s: pread %d bytes at %d of %s: %v", what, n, off, name, err)
	}
	m := b.model[name]
	want := m[min(off, int64(len(m))):min(off+int64(n), int64(len(m)))]
	if !bytes.Equal(got[:k], want) {
		t.Fatalf("%s: pread %d bytes at %d of %s: got %d bytes %s, want %d bytes %s", what, n, off, name, k, shown(got[:k]), len(want), shown(want))
	}
}

func (b *basicFiles) expectSize(t *testing.T, f *os.File, what, name string) {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		t.Fatalf("%s: fstat %s: %v", what, name, err)
	}
	if st.Size() != int64(len(b.model[name])) {
		t.Fatalf("%s: fstat %s: size %d, want %d", what, name, st.Size(), len(b.model[name]))
	}
}

func closeFile(t *testing.T, f *os.File, name string) {
	t.Helper()
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", name, err)
	}
}

// expectFile checks a closed file by name, and its object in S3.
func (b *basicFiles) expectFile(t *testing.T, what, name string) {
	t.Helper()
	got, err := os.ReadFile(b.m.Path(name))
	if err != nil {
		t.Fatalf("%s: reading %s: %v", what, name, err)
	}
	if !bytes.Equal(got, b.model[name]) {
		t.Fatalf("%s: %s holds %s; want %s", what, name, shown(got), shown(b.model[name]))
	}
	if !b.m.local() {
		if obj := b.m.object(t, name); !bytes.Equal(obj, b.model[name]) {
			t.Fatalf("%s: object %s holds %s; want %s", what, name, shown(obj), shown(b.model[name]))
		}
	}
}

func testStagedFileBasics(t *testing.T, m *stagedMount) {
	b := &basicFiles{m: m, model: map[string][]byte{}}

	t.Run("O_RDWR pread and pwrite in the middle", func(t *testing.T) {
		const name = "rdwr.bin"
		b.put(t, name, randomBytes(101, 12<<20))
		f := b.open(t, name, os.O_RDWR)
		b.expectRange(t, f, "before any write", name, 6<<20, 64<<10)
		b.pwrite(t, f, name, 6<<20-50<<10, randomBytes(102, 100<<10))
		b.expectRange(t, f, "after a pwrite", name, 6<<20-64<<10, 128<<10)
		b.pwrite(t, f, name, 17, []byte("a few bytes at the start"))
		b.expectSize(t, f, "after pwrites inside the file", name)
		closeFile(t, f, name)
		b.expectFile(t, "after close", name)
	})

	t.Run("a second descriptor sees the writes of the first", func(t *testing.T) {
		const name = "shared.bin"
		b.put(t, name, randomBytes(201, 3<<20))
		w := b.open(t, name, os.O_RDWR)
		r := b.open(t, name, os.O_RDONLY)
		b.pwrite(t, w, name, 1<<20, []byte("written through the first descriptor"))
		b.expectRange(t, r, "read through the second", name, 1<<20-10, 100)
		b.pwrite(t, w, name, 3<<20, randomBytes(202, 6<<20))
		b.expectSize(t, r, "fstat through the second after the first wrote past the end", name)
		b.expectRange(t, r, "read past the old end through the second", name, 3<<20-100, 1<<20)
		closeFile(t, r, name)
		closeFile(t, w, name)
		b.expectFile(t, "after both closed", name)
	})

	t.Run("O_APPEND", func(t *testing.T) {
		const name = "log.txt"
		b.put(t, name, []byte("first line\n"))
		f := b.open(t, name, os.O_WRONLY|os.O_APPEND)
		b.appendTo(t, f, name, []byte("second line\n"))
		b.appendTo(t, f, name, []byte("third line\n"))
		b.appendTo(t, f, name, randomBytes(301, 1<<20))
		b.expectSize(t, f, "after the appends", name)
		closeFile(t, f, name)
		b.expectFile(t, "after close", name)
	})

	t.Run("ftruncate up and down", func(t *testing.T) {
		const name = "trunc.bin"
		b.put(t, name, randomBytes(401, 2<<20))
		f := b.open(t, name, os.O_RDWR)
		for _, step := range []struct {
			size  int64
			write int64 // a pwrite of 1 KiB this far before the new end; 0: none
		}{{9 << 20, 10}, {3<<20 + 17, 0}, {0, 0}, {6 << 20, 5 << 20}, {1 << 20, 0}} {
			what := fmt.Sprintf("after ftruncate to %d", step.size)
			if err := f.Truncate(step.size); err != nil {
				t.Fatalf("ftruncate %s to %d: %v", name, step.size, err)
			}
			b.resize(name, step.size)
			b.expectSize(t, f, what, name)
			b.expectRange(t, f, what, name, max(step.size-(64<<10), 0), 128<<10)
			if step.write > 0 {
				b.pwrite(t, f, name, step.size-step.write, randomBytes(uint64(step.size), 1<<10))
			}
		}
		closeFile(t, f, name)
		b.expectFile(t, "after close", name)
		if err := os.Truncate(m.Path(name), 5000); err != nil {
			t.Fatalf("truncate %s to 5000 by name, closed: %v", name, err)
		}
		b.resize(name, 5000)
		b.expectFile(t, "after truncate by name", name)
	})

	t.Run("unlink while open", func(t *testing.T) {
		const name = "victim.bin"
		b.put(t, name, randomBytes(501, 2<<20))
		m.settle(t)
		before := m.Counts()
		f := b.open(t, name, os.O_RDWR)
		if err := os.Remove(m.Path(name)); err != nil {
			t.Fatalf("unlink %s while open: %v", name, err)
		}
		if _, err := os.Stat(m.Path(name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat %s after unlink: %v; want ENOENT", name, err)
		}
		b.expectRange(t, f, "after unlink", name, 1<<20, 4096)
		b.pwrite(t, f, name, 2<<20-10, randomBytes(502, 7<<20))
		b.expectSize(t, f, "after a write once unlinked", name)
		b.expectRange(t, f, "after a write once unlinked", name, 2<<20-100, 1<<20)
		if err := f.Sync(); err != nil {
			t.Errorf("fsync of an unlinked file: %v; want success", err)
		}
		expectNoObject := func(when string) {
			if m.local() {
				return
			}
			if info, err := headObject(m.Client, name); !errors.Is(err, s3client.ErrNotFound) {
				t.Errorf("HeadObject %s %s: %+v, %v; want NotFound", name, when, info, err)
			}
		}
		expectNoObject("while the unlinked file is open")
		closeFile(t, f, name)
		if _, err := os.Stat(m.Path(name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat %s after the close: %v; want ENOENT", name, err)
		}
		if m.local() {
			return
		}
		// The last release comes just after close returned.
		time.Sleep(500 * time.Millisecond)
		expectNoObject("after the last close")
		if up := listUploads(t, m.Client, name); len(up) > 0 {
			t.Errorf("multipart uploads left for %s: %v; want none", name, up)
		}
		cost := m.Counts().Sub(before)
		t.Logf("unlink while open: S3 %s", describeCounts(cost))
		if n := cost.Requests("PutObject") + cost.Requests("CompleteMultipartUpload") + cost.Requests("CopyObject"); n > 0 {
			t.Errorf("the unlinked file was written to S3 (%s); want nothing under any name", describeCounts(cost))
		}
	})
	if !m.local() {
		t.Logf("basics: %s", m.figures(t))
	}
}
