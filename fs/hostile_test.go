package fs

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// Tests of reads and listings against a server whose answers disagree with
// themselves or arrive byte by byte (issue 13, point 7; README, "S3
// outages"), through a real client over MinIO whose answers the test
// shapes in the client's transport. Each case ends in EIO within its bound
// and a log line, never in wrong bytes, a read that does not end, or read
// memory that is not given back.

// hostileTimeout is the request timeout of these tests: the bound of a
// listing, and of each try of a block whose body trickles.
const hostileTimeout = 500 * time.Millisecond

// hostileFS is a mount's state (no kernel) over MinIO with the answers of
// its transport shaped by the returned rules, and the bytes of "obj".
func hostileFS(t *testing.T) (*bucketFS, *s3test.FaultTransport, *lockedBuffer, []byte) {
	t.Helper()
	srv := s3test.StartMinIO(t)
	bucket, direct := srv.Bucket(t)
	data := randomData(13, 3<<20+12345)
	s3test.PutObjects(t, direct, map[string][]byte{"obj": data, "dir/a": []byte("a"), "dir/b": []byte("b")})
	ft := s3test.NewFaultTransport(nil)
	cfg := srv.Config(bucket)
	cfg.RequestTimeout, cfg.MaxAttempts, cfg.RetryBaseDelay = hostileTimeout, 2, 10*time.Millisecond
	cfg.WrapTransport = ft.Wrap
	client := srv.Client(t, cfg)
	log := &lockedBuffer{b: &bytes.Buffer{}}
	b := newTestFS(t, client, func(c *Config) {
		c.Log = logrus.New()
		c.Log.SetOutput(log)
		c.MetadataTTL = time.Millisecond // every open asks HEAD
	})
	return b, ft, log, data
}

// readsGiveBack waits until every block of the read budget is back.
func readsGiveBack(t *testing.T, b *bucketFS) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now, _ := b.reads.reserved()
		if now == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of read blocks still held 10s after the handle was released", now)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadSizeAndBodyDisagree: the size a HEAD gave and the bytes a GET
// brings disagree, in each way a server can get it wrong.
func TestReadSizeAndBodyDisagree(t *testing.T) {
	b, ft, log, data := hostileFS(t)
	size := int64(len(data))
	for _, tc := range []struct {
		name string
		rule s3test.Rule
		off  int64 // where the reader starts
		// want is what the reader gets: the object's first want bytes, or
		// EIO when want < 0.
		want int64
		logs string
	}{
		{"HEAD says more than the object holds",
			s3test.Rule{Op: "HeadObject", Fault: s3test.Fault{Length: size + 1<<20}}, 0, -1, "block read failed"},
		{"HEAD says more, read past the object's end",
			s3test.Rule{Op: "HeadObject", Fault: s3test.Fault{Length: size + 1<<20}}, size + 4096, -1, "block read failed"},
		{"HEAD says less than the object holds",
			s3test.Rule{Op: "HeadObject", Fault: s3test.Fault{Length: size - 1<<20}}, 0, size - 1<<20, ""},
		{"the connection closes before Content-Length",
			s3test.Rule{Op: "GetObject", Fault: s3test.Fault{CutAfter: 100 << 10}}, 0, -1, "unexpected EOF"},
		{"a GET answer whose Content-Length says more than the range",
			s3test.Rule{Op: "GetObject", Fault: s3test.Fault{Length: 64 << 20}}, 0, size, ""},
		{"a GET body longer than the range, by 1 GiB",
			s3test.Rule{Op: "GetObject", Fault: s3test.Fault{Pad: 1 << 30}}, 0, size, ""},
		{"the server ignores the range",
			s3test.Rule{Op: "GetObject", Fault: s3test.Fault{Body: string(data)}}, 1 << 20, -1, "ignored the range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft.Clear()
			ft.Add(tc.rule)
			logged := len(log.String())
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			f := lookedUp(t, b, "obj")
			h := openForRead(t, f)
			start := time.Now()
			got, errno := readAll(h, tc.off)
			took := time.Since(start)
			t.Logf("%d bytes, errno %v, after %s", len(got), errno, took.Round(time.Millisecond))
			switch {
			case tc.want < 0:
				if errno != syscall.EIO {
					t.Fatalf("read: %d bytes, errno %v; want EIO", len(got), errno)
				}
				// Through the page cache, the reads before the one
				// that meets the disagreement may succeed: they must
				// be the object's own bytes.
				if end := tc.off + int64(len(got)); len(got) > 0 && (end > size || !bytes.Equal(got, data[min(tc.off, size):end])) {
					t.Errorf("%d bytes handed out before the EIO are not the object's", len(got))
				}
			case errno != 0:
				t.Fatalf("read: errno %v after %d bytes; want %d bytes", errno, len(got), tc.want)
			case !bytes.Equal(got, data[:tc.want]):
				t.Fatalf("read %d bytes; want the object's first %d", len(got), tc.want)
			}
			// No retry waits: the error is in the answer itself.
			if took > 5*time.Second {
				t.Errorf("took %s", took)
			}
			if tc.logs != "" && !strings.Contains(log.String()[logged:], tc.logs) {
				t.Errorf("the log lacks %q:\n%s", tc.logs, log.String()[logged:])
			}
			h.Release(context.Background())
			readsGiveBack(t, b)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			// The 1 GiB of padding is never read: what this read allocated
			// is its blocks (--read-ahead), not the answer's length.
			if grown := int64(after.TotalAlloc - before.TotalAlloc); grown > DefaultReadAhead+64<<20 {
				t.Errorf("the read allocated %d MiB", grown>>20)
			}
		})
	}
}

// TestReadTrickle: a GET body that arrives one byte every few milliseconds
// fails each of the read-ahead's three tries after a request timeout, so
// the read answers EIO within three request timeouts (plus scheduling),
// logged, and gives its blocks back. The bytes handed out are the object's.
func TestReadTrickle(t *testing.T) {
	b, ft, log, _ := hostileFS(t)
	ft.Add(s3test.Rule{Op: "GetObject", Fault: s3test.Fault{Trickle: 2 * time.Millisecond}})
	f := lookedUp(t, b, "obj")
	h := openForRead(t, f)
	start := time.Now()
	got, errno := readAll(h, 0)
	took := time.Since(start)
	t.Logf("trickled read: %d bytes, errno %v, after %s", len(got), errno, took.Round(time.Millisecond))
	if errno != syscall.EIO || len(got) != 0 {
		t.Fatalf("trickled read: %d bytes, errno %v; want EIO", len(got), errno)
	}
	if bound := 3*hostileTimeout + 2*time.Second; took > bound {
		t.Errorf("took %s, bound %s (three tries of one request timeout each)", took, bound)
	}
	if n := strings.Count(log.String(), "arrives too slowly"); n < 3 {
		t.Errorf("%d tries logged as too slow, want 3:\n%s", n, log.String())
	}
	h.Release(context.Background())
	readsGiveBack(t, b)

	// The same mount reads the object whole once the server answers normally.
	ft.Clear()
	h = openForRead(t, lookedUp(t, b, "obj"))
	if got, errno := readAll(h, 0); errno != 0 || len(got) != 3<<20+12345 {
		t.Fatalf("after the trickle: %d bytes, errno %v", len(got), errno)
	}
}

// TestReaddirTrickle: a listing whose answer arrives byte by byte fails the
// readdir, and a lookup, with EIO (never EINTR) within the request
// timeout, logged.
func TestReaddirTrickle(t *testing.T) {
	b, ft, log, _ := hostileFS(t)
	ft.Add(s3test.Rule{Op: "ListObjectsV2", Fault: s3test.Fault{Trickle: 2 * time.Millisecond}})
	start := time.Now()
	h, errno := opendir(t, testDir(b, "dir/"))
	var names []string
	if errno == 0 {
		names, _, errno = readdir(h)
	}
	took := time.Since(start)
	t.Logf("trickled listing: %q, errno %v, after %s", names, errno, took.Round(time.Millisecond))
	if errno != syscall.EIO {
		t.Fatalf("trickled listing: %q, errno %v; want EIO", names, errno)
	}
	if bound := hostileTimeout + time.Second; took > bound {
		t.Errorf("took %s, bound %s (the request timeout)", took, bound)
	}
	if !strings.Contains(log.String(), "listing failed") {
		t.Errorf("the failure was not logged:\n%s", log.String())
	}
	// A lookup asks for a listing too: its failure is EIO, and logged.
	start = time.Now()
	_, errno = testDir(b, "").resolve(context.Background(), "dir")
	took = time.Since(start)
	if errno != syscall.EIO || took > hostileTimeout+time.Second {
		t.Errorf("lookup during a trickled listing: errno %v after %s; want EIO within the request timeout", errno, took)
	}
	if !strings.Contains(log.String(), "lookup failed") {
		t.Errorf("the failed lookup was not logged:\n%s", log.String())
	}
	ft.Clear()
	h, errno = opendir(t, testDir(b, "dir/"))
	if errno == 0 {
		names, _, errno = readdir(h)
	}
	if errno != 0 || strings.Join(names, ",") != "a,b" {
		t.Fatalf("after the trickle: %q, errno %v", names, errno)
	}
}

var _ s3client.API = (*s3client.Client)(nil)
