// Package s3proxy is the benchmark's S3-aware HTTP proxy: it sits between an
// S3 client (bucketfs or the SDK directly) and a local S3 server (MinIO) and
// makes the local server behave more like S3 over a real network. It holds
// back the first byte of every response by a fixed delay, caps the bandwidth
// of each client connection (both directions), and counts requests and bytes
// by S3 operation.
//
// It expects path-style requests (endpoint/bucket/key), as bucketfs sends
// with --force-path-style. Requests are forwarded unchanged, Host header
// included, so SigV4 signatures made for the proxy's address stay valid.
package s3proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// Config says where to forward and how to shape the traffic.
type Config struct {
	// Upstream is the URL of the S3 server, e.g. http://127.0.0.1:9000.
	Upstream string
	// FirstByteDelay holds back every response's status line and headers by
	// this long after the upstream answered, as S3's time to first byte does.
	FirstByteDelay time.Duration
	// BandwidthPerConn caps each client connection at this many bytes per
	// second in each direction (request bodies in, responses out),
	// independently; 0 means no cap.
	BandwidthPerConn int64
}

// OpCount is what the proxy saw of one S3 operation.
type OpCount struct {
	Requests int64 `json:"requests"`
	// BytesUp counts request bodies (what the client uploaded).
	BytesUp int64 `json:"bytes_up"`
	// BytesDown counts response bodies (what the client downloaded).
	BytesDown int64 `json:"bytes_down"`
}

// Counts maps S3 operation names (s3test.Op) to what the proxy saw of them.
type Counts map[string]OpCount

// Sub returns the counts of c not already in prev: what happened between
// two snapshots.
func (c Counts) Sub(prev Counts) Counts {
	out := Counts{}
	for op, v := range c {
		p := prev[op]
		d := OpCount{Requests: v.Requests - p.Requests, BytesUp: v.BytesUp - p.BytesUp, BytesDown: v.BytesDown - p.BytesDown}
		if d != (OpCount{}) {
			out[op] = d
		}
	}
	return out
}

// Total sums every operation.
func (c Counts) Total() OpCount {
	var t OpCount
	for _, v := range c {
		t.Requests += v.Requests
		t.BytesUp += v.BytesUp
		t.BytesDown += v.BytesDown
	}
	return t
}

// Requests returns the number of requests of op.
func (c Counts) Requests(op string) int64 { return c[op].Requests }

// Ops returns the operation names, sorted.
func (c Counts) Ops() []string {
	ops := make([]string, 0, len(c))
	for op := range c {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

// opCounter is the live counter of one operation; its fields are updated
// with atomics while requests are in flight.
type opCounter struct {
	requests, up, down atomic.Int64
}

// Proxy is a running proxy. Its methods are safe for concurrent use.
type Proxy struct {
	// URL is the proxy's address for clients (http://127.0.0.1:PORT).
	URL string

	cfg       Config
	upstream  *url.URL
	transport *http.Transport
	server    *http.Server
	done      chan struct{} // closed when Serve returned

	mu     sync.Mutex            // guards counts (the map; entries are atomic)
	counts map[string]*opCounter // by operation
}

// Start listens on a free port of 127.0.0.1 and serves until Close.
func Start(cfg Config) (*Proxy, error) {
	up, err := url.Parse(cfg.Upstream)
	if err != nil || up.Host == "" {
		return nil, fmt.Errorf("upstream %q is not a URL: %v", cfg.Upstream, err)
	}
	if cfg.BandwidthPerConn < 0 || cfg.FirstByteDelay < 0 {
		return nil, errors.New("delay and bandwidth must not be negative")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the proxy: %w", err)
	}
	p := &Proxy{
		URL:      "http://" + l.Addr().String(),
		cfg:      cfg,
		upstream: up,
		transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ReadBufferSize:      64 << 10,
			WriteBufferSize:     64 << 10,
		},
		done:   make(chan struct{}),
		counts: map[string]*opCounter{},
	}
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: time.Minute}
	var ln net.Listener = l
	if cfg.BandwidthPerConn > 0 {
		ln = &throttledListener{Listener: l, rate: cfg.BandwidthPerConn}
	}
	go func() {
		defer close(p.done)
		_ = p.server.Serve(ln)
	}()
	return p, nil
}

// Config returns the proxy's settings.
func (p *Proxy) Config() Config { return p.cfg }

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	err := p.server.Close()
	<-p.done
	p.transport.CloseIdleConnections()
	return err
}

// Snapshot returns the counts so far. A request is counted when it
// arrives, and its bytes as they pass, so once a client has its whole
// answer, the request is in the snapshot.
func (p *Proxy) Snapshot() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(Counts, len(p.counts))
	for op, c := range p.counts {
		out[op] = OpCount{Requests: c.requests.Load(), BytesUp: c.up.Load(), BytesDown: c.down.Load()}
	}
	return out
}

func (p *Proxy) counter(op string) *opCounter {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts[op]
	if c == nil {
		c = &opCounter{}
		p.counts[op] = c
	}
	return c
}

// hopHeaders are connection-level headers a proxy must not forward.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// ServeHTTP implements http.Handler: count, forward, delay, relay.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := p.counter(s3test.Op(r))
	c.requests.Add(1)

	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = p.upstream.Scheme
	out.URL.Host = p.upstream.Host
	out.Host = r.Host // signed by the client
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	if r.Body != nil && r.Body != http.NoBody {
		out.Body = &countingReader{r: r.Body, n: &c.up}
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		http.Error(w, "s3proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if err := sleep(r.Context(), p.cfg.FirstByteDelay); err != nil {
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	buf := make([]byte, 64<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			// Counted before it is sent: the client cannot hold its last
			// byte before the snapshot shows it.
			c.down.Add(int64(n))
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if rerr != nil {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }
