package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestOpsHostileServer: a bucketfs process whose S3 endpoint is a proxy in
// front of MinIO that misbehaves on the wire (issue 13, point 7): a HEAD
// that gives another size than the object's, a connection closed before
// its Content-Length, a server that ignores ranges, and answers that come
// byte by byte, on a GET and on a listing. Each read or ls ends with EIO
// within the outage bound (README, "S3 outages"), logged, with no byte of
// the wrong place handed out; a HEAD that says less reads as that size.
// The daemon stays up, its memory within its budget, and once the proxy
// behaves the same mount reads and lists everything.
func TestOpsHostileServer(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	const size = 3<<20 + 4321
	objects := map[string][]byte{"slow/x": []byte("x"), "slowdir/y": []byte("y")}
	names := []string{"head-more", "head-less", "cut", "no-range", "trickle"}
	for i, name := range names {
		objects["dir/"+name] = randomBytes(uint64(100+i), size)
	}
	s3test.PutObjects(t, c, objects)
	proxy := s3test.StartProxy(t, srv.Endpoint)
	mnt := newMountpoint(t)
	logFile := filepath.Join(t.TempDir(), "bucketfs.log")
	d := startOpsDaemonVia(t, proxy.URL, srv, bucket, mnt, nil,
		"--request-timeout", outageTimeout.String(), "-o", fmt.Sprintf("max_retries=%d", outageRetries),
		"--metadata-ttl", "0s", "--negative-ttl", "0s", "--log-file", logFile)

	key := func(k string) func(*http.Request) bool {
		return func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/"+k) }
	}
	rules := []s3test.Rule{
		{Op: "HeadObject", Match: key("dir/head-more"), Fault: s3test.Fault{Length: size + 1<<20}},
		{Op: "HeadObject", Match: key("dir/head-less"), Fault: s3test.Fault{Length: size - 1<<20}},
		{Op: "GetObject", Match: key("dir/cut"), Fault: s3test.Fault{CutAfter: 100 << 10}},
		// A server that does not honour ranges sends the whole object.
		{Op: "GetObject", Match: key("dir/no-range"), Fault: s3test.Fault{Body: string(objects["dir/no-range"])}},
		{Op: "GetObject", Match: key("dir/trickle"), Fault: s3test.Fault{Trickle: 5 * time.Millisecond}},
		// The listing of a lookup (slow), and that of a readdir, after a
		// lookup answered quickly (slowdir).
		{Op: "ListObjectsV2", Match: func(r *http.Request) bool { return r.URL.Query().Get("prefix") == "slow/" },
			Fault: s3test.Fault{Trickle: 5 * time.Millisecond}},
		{Op: "ListObjectsV2", Match: func(r *http.Request) bool {
			q := r.URL.Query()
			return q.Get("prefix") == "slowdir/" && q.Get("max-keys") != "1"
		}, Fault: s3test.Fault{Trickle: 5 * time.Millisecond}},
	}
	for _, r := range rules {
		proxy.Faults.Add(r)
	}

	bound := outageBound()
	path := func(name string) string { return filepath.Join(mnt, "dir", name) }
	for _, tc := range []struct {
		name string
		args []string
		// want is the output, or "" for EIO.
		want []byte
		logs string
	}{
		{"HEAD says 1 MiB more than the object holds", []string{"cat", path("head-more")}, nil, "block read failed"},
		{"HEAD says 1 MiB less than the object holds", []string{"cat", path("head-less")}, objects["dir/head-less"][:size-1<<20], ""},
		{"the connection closes before Content-Length", []string{"cat", path("cut")}, nil, "unexpected EOF"},
		{"the server ignores the range (a read at 1 MiB)",
			[]string{"dd", "if=" + path("no-range"), "bs=4096", "skip=256", "count=1", "status=none"}, nil, "ignored the range"},
		{"the GET body comes byte by byte", []string{"cat", path("trickle")}, nil, "arrives too slowly"},
		{"a lookup's listing comes byte by byte", []string{"ls", filepath.Join(mnt, "slow")}, nil, "msg=\"lookup failed\""},
		{"a directory's listing comes byte by byte", []string{"ls", filepath.Join(mnt, "slowdir")}, nil, "msg=\"listing failed\""},
	} {
		start := time.Now()
		out, err := runWithin(t, bound+20*time.Second, tc.args...)
		took := time.Since(start)
		t.Logf("%s: %s ended after %s: %v %.200s", tc.name, tc.args[0], took.Round(10*time.Millisecond), err, strings.TrimSpace(out))
		switch {
		case tc.want != nil:
			if err != nil || !bytes.Equal([]byte(out), tc.want) {
				t.Errorf("%s: %v, %d bytes; want the object's first %d", tc.name, err, len(out), len(tc.want))
			}
		case err == nil:
			t.Errorf("%s: %s succeeded (%d bytes)", tc.name, tc.args[0], len(out))
		case !strings.Contains(out, "Input/output error"):
			t.Errorf("%s: %v %q, want EIO", tc.name, err, out)
		}
		if took > bound {
			t.Errorf("%s: took %s, bound %s", tc.name, took, bound)
		}
		if tc.logs != "" && !strings.Contains(readFileOrEmpty(logFile), tc.logs) {
			t.Errorf("%s: the log lacks %q", tc.name, tc.logs)
		}
	}
	if d.exited() {
		t.Fatalf("the daemon exited: %s", d.out.String())
	}
	// One reader at a time: its read-ahead at most, past the fixed overhead.
	if peak, budget := peakRSS(t, d.cmd.Process.Pid), int64(memoryOverhead+bfs.DefaultReadAhead); peak > budget {
		t.Errorf("peak RSS %d MiB, budget %d MiB", peak>>20, budget>>20)
	} else {
		t.Logf("peak RSS %d MiB", peak>>20)
	}

	// The proxy behaves again: the same mount reads and lists everything.
	proxy.Faults.Clear()
	for _, name := range names {
		got, err := os.ReadFile(path(name))
		if err != nil || !bytes.Equal(got, objects["dir/"+name]) {
			t.Errorf("after the proxy behaves, dir/%s: %d bytes, %v", name, len(got), err)
		}
	}
	for dir, want := range map[string]string{"slow": "x", "slowdir": "y"} {
		if out, err := runWithin(t, 20*time.Second, "ls", filepath.Join(mnt, dir)); err != nil || strings.TrimSpace(out) != want {
			t.Errorf("ls %s after the proxy behaves: %v %q", dir, err, out)
		}
	}
	if t.Failed() {
		t.Logf("log (tail):\n%s", tail(readFileOrEmpty(logFile), 6000))
	}
}
