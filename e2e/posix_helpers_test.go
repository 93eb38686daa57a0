package e2e

// Helpers of the POSIX tests (posix_*_test.go): the test binary re-executed
// as another uid to make one system call, and s3fs's metadata conventions.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// posixChildEnv makes the test binary started by posixRunner an agent: it
// reads posixCalls (JSON, one a line) from stdin, makes each, and answers a
// posixResult line for each, until stdin ends. One agent serves every call
// of one user: starting a process per call (a race-instrumented test binary
// at that) cost minutes under -race.
const posixChildEnv = "BUCKETFS_E2E_POSIX_AGENT"

// The child is dispatched from init, before TestMain, so that the POSIX
// tests need no change to TestMain.
func init() {
	if os.Getenv(posixChildEnv) != "" {
		os.Exit(posixAgent(os.Stdin, os.Stdout))
	}
}

// posixUser is who makes a call: uid, primary gid, supplementary groups.
// The numeric ids have no passwd entry; the kernel does not need one.
type posixUser struct {
	Name   string
	UID    uint32
	GID    uint32
	Groups []uint32
}

// posixShared is the supplementary group of u1 and u2 (not u3).
const posixShared = 64100

var (
	pxRoot = posixUser{Name: "root"}
	pxU1   = posixUser{Name: "u1", UID: 64001, GID: 64001, Groups: []uint32{posixShared}}
	pxU2   = posixUser{Name: "u2", UID: 64002, GID: 64002, Groups: []uint32{posixShared}}
	pxU3   = posixUser{Name: "u3", UID: 64003, GID: 64003}
)

// posixCall is one system call for the child to make. Paths are absolute.
type posixCall struct {
	Op    string      `json:"op"`
	Path  string      `json:"path,omitempty"`
	Path2 string      `json:"path2,omitempty"`
	Flags int         `json:"flags"`
	Mode  uint32      `json:"mode"`
	Dev   uint64      `json:"dev"`
	UID   int         `json:"uid"` // chown: -1 leaves it
	GID   int         `json:"gid"`
	Size  int64       `json:"size"` // truncate length; xattr buffer size
	Times [2][2]int64 `json:"times"`
	Name  string      `json:"name,omitempty"` // xattr name
	Value []byte      `json:"value,omitempty"`
	Data  []byte      `json:"data,omitempty"` // written after open
	Umask int         `json:"umask"`
}

// posixResult is what the child answers: the errno of the call (0 for
// success) and what it returned.
type posixResult struct {
	Errno syscall.Errno `json:"errno"`
	N     int           `json:"n"`              // getxattr/listxattr length
	Data  []byte        `json:"data,omitempty"` // read bytes, xattr value or list
}

func posixAgent(in io.Reader, out io.Writer) int {
	dec, enc := json.NewDecoder(in), json.NewEncoder(out)
	for {
		var c posixCall
		if err := dec.Decode(&c); err == io.EOF {
			return 0
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "bad call:", err)
			return 2
		}
		syscall.Umask(c.Umask)
		if err := enc.Encode(doPosixCall(c)); err != nil {
			return 2
		}
	}
}

func doPosixCall(c posixCall) (res posixResult) {
	fail := func(err error) posixResult { return posixResult{Errno: errnoOf(err)} }
	ts := []unix.Timespec{{Sec: c.Times[0][0], Nsec: c.Times[0][1]}, {Sec: c.Times[1][0], Nsec: c.Times[1][1]}}
	switch c.Op {
	case "open", "write":
		flags := c.Flags
		if c.Op == "write" {
			flags |= unix.O_WRONLY
		}
		fd, err := unix.Open(c.Path, flags|unix.O_CLOEXEC, c.Mode)
		if err != nil {
			return fail(err)
		}
		if len(c.Data) > 0 {
			if _, err := unix.Write(fd, c.Data); err != nil {
				unix.Close(fd)
				return fail(err)
			}
		}
		return fail(unix.Close(fd))
	case "read":
		f, err := os.Open(c.Path)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			return fail(err)
		}
		return posixResult{Data: b, N: len(b)}
	case "access":
		return fail(unix.Access(c.Path, c.Mode))
	case "stat":
		var st unix.Stat_t
		return fail(unix.Lstat(c.Path, &st))
	case "mkdir":
		return fail(unix.Mkdir(c.Path, c.Mode))
	case "rmdir":
		return fail(unix.Rmdir(c.Path))
	case "unlink":
		return fail(unix.Unlink(c.Path))
	case "rename":
		return fail(unix.Rename(c.Path, c.Path2))
	case "truncate":
		return fail(unix.Truncate(c.Path, c.Size))
	case "ftruncate", "ftruncate-after-fchmod0":
		fd, err := unix.Open(c.Path, c.Flags|unix.O_CLOEXEC, 0) // O_RDONLY is 0: Flags is taken as is
		if err != nil {
			return fail(err)
		}
		defer unix.Close(fd)
		if c.Op == "ftruncate-after-fchmod0" {
			if err := unix.Fchmod(fd, 0); err != nil {
				return fail(err)
			}
		}
		return fail(unix.Ftruncate(fd, c.Size))
	case "chmod":
		return fail(unix.Fchmodat(unix.AT_FDCWD, c.Path, c.Mode, 0))
	case "chown":
		return fail(unix.Fchownat(unix.AT_FDCWD, c.Path, c.UID, c.GID, c.Flags))
	case "utimensat":
		return fail(unix.UtimesNanoAt(unix.AT_FDCWD, c.Path, ts, c.Flags))
	case "symlink":
		return fail(unix.Symlink(c.Path2, c.Path)) // Path is the link, Path2 its target
	case "mknod":
		return fail(unix.Mknod(c.Path, c.Mode, int(c.Dev)))
	case "mkfifo":
		return fail(unix.Mkfifo(c.Path, c.Mode))
	case "link":
		return fail(unix.Link(c.Path, c.Path2))
	case "setxattr":
		return fail(unix.Setxattr(c.Path, c.Name, c.Value, c.Flags))
	case "lsetxattr":
		return fail(unix.Lsetxattr(c.Path, c.Name, c.Value, c.Flags))
	case "getxattr":
		buf := make([]byte, c.Size)
		n, err := unix.Getxattr(c.Path, c.Name, buf)
		if err != nil {
			return fail(err)
		}
		return posixResult{N: n, Data: buf[:min(n, len(buf))]}
	case "listxattr":
		buf := make([]byte, c.Size)
		n, err := unix.Listxattr(c.Path, buf)
		if err != nil {
			return fail(err)
		}
		return posixResult{N: n, Data: buf[:min(n, len(buf))]}
	case "removexattr":
		return fail(unix.Removexattr(c.Path, c.Name))
	}
	return posixResult{Errno: syscall.ENOSYS}
}

// posixRunner makes calls as other users through agents: copies of the test
// binary (in a directory every uid may enter; the build directory is
// root's alone), one per user, started at its first call.
type posixRunner struct {
	t      testing.TB
	bin    string
	agents map[uint32]*posixAgentProc // by uid
}

// posixAgentProc is one running agent and its pipes.
type posixAgentProc struct {
	cmd     *exec.Cmd
	stdin   io.Closer // closing it ends the agent
	enc     *json.Encoder
	answers chan posixAnswer // buffered: the reader never blocks after a kill
	stderr  *lockedWriter
}

// posixAnswer is one line an agent wrote, or why there is none.
type posixAnswer struct {
	res posixResult
	err error
}

func newPosixRunner(t testing.TB) *posixRunner {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "bucketfs-posix-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "e2e.test")
	src, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &posixRunner{t: t, bin: bin, agents: map[uint32]*posixAgentProc{}}
	t.Cleanup(r.stop)
	return r
}

// agent returns u's agent, starting it if need be.
func (r *posixRunner) agent(u posixUser) (*posixAgentProc, error) {
	if a := r.agents[u.UID]; a != nil {
		return a, nil
	}
	cmd := exec.Command(r.bin)
	cmd.Dir = "/"
	// A race-instrumented agent would otherwise sleep 1 s at exit.
	cmd.Env = []string{"PATH=/usr/bin:/bin", posixChildEnv + "=1", "GORACE=atexit_sleep_ms=0"}
	if u.UID != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups}}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	a := &posixAgentProc{cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), answers: make(chan posixAnswer, 1), stderr: &lockedWriter{w: &bytes.Buffer{}}}
	cmd.Stderr = a.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		dec := json.NewDecoder(stdout)
		for {
			var res posixResult
			err := dec.Decode(&res)
			a.answers <- posixAnswer{res, err}
			if err != nil {
				return
			}
		}
	}()
	r.agents[u.UID] = a
	return a, nil
}

// stop ends every agent: stdin closed, then killed if it has not exited
// within 5 s.
func (r *posixRunner) stop() {
	for uid, a := range r.agents {
		a.stdin.Close()
		done := make(chan struct{})
		go func() { a.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			a.cmd.Process.Kill()
			<-done
		}
		delete(r.agents, uid)
	}
}

// call makes c as u through u's agent (at most 20 s) and returns its answer.
func (r *posixRunner) call(u posixUser, c posixCall) (posixResult, error) {
	a, err := r.agent(u)
	if err != nil {
		return posixResult{}, fmt.Errorf("agent for %s: %v", u.Name, err)
	}
	if err := a.enc.Encode(c); err != nil {
		return posixResult{}, fmt.Errorf("call %s as %s: %v: %s", c.Op, u.Name, err, strings.TrimSpace(a.stderr.String()))
	}
	select {
	case ans := <-a.answers:
		if ans.err != nil {
			delete(r.agents, u.UID)
			a.cmd.Process.Kill()
			a.cmd.Wait()
			return posixResult{}, fmt.Errorf("agent for %s on %s: %v: %s", u.Name, c.Op, ans.err, strings.TrimSpace(a.stderr.String()))
		}
		return ans.res, nil
	case <-time.After(20 * time.Second):
		delete(r.agents, u.UID)
		a.cmd.Process.Kill()
		go a.cmd.Wait()
		return posixResult{}, fmt.Errorf("%s as %s: no answer within 20 s", c.Op, u.Name)
	}
}

// shell runs a shell command line as u (at most 20 s) and returns its exit
// status; args are $1, $2, ...
func (r *posixRunner) shell(u posixUser, script string, args ...string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script, "sh"}, args...)...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if u.UID != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups}}
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	return -1, err.Error()
}

// openMountToAll lets every uid reach the mountpoint: the test's temporary
// directories above it are root's alone (0700), and the mount's root is
// made 0755.
func openMountToAll(t testing.TB, m *mount) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Dir(m.Dir); strings.HasPrefix(d, tmp+string(filepath.Separator)); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(m.Dir, 0o755); err != nil {
		t.Fatalf("chmod of the mount's root: %v", err)
	}
}

// s3fsURLEncode percent-encodes s as s3fs's urlEncode does: letters,
// digits and / . - * _ stay, every other byte is %XX (upper case).
func s3fsURLEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("/.-*_", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// s3fsXattrValue builds x-amz-meta-xattr as s3fs does: a JSON object of
// names to base64 values, names sorted (s3fs keeps them in a std::map),
// URL-encoded.
func s3fsXattrValue(attrs map[string][]byte) string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%q", n, base64.StdEncoding.EncodeToString(attrs[n]))
	}
	b.WriteByte('}')
	return s3fsURLEncode(b.String())
}

// decodeS3fsXattr reads x-amz-meta-xattr back: percent-decoding, then the
// JSON object of base64 values.
func decodeS3fsXattr(v string) (map[string][]byte, error) {
	var raw bytes.Buffer
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			var c byte
			if _, err := fmt.Sscanf(v[i+1:i+3], "%02X", &c); err != nil {
				return nil, fmt.Errorf("bad escape at %d in %q", i, v)
			}
			raw.WriteByte(c)
			i += 2
			continue
		}
		raw.WriteByte(v[i])
	}
	var obj map[string]string
	if err := json.Unmarshal(raw.Bytes(), &obj); err != nil {
		return nil, fmt.Errorf("x-amz-meta-xattr %q: %v", raw.String(), err)
	}
	out := make(map[string][]byte, len(obj))
	for k, b64 := range obj {
		val, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("x-amz-meta-xattr %s: %v", k, err)
		}
		out[k] = val
	}
	return out, nil
}

// listXattrs returns the names of path's extended attributes (not
// following a symlink), sorted.
func listXattrs(path string) ([]string, error) {
	n, err := unix.Llistxattr(path, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n+256)
	n, err = unix.Llistxattr(path, buf)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	return names, nil
}

// getXattr returns one extended attribute of path (not following a symlink).
func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(path, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func tsString(ts unix.Timespec) string { return fmt.Sprintf("%d.%09d", ts.Sec, ts.Nsec) }

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "reg"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "lnk"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "sock"
	case unix.S_IFCHR:
		return "chr"
	case unix.S_IFBLK:
		return "blk"
	}
	return fmt.Sprintf("type%o", mode&unix.S_IFMT)
}

// pxAsserts counts assertions of a story test and reports each failing one.
type pxAsserts struct {
	t      testing.TB
	name   string
	ok, of int
}

func (a *pxAsserts) check(what string, ok bool, want, got any) {
	a.t.Helper()
	a.of++
	if ok {
		a.ok++
		return
	}
	a.t.Errorf("%s: %s: want %v, got %v", a.name, what, want, got)
}

// errno checks a call's answer (a failed child counts as a failed assertion).
func (a *pxAsserts) errno(what string, res posixResult, err error, want ...syscall.Errno) {
	a.t.Helper()
	if len(want) == 0 {
		want = []syscall.Errno{0}
	}
	if err != nil {
		a.check(what, false, errnoNames(want), err)
		return
	}
	ok := false
	for _, w := range want {
		ok = ok || res.Errno == w
	}
	a.check(what, ok, errnoNames(want), errnoName(res.Errno))
}

func (a *pxAsserts) report() {
	a.t.Helper()
	a.t.Logf("%s: %d/%d ok", a.name, a.ok, a.of)
}

// headMeta is a HeadObject of key, bounded in time.
func headMeta(c s3client.API, key string) (*s3client.ObjectInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Head(ctx, key)
}

// waitMeta polls key's metadata until cond holds or within passes, and
// returns the last metadata seen.
func waitMeta(c s3client.API, key string, within time.Duration, cond func(map[string]string) bool) (map[string]string, error) {
	deadline := time.Now().Add(within)
	for {
		info, err := headMeta(c, key)
		if err == nil && cond(info.Metadata) {
			return info.Metadata, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, err
			}
			return info.Metadata, fmt.Errorf("metadata of %s did not settle within %v", key, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// parseMetaTime reads an x-amz-meta time: "sec" or "sec.nanosec" (the
// fraction as timespec's tv_nsec, s3fs's and bucketfs's convention).
func parseMetaTime(v string) (unix.Timespec, bool) {
	secText, frac, _ := strings.Cut(v, ".")
	var sec, nsec int64
	if _, err := fmt.Sscan(secText, &sec); err != nil {
		return unix.Timespec{}, false
	}
	if frac != "" {
		if len(frac) > 9 {
			return unix.Timespec{}, false
		}
		frac += strings.Repeat("0", 9-len(frac))
		if _, err := fmt.Sscan(strings.TrimLeft(frac, "0")+"0", &nsec); err != nil {
			return unix.Timespec{}, false
		}
		nsec /= 10
	}
	return unix.Timespec{Sec: sec, Nsec: nsec}, true
}

// fetchObject reads a whole object, bounded in time; unlike s3test.GetObject
// a missing object is an error to report, not the end of the test.
func fetchObject(c s3client.API, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body, err := c.GetRange(ctx, key, 0, -1, "")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

// posixMount starts MinIO and an --allow-other mount whose root every uid
// may write, and a runner for calls as other users: the setup of the
// POSIX tests.
func posixMount(t *testing.T) (*mount, s3client.API, *posixRunner) {
	t.Helper()
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	m := mountBucket(t, srv, bucket, func(c *bfs.Config) { c.AllowOther = true })
	openMountToAll(t, m)
	return m, c, newPosixRunner(t)
}
