package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// Reads and other clients' changes (SEMANTICS.md, "Consistency"): one
// object version per open, absent names re-checked within --negative-ttl,
// and listings that stream, survive keys XML cannot carry, and end.

// putDirect writes key through the direct client, as another client would.
func putDirect(t testing.TB, c *s3client.Client, key string, data []byte) {
	t.Helper()
	if _, err := c.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), s3client.PutOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// firstDifference returns the first index where a and b differ within
// their common length, or -1.
func firstDifference(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// TestReadWhileReplaced: a 200 MiB object replaced by another client during
// a sequential read through the mount: the reader gets bytes of the old
// version and then EIO, never a byte of the new one; the next open reads
// the new object whole, with its size.
func TestReadWhileReplaced(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	oldData, newData := randomBytes(21, 200<<20), randomBytes(22, 150<<20)
	putDirect(t, c, "big.bin", oldData)
	m := mountBucket(t, srv, bucket)

	f, err := os.Open(m.Path("big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []byte
	buf := make([]byte, 1<<20)
	var readErr error
	for len(got) < 16<<20 {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read before the replacement: %v", err)
		}
	}
	putDirect(t, c, "big.bin", newData) // another client replaces it mid-read
	for {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if err != io.EOF {
				readErr = err
			}
			break
		}
	}
	t.Logf("read %d MiB, then %v", len(got)>>20, readErr)
	if len(got) > len(oldData) {
		t.Fatalf("read %d bytes, more than the old version's %d", len(got), len(oldData))
	}
	if i := firstDifference(got, oldData); i >= 0 {
		t.Fatalf("byte %d differs from the old version (new version there: %v)", i, got[i] == newData[i])
	}
	if len(got) < len(oldData) && !errors.Is(readErr, syscall.EIO) {
		t.Fatalf("read stopped at %d of %d bytes with %v, want EIO", len(got), len(oldData), readErr)
	}
	if len(got) == len(oldData) && readErr != nil {
		t.Fatalf("the whole old version, then %v", readErr)
	}
	if !strings.Contains(m.Log.String(), "the object changed while it was being read") {
		t.Errorf("the change was not logged")
	}

	// The next open sees the new object whole.
	m.Counter.Reset()
	again, err := os.ReadFile(m.Path("big.bin"))
	if err != nil || !bytes.Equal(again, newData) {
		t.Fatalf("second open: %d bytes (%v), want the new version's %d", len(again), err, len(newData))
	}
	if st := statT(t, m.Path("big.bin")); st.Size != int64(len(newData)) {
		t.Fatalf("stat after the change: size %d, want %d", st.Size, len(newData))
	}
	t.Logf("second open and read: %v", m.Counter.Snapshot())
}

// TestReplacedBetweenOpens: an object read whole, then replaced by another
// client: an open within the metadata window reads one version whole (the
// old or the new, never a mix: this mount's attributes still name the old
// one); once the window passed, the open reads the new object whole, new
// size and new bytes, and stat shows the new size.
func TestReplacedBetweenOpens(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	const ttl = 2 * time.Second
	m := mountBucket(t, srv, bucket, func(cfg *bfs.Config) { cfg.MetadataTTL = ttl })

	t.Run("4 bytes overwritten with 8", func(t *testing.T) {
		// The reported bug: the old size with the new content.
		putDirect(t, c, "small.txt", []byte("abcd"))
		if st := statT(t, m.Path("small.txt")); st.Size != 4 {
			t.Fatalf("size %d", st.Size)
		}
		putDirect(t, c, "small.txt", []byte("ABCDEFGH"))
		got, err := os.ReadFile(m.Path("small.txt")) // within the TTL
		t.Logf("read within the TTL: %q, %v", got, err)
		switch {
		case err == nil && (string(got) == "abcd" || string(got) == "ABCDEFGH"):
		case errors.Is(err, syscall.EIO) && len(got) == 0:
		default:
			t.Fatalf("read within the TTL: %q, %v; want abcd, ABCDEFGH or EIO", got, err)
		}
		// cat reads with its own buffer sizes.
		if out, err := runErr("cat", m.Path("small.txt")); err != nil || (out != "abcd" && out != "ABCDEFGH") {
			t.Fatalf("cat within the TTL: %q, %v", out, err)
		}
	})

	t.Run("between two opens", func(t *testing.T) {
		oldData, newData := randomBytes(31, 12<<20), randomBytes(32, 20<<20+123)
		putDirect(t, c, "mid.bin", oldData)
		if got, err := os.ReadFile(m.Path("mid.bin")); err != nil || !bytes.Equal(got, oldData) {
			t.Fatalf("first open: %d bytes, %v", len(got), err)
		}
		putDirect(t, c, "mid.bin", newData)
		// Within the window: one version, whole.
		got, err := os.ReadFile(m.Path("mid.bin"))
		if err == nil && !bytes.Equal(got, oldData) && !bytes.Equal(got, newData) {
			t.Fatalf("read within the window: %d bytes, neither version whole", len(got))
		}
		if err != nil && !errors.Is(err, syscall.EIO) {
			t.Fatalf("read within the window: %v", err)
		}
		time.Sleep(ttl)
		got, err = os.ReadFile(m.Path("mid.bin"))
		if err != nil || !bytes.Equal(got, newData) {
			t.Fatalf("once the window passed: %d bytes, %v; want the new %d", len(got), err, len(newData))
		}
		if st := statT(t, m.Path("mid.bin")); st.Size != int64(len(newData)) {
			t.Fatalf("stat once the window passed: size %d, want %d", st.Size, len(newData))
		}
	})
}

// TestOutsidePutVisibleWithinNegativeTTL: a name looked up as absent in a
// directory made (or listed) through the mount shows once another client
// put it, within --negative-ttl (not --metadata-ttl).
func TestOutsidePutVisibleWithinNegativeTTL(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	putDirect(t, c, "listed/old.txt", []byte("old"))
	m := mountBucket(t, srv, bucket) // --metadata-ttl 5s, --negative-ttl 1s
	if err := os.Mkdir(m.Path("made"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"made", "listed"} {
		t.Run(dir, func(t *testing.T) {
			if _, err := os.ReadDir(m.Path(dir)); err != nil {
				t.Fatal(err)
			}
			name := m.Path(dir + "/outside.txt")
			if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("stat before the outside PUT: %v", err)
			}
			m.Counter.Reset()
			putDirect(t, c, dir+"/outside.txt", []byte("from elsewhere"))
			start := time.Now()
			for {
				_, err := os.Stat(name)
				if err == nil {
					break
				}
				if !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
				if time.Since(start) > 10*time.Second {
					t.Fatalf("outside PUT still invisible after %v", time.Since(start))
				}
				time.Sleep(20 * time.Millisecond)
			}
			took := time.Since(start)
			t.Logf("outside PUT visible after %v; requests while polling: %v", took.Round(time.Millisecond), m.Counter.Snapshot())
			if took > bfs.DefaultNegativeTTL+300*time.Millisecond {
				t.Fatalf("outside PUT visible after %v, want within --negative-ttl (%v)", took, bfs.DefaultNegativeTTL)
			}
			if b, err := os.ReadFile(name); err != nil || string(b) != "from elsewhere" {
				t.Fatalf("read: %q, %v", b, err)
			}
		})
	}
}

// TestListingEncodedKeys: keys with spaces, plus signs, percent signs and
// non-ASCII characters list as stored (MinIO); a key holding U+0001 (a
// crafted url-encoded listing, as AWS would send it) is left out and
// logged while the rest of the listing shows.
func TestListingEncodedKeys(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	names := []string{"a b.txt", "a+b.txt", "100%.txt", "ünï 日本.txt", "sp ace dir"}
	for _, n := range names {
		key := "real/" + n
		if strings.HasSuffix(n, "dir") {
			key += "/inner"
		}
		putDirect(t, c, key, []byte("x"))
	}
	m := mountBucket(t, srv, bucket)
	entries, err := os.ReadDir(m.Path("real"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	sort.Strings(got)
	sort.Strings(names)
	if strings.Join(got, "|") != strings.Join(names, "|") {
		t.Fatalf("listing %q, want %q", got, names)
	}
	for _, n := range names {
		if strings.HasSuffix(n, "dir") {
			continue
		}
		if b, err := os.ReadFile(m.Path("real/" + n)); err != nil || string(b) != "x" {
			t.Fatalf("read %q: %q, %v", n, b, err)
		}
	}

	var encoded atomic.Int32
	m.Faults.Add(s3test.Rule{Op: "ListObjectsV2", Match: func(r *http.Request) bool {
		if r.URL.Query().Get("prefix") != "d/" {
			return false
		}
		if r.URL.Query().Get("encoding-type") == "url" {
			encoded.Add(1)
		}
		return true
	}, Fault: s3test.Fault{Body: encodedListingXML(bucket, "d/", "", []string{"d/good.txt", "d/bad%01name", "d/a+b", "d/p%2Bq"}, []string{"d/sub%01dir/", "d/ok/"})}})
	for i := 0; i < 2; i++ { // twice: the second listing must not log again
		entries, err := os.ReadDir(m.Path("d"))
		if err != nil {
			t.Fatalf("a listing with a key XML cannot carry: %v", err)
		}
		got = got[:0]
		for _, e := range entries {
			got = append(got, e.Name())
		}
		sort.Strings(got)
		if strings.Join(got, "|") != "a b|good.txt|ok|p+q" {
			t.Fatalf("listing = %q, want [a b good.txt ok p+q]", got)
		}
	}
	// Such a name cannot be made through the mount either.
	if err := os.WriteFile(m.Path("bad\x01name"), []byte("x"), 0o644); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("creating a name XML cannot carry: %v, want EINVAL", err)
	}
	if encoded.Load() == 0 {
		t.Fatal("listings do not ask for EncodingType=url")
	}
	log := m.Log.String()
	for _, k := range []string{`key="d/bad\x01name"`, `key="d/sub\x01dir/"`} {
		if n := strings.Count(log, k+" "); n != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", k, n, tail(log, 2000))
		}
	}
}

// encodedListingXML is one ListObjectsV2 page with url-encoded keys
// (EncodingType url), objects of 3 bytes; a non-empty next continues it.
func encodedListingXML(bucket, prefix, next string, keys, prefixes []string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>` + bucket +
		`</Name><Prefix>` + prefix + `</Prefix><MaxKeys>1000</MaxKeys><Delimiter>%2F</Delimiter><EncodingType>url</EncodingType>`)
	if next != "" {
		b.WriteString(`<IsTruncated>true</IsTruncated><NextContinuationToken>` + next + `</NextContinuationToken>`)
	} else {
		b.WriteString(`<IsTruncated>false</IsTruncated>`)
	}
	for _, k := range keys {
		b.WriteString(`<Contents><Key>` + k + `</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>"x"</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>`)
	}
	for _, p := range prefixes {
		b.WriteString(`<CommonPrefixes><Prefix>` + p + `</Prefix></CommonPrefixes>`)
	}
	b.WriteString(`</ListBucketResult>`)
	return b.String()
}

// endlessListings answers every ListObjectsV2 under prefix with a page of
// one key and a continuation token never given before, and passes every
// other request on.
type endlessListings struct {
	next   http.RoundTripper
	bucket string
	prefix string
	mu     sync.Mutex // guards pages
	pages  int
}

func (e *endlessListings) RoundTrip(r *http.Request) (*http.Response, error) {
	if s3test.Op(r) != "ListObjectsV2" || !strings.HasPrefix(r.URL.Query().Get("prefix"), e.prefix) {
		return e.next.RoundTrip(r)
	}
	e.mu.Lock()
	e.pages++
	n := e.pages
	e.mu.Unlock()
	key := fmt.Sprintf("%sk%08d", e.prefix, n)
	return s3test.Respond(r, encodedListingXML(e.bucket, e.prefix, fmt.Sprintf("token-%d", n), []string{key}, nil)), nil
}

// TestEndlessListing: a server whose listing hands out continuation tokens
// for ever (through the injected transport) is cut after 10,000 pages:
// readdir answers EIO after the entries before the cut, and the cut is
// logged. One that hands back the same token is cut at once.
func TestEndlessListing(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)

	t.Run("new tokens for ever", func(t *testing.T) {
		m := mountBucket(t, srv, bucket)
		// Behind the fault transport, in front of MinIO. (Next was set
		// when the mount's client was built and is only read since.)
		m.Faults.Wrap(&endlessListings{next: m.Faults.Next, bucket: bucket, prefix: "loop/"})
		start := time.Now()
		entries, err := os.ReadDir(m.Path("loop"))
		t.Logf("readdir: %d entries, %v, after %v; %d ListObjectsV2", len(entries), err, time.Since(start).Round(time.Millisecond), m.Faults.Count("ListObjectsV2"))
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("endless listing: %v, want EIO", err)
		}
		// The lookup of loop lists one page; readdir 10,000.
		if n := m.Faults.Count("ListObjectsV2"); n < 10000 || n > 10002 {
			t.Fatalf("%d ListObjectsV2, want 10,000 and the lookup's", n)
		}
		if !strings.Contains(m.Log.String(), "listing cut: more than 10000 pages") {
			t.Fatalf("the cut was not logged:\n%s", tail(m.Log.String(), 2000))
		}
	})
	t.Run("a token repeats", func(t *testing.T) {
		m := mountBucket(t, srv, bucket)
		m.Faults.Add(s3test.Rule{Op: "ListObjectsV2", Match: prefixIs("again/"), Fault: s3test.Fault{
			Body: encodedListingXML(bucket, "again/", "same-token", []string{"again/one"}, nil)}})
		out, err := runErr("ls", m.Path("again"))
		if err == nil || !strings.Contains(out, "Input/output error") {
			t.Fatalf("ls of a looping listing: %v\n%s", err, out)
		}
		if n := m.Faults.Count("ListObjectsV2"); n > 4 {
			t.Fatalf("%d ListObjectsV2 for a looping listing", n)
		}
		if !strings.Contains(m.Log.String(), "listing cut: the server repeats a continuation token") {
			t.Fatalf("the cut was not logged:\n%s", tail(m.Log.String(), 2000))
		}
	})
}

// TestReadSurvivesOwnAttributeChange: a chmod through the mount changes the
// object's ETag (a self-copy) but not its bytes: a reader that has it open
// reads on, where another client's change would answer EIO.
func TestReadSurvivesOwnAttributeChange(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)
	for _, direct := range []bool{false, true} {
		t.Run(fmt.Sprintf("direct-io=%v", direct), func(t *testing.T) {
			m := mountBucket(t, srv, bucket, func(c *bfs.Config) { c.DirectIO = direct })
			data := randomBytes(77, 40<<20)
			name := fmt.Sprintf("f-%v", direct)
			if err := os.WriteFile(m.Path(name), data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(m.Path(name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			head := make([]byte, 1<<20)
			if _, err := io.ReadFull(f, head); err != nil {
				t.Fatal(err)
			}
			before, _ := m.Client.Head(context.Background(), name)
			if err := os.Chmod(m.Path(name), 0o600); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, 15*time.Second, "the chmod's self-copy", func() bool {
				info, err := m.Client.Head(context.Background(), name)
				return err == nil && info.ETag != before.ETag
			})
			rest, err := io.ReadAll(f)
			if err != nil {
				t.Fatalf("reading on after this mount's chmod: %v", err)
			}
			if !bytes.Equal(append(head, rest...), data) {
				t.Fatal("the bytes read differ from the file's")
			}
		})
	}
}
