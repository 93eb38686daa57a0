package s3proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeS3 answers path-style requests the way the proxy needs: a GET of an
// object returns size bytes, a PUT reads its body, a listing returns a tiny
// document. It records the Host header it saw.
type fakeS3 struct {
	size int

	mu    sync.Mutex // guards hosts
	hosts []string
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.hosts = append(f.hosts, r.Host)
	f.mu.Unlock()
	_, _ = io.Copy(io.Discard, r.Body)
	switch {
	case r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2":
		_, _ = io.WriteString(w, "<ListBucketResult></ListBucketResult>")
	case r.Method == http.MethodGet:
		w.Header().Set("Content-Length", itoa(f.size))
		_, _ = w.Write(bytes.Repeat([]byte{'x'}, f.size))
	case r.Method == http.MethodHead:
		w.Header().Set("Content-Length", itoa(f.size))
	default:
		w.Header().Set("ETag", `"abc"`)
	}
}

func itoa(n int) string {
	var b []byte
	if n == 0 {
		return "0"
	}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func startPair(t *testing.T, size int, cfg Config) (*Proxy, *fakeS3) {
	t.Helper()
	f := &fakeS3{size: size}
	up := httptest.NewServer(f)
	t.Cleanup(up.Close)
	cfg.Upstream = up.URL
	p, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, f
}

// do sends one request on a fresh connection and reads the whole answer.
func do(t *testing.T, method, url string, body []byte) time.Duration {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: status %d", method, url, resp.StatusCode)
	}
	return time.Since(start)
}

func TestCountsByOperation(t *testing.T) {
	p, f := startPair(t, 1000, Config{})
	before := p.Snapshot()
	do(t, "GET", p.URL+"/b/key", nil)
	do(t, "GET", p.URL+"/b/dir/key2", nil)
	do(t, "HEAD", p.URL+"/b/key", nil)
	do(t, "GET", p.URL+"/b?list-type=2&prefix=dir%2F", nil)
	do(t, "PUT", p.URL+"/b/new", make([]byte, 777))
	do(t, "POST", p.URL+"/b/big?uploads", nil)
	do(t, "PUT", p.URL+"/b/big?partNumber=1&uploadId=u1", make([]byte, 5000))
	got := p.Snapshot().Sub(before)
	want := Counts{
		"GetObject":             {Requests: 2, BytesDown: 2000},
		"HeadObject":            {Requests: 1},
		"ListObjectsV2":         {Requests: 1, BytesDown: int64(len("<ListBucketResult></ListBucketResult>"))},
		"PutObject":             {Requests: 1, BytesUp: 777},
		"CreateMultipartUpload": {Requests: 1},
		"UploadPart":            {Requests: 1, BytesUp: 5000},
	}
	if len(got) != len(want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	for op, w := range want {
		if got[op] != w {
			t.Errorf("%s: %+v, want %+v", op, got[op], w)
		}
	}
	if tot := got.Total(); tot.Requests != 7 || tot.BytesUp != 5777 {
		t.Errorf("total %+v", tot)
	}
	// The signed Host header reaches the server unchanged.
	host := strings.TrimPrefix(p.URL, "http://")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.hosts {
		if h != host {
			t.Fatalf("upstream saw Host %q, want the proxy's %q", h, host)
		}
	}
}

func TestFirstByteDelay(t *testing.T) {
	const delay = 150 * time.Millisecond
	slow, _ := startPair(t, 10, Config{FirstByteDelay: delay})
	fast, _ := startPair(t, 10, Config{})
	for _, method := range []string{"HEAD", "GET", "PUT"} {
		var body []byte
		if method == "PUT" {
			body = []byte("hello")
		}
		if d := do(t, method, slow.URL+"/b/k", body); d < delay {
			t.Errorf("%s through a %v proxy answered in %v", method, delay, d)
		}
		if d := do(t, method, fast.URL+"/b/k", body); d >= delay {
			t.Errorf("%s without delay took %v", method, d)
		}
	}
}

func TestBandwidthCapPerConnection(t *testing.T) {
	const rate = 4 << 20 // bytes per second, each direction of each connection
	const size = 2 << 20 // half a second at the cap
	p, _ := startPair(t, size, Config{BandwidthPerConn: rate})
	atLeast := 450 * time.Millisecond
	if d := do(t, "GET", p.URL+"/b/k", nil); d < atLeast || d > 3*time.Second {
		t.Errorf("download of 2 MiB at 4 MiB/s took %v", d)
	}
	if d := do(t, "PUT", p.URL+"/b/k", make([]byte, size)); d < atLeast || d > 3*time.Second {
		t.Errorf("upload of 2 MiB at 4 MiB/s took %v", d)
	}
	// The cap is per connection: four downloads at once take about as long as one.
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(t, "GET", p.URL+"/b/k", nil)
		}()
	}
	wg.Wait()
	if d := time.Since(start); d < atLeast || d > 1500*time.Millisecond {
		t.Errorf("4 parallel downloads of 2 MiB at 4 MiB/s per connection took %v, want about 0.5s", d)
	}
	if got := p.Snapshot()["GetObject"]; got.Requests != 5 || got.BytesDown != 5*size {
		t.Errorf("GetObject counts %+v", got)
	}
	// Without a cap the same download is much faster.
	free, _ := startPair(t, size, Config{})
	if d := do(t, "GET", free.URL+"/b/k", nil); d >= atLeast {
		t.Errorf("uncapped download took %v", d)
	}
}
