package s3client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// Tests of servers that misbehave while answering (README, "S3 outages"):
// a body that does not match the size announced, a server that ignores
// ranges, and one that answers slowly byte by byte. Each ends in an error
// within a bound, never in wrong bytes or a read that never ends.

// hostileClient is a MinIO client whose answers a test can shape, with a
// short request timeout, and an object of 1 MiB at "obj".
func hostileClient(t *testing.T, timeout time.Duration) (*s3client.Client, *s3test.FaultTransport, []byte) {
	t.Helper()
	c, ft := faultClientWith(t, func(cfg *s3client.Config) {
		cfg.RequestTimeout, cfg.MaxAttempts, cfg.RetryBaseDelay = timeout, 2, 10*time.Millisecond
	})
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>11) // no two offsets of a read look alike
	}
	s3test.PutObjects(t, c, map[string][]byte{"obj": data})
	return c, ft, data
}

// readAll reads a GetRange to its end and returns the bytes and the error
// that ended it (nil at EOF).
func readAll(t *testing.T, c *s3client.Client, off, n int64) ([]byte, error) {
	t.Helper()
	rc, err := c.GetRange(context.Background(), "obj", off, n, "")
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// checkS3Error: err is an *s3client.Error of GetObject that exposes no
// errno and does not read as a cancellation (EINTR).
func checkS3Error(t *testing.T, err error) {
	t.Helper()
	var e *s3client.Error
	var errno syscall.Errno
	if !errors.As(err, &e) || e.Op != "GetObject" || errors.As(err, &errno) || errors.Is(err, context.Canceled) {
		t.Errorf("error %v: want an *s3client.Error of GetObject, without errno, not a cancellation", err)
	}
}

// TestGetRangeIgnoredRange: a server that answers a ranged GET with the
// whole object (200, no Content-Range) would hand out the object's first
// bytes as those at the offset; GetRange refuses such an answer. From
// offset 0 the bytes are the right ones and are accepted.
func TestGetRangeIgnoredRange(t *testing.T) {
	c, ft, data := hostileClient(t, 2*time.Second)
	// A server that does not honour ranges answers 200 with the whole object.
	ft.Add(s3test.Rule{Op: "GetObject", Fault: s3test.Fault{Body: string(data)}})
	got, err := readAll(t, c, 4096, 100)
	if err == nil {
		t.Fatalf("a ranged GET answered with the whole object was accepted: % x..., want % x...", got[:8], data[4096:4096+8])
	}
	t.Logf("range ignored: %v", err)
	checkS3Error(t, err)
	if !strings.Contains(err.Error(), "range") {
		t.Errorf("the error does not say the range was not honoured: %v", err)
	}
	rc, err := c.GetRange(context.Background(), "obj", 0, 100, "")
	if err != nil {
		t.Fatalf("from offset 0: %v", err)
	}
	defer rc.Close()
	got = make([]byte, 100)
	if _, err := io.ReadFull(rc, got); err != nil || !bytes.Equal(got, data[:100]) {
		t.Fatalf("from offset 0: %q, %v", got, err)
	}
}

// TestGetRangeBodyDisagrees: a body shorter than its Content-Length (the
// connection closed early) ends in an error, not in a clean EOF; a body
// longer than the range asked for starts with the right bytes.
func TestGetRangeBodyDisagrees(t *testing.T) {
	c, ft, data := hostileClient(t, 2*time.Second)
	t.Run("cut", func(t *testing.T) {
		ft.Clear()
		ft.Add(s3test.Rule{Op: "GetObject", Fault: s3test.Fault{CutAfter: 1000}})
		got, err := readAll(t, c, 100, 64<<10)
		if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("a body cut after 1000 bytes: %d bytes, %v; want io.ErrUnexpectedEOF", len(got), err)
		}
		checkS3Error(t, err)
		if !bytes.Equal(got, data[100:100+len(got)]) {
			t.Fatal("the bytes before the cut are wrong")
		}
	})
	t.Run("longer", func(t *testing.T) {
		ft.Clear()
		ft.Add(s3test.Rule{Op: "GetObject", Fault: s3test.Fault{Pad: 1 << 20}})
		rc, err := c.GetRange(context.Background(), "obj", 100, 4096, "")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		got := make([]byte, 4096)
		if _, err := io.ReadFull(rc, got); err != nil || !bytes.Equal(got, data[100:100+4096]) {
			t.Fatalf("the range asked for, of a longer answer: %v", err)
		}
	})
}

// TestGetRangeTrickle: a GET body that arrives one byte every few
// milliseconds fails once it has brought fewer than 64 KiB in a request
// timeout of waiting, with the bytes before it intact; a reader that is
// itself slow is not taken for a slow server.
func TestGetRangeTrickle(t *testing.T) {
	const timeout = 500 * time.Millisecond
	c, ft, data := hostileClient(t, timeout)

	t.Run("server trickles", func(t *testing.T) {
		ft.Clear()
		ft.Add(s3test.Rule{Op: "GetObject", Fault: s3test.Fault{Trickle: 2 * time.Millisecond}})
		start := time.Now()
		got, err := readAll(t, c, 0, -1)
		took := time.Since(start)
		t.Logf("trickled GET failed after %s and %d bytes: %v", took.Round(time.Millisecond), len(got), err)
		if err == nil {
			t.Fatalf("a trickled body of %d bytes was read whole in %s", len(got), took)
		}
		checkS3Error(t, err)
		if took > timeout+time.Second {
			t.Errorf("took %s, bound %s (the request timeout)", took, timeout)
		}
		if len(got) == 0 || !bytes.Equal(got, data[:len(got)]) {
			t.Errorf("%d bytes before the failure, not the object's", len(got))
		}
	})

	t.Run("reader is slow", func(t *testing.T) {
		ft.Clear()
		rc, err := c.GetRange(context.Background(), "obj", 0, 64<<10, "")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var got []byte
		buf := make([]byte, 16<<10)
		for {
			n, err := rc.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("after %d bytes, read with pauses longer than the request timeout: %v", len(got), err)
			}
			time.Sleep(timeout + 100*time.Millisecond)
		}
		if !bytes.Equal(got, data[:64<<10]) {
			t.Fatal("wrong bytes")
		}
	})

	t.Run("listing trickles", func(t *testing.T) {
		ft.Clear()
		ft.Add(s3test.Rule{Op: "ListObjectsV2", Fault: s3test.Fault{Trickle: 2 * time.Millisecond}})
		start := time.Now()
		_, err := c.List(context.Background(), "", "/", "", 0)
		took := time.Since(start)
		t.Logf("trickled listing failed after %s: %v", took.Round(time.Millisecond), err)
		if err == nil {
			t.Fatal("a trickled listing succeeded")
		}
		if errors.Is(err, context.Canceled) {
			t.Errorf("a timeout reads as a cancellation (EINTR): %v", err)
		}
		if took > timeout+500*time.Millisecond {
			t.Errorf("took %s, bound %s (the request timeout, retries included)", took, timeout)
		}
	})
}
