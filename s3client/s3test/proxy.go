package s3test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// Proxy is an HTTP proxy on 127.0.0.1 in front of an S3 server that
// misbehaves on the wire as its Faults say: end-to-end tests point a
// bucketfs process at it to meet a server whose answers lie about their
// length, break off, or arrive byte by byte. Requests go on unchanged, Host
// header included, so their signatures stay valid; answers come back as
// the fault transport shapes them, each write flushed, and a body that
// fails cuts the connection, as a server that went away does.
type Proxy struct {
	// URL is the address for clients (http://127.0.0.1:PORT).
	URL string
	// Faults shapes the answers; without rules the proxy is transparent.
	Faults *FaultTransport

	upstream *url.URL
	server   *http.Server
}

// StartProxy starts a proxy to upstream (a server's Endpoint) and stops it,
// closing every connection, at cleanup.
func StartProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	up, err := url.Parse(upstream)
	if err != nil || up.Host == "" {
		t.Fatalf("upstream %q is not a URL: %v", upstream, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	transport := &http.Transport{
		DialContext:        (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		DisableCompression: true,
	}
	p := &Proxy{URL: "http://" + l.Addr().String(), Faults: NewFaultTransport(transport), upstream: up}
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.server.Serve(l)
	}()
	t.Cleanup(func() {
		_ = p.server.Close()
		<-done
		transport.CloseIdleConnections()
	})
	return p
}

// hopHeaders are connection-level headers a proxy does not pass on.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.upstream.Scheme, p.upstream.Host
	out.Host = r.Host // signed by the client
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := p.Faults.RoundTrip(out)
	if err != nil {
		// A reset or an upstream that went away: so does this connection.
		panic(http.ErrAbortHandler)
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 64<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if errors.Is(rerr, io.EOF) {
			// A body shorter than the Content-Length sent makes the
			// server close the connection after it.
			return
		}
		if rerr != nil {
			panic(http.ErrAbortHandler)
		}
	}
}
