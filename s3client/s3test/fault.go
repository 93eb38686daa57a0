package s3test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Op names an S3 operation as seen on the wire, derived from the method,
// path and query of a request (path-style addressing).
func Op(r *http.Request) string {
	q := r.URL.Query()
	_, hasUploads := q["uploads"]
	hasUploadID := q.Get("uploadId") != ""
	path := strings.TrimPrefix(r.URL.Path, "/")
	isBucket := !strings.Contains(path, "/") || strings.HasSuffix(path, "/") && strings.Count(path, "/") == 1
	switch r.Method {
	case http.MethodGet:
		switch {
		case isBucket && hasUploads:
			return "ListMultipartUploads"
		case isBucket && q.Get("list-type") == "2":
			return "ListObjectsV2"
		case isBucket:
			return "ListObjects"
		case hasUploadID:
			return "ListParts"
		}
		return "GetObject"
	case http.MethodHead:
		if isBucket {
			return "HeadBucket"
		}
		return "HeadObject"
	case http.MethodPut:
		switch {
		case isBucket:
			return "CreateBucket"
		case hasUploadID && r.Header.Get("X-Amz-Copy-Source") != "":
			return "UploadPartCopy"
		case hasUploadID:
			return "UploadPart"
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return "CopyObject"
		}
		return "PutObject"
	case http.MethodPost:
		switch {
		case hasUploads:
			return "CreateMultipartUpload"
		case hasUploadID:
			return "CompleteMultipartUpload"
		case q.Has("delete"):
			return "DeleteObjects"
		}
	case http.MethodDelete:
		if hasUploadID {
			return "AbortMultipartUpload"
		}
		return "DeleteObject"
	}
	return r.Method
}

// Fault is what the transport does to one matching request.
type Fault struct {
	// Status, when non-zero, answers with this status and an S3 error body
	// of Code, without sending the request on.
	Status int
	Code   string
	// Reset fails the request as a reset connection (ECONNRESET), without
	// sending it on (AfterSend: after the server handled it, as when the
	// answer is lost on the way back).
	Reset bool
	// AfterSend applies Reset or Body after the real server handled the request.
	AfterSend bool
	// Body, when non-empty, replaces the answer with 200 OK and this body
	// (a "200 with an <Error>" or a truncated result).
	Body string
	// Empty answers 200 OK with an empty body.
	Empty bool
	// Delay waits before sending the request on.
	Delay time.Duration

	// The faults below shape the real server's answer; they combine.

	// Length, when > 0, is the Content-Length the answer announces instead
	// of its own, the body left as it is: a HEAD that gives another size
	// than the object's, or a GET whose body is shorter than announced.
	Length int64
	// CutAfter, when > 0, ends the answer's body after this many bytes with
	// io.ErrUnexpectedEOF, as a connection that closed before the
	// announced Content-Length.
	CutAfter int64
	// Pad appends this many bytes ('#') to the answer's body, its
	// Content-Length and Content-Range grown to match: a GET answered with
	// more bytes than the range asked for. They are made as they are read.
	Pad int64
	// Trickle hands out the answer's body one byte per Trickle, as a
	// server that answers slowly byte by byte.
	Trickle time.Duration
}

// shapesAnswer says whether f changes the real server's answer rather than
// replacing it.
func (f *Fault) shapesAnswer() bool {
	return f.Length > 0 || f.CutAfter > 0 || f.Pad > 0 || f.Trickle > 0
}

// Rule injects a fault into requests of one operation.
type Rule struct {
	Op    string // S3 operation name (see Op); "" matches every request
	Skip  int    // let this many matching requests through first
	Times int    // inject into this many matching requests after that; 0 = every one
	// Match, when set, must also accept the request.
	Match func(*http.Request) bool
	Fault Fault
}

// FaultTransport is an http.RoundTripper that injects faults by rule and
// records every request's operation. Safe for concurrent use.
type FaultTransport struct {
	Next http.RoundTripper

	mu    sync.Mutex    // guards rules, seen, hits, log
	rules []*Rule       // in order of precedence
	seen  map[*Rule]int // matching requests seen per rule
	hits  map[*Rule]int // faults injected per rule
	log   []string      // operation of every request, in order
}

// NewFaultTransport wraps next.
func NewFaultTransport(next http.RoundTripper) *FaultTransport {
	return &FaultTransport{Next: next, seen: map[*Rule]int{}, hits: map[*Rule]int{}}
}

// Wrap is a s3client.Config.WrapTransport function that installs f over the real transport.
func (f *FaultTransport) Wrap(next http.RoundTripper) http.RoundTripper {
	f.mu.Lock()
	f.Next = next
	f.mu.Unlock()
	return f
}

// Add installs a rule and returns it.
func (f *FaultTransport) Add(r Rule) *Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	rr := r
	f.rules = append(f.rules, &rr)
	return &rr
}

// Clear removes every rule.
func (f *FaultTransport) Clear() {
	f.mu.Lock()
	f.rules = nil
	f.mu.Unlock()
}

// Hits returns how many faults rule r injected.
func (f *FaultTransport) Hits(r *Rule) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[r]
}

// Count returns how many requests of op went through the transport.
func (f *FaultTransport) Count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, o := range f.log {
		if o == op {
			n++
		}
	}
	return n
}

// Ops returns the operation of every request so far, in order.
func (f *FaultTransport) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *FaultTransport) pick(r *http.Request) (*Fault, http.RoundTripper) {
	op := Op(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, op)
	for _, rule := range f.rules {
		if rule.Op != "" && rule.Op != op {
			continue
		}
		if rule.Match != nil && !rule.Match(r) {
			continue
		}
		f.seen[rule]++
		if f.seen[rule] <= rule.Skip {
			continue
		}
		if rule.Times > 0 && f.hits[rule] >= rule.Times {
			continue
		}
		f.hits[rule]++
		fault := rule.Fault
		return &fault, f.Next
	}
	return nil, f.Next
}

// RoundTrip implements http.RoundTripper.
func (f *FaultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	fault, next := f.pick(r)
	if fault == nil {
		return next.RoundTrip(r)
	}
	if fault.Delay > 0 {
		select {
		case <-time.After(fault.Delay):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	if fault.shapesAnswer() {
		return fault.shape(r, next)
	}
	if !fault.AfterSend {
		if !fault.Reset && fault.Status == 0 && fault.Body == "" && !fault.Empty {
			return next.RoundTrip(r) // a delay only: the request goes on whole
		}
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		switch {
		case fault.Reset:
			return nil, resetError()
		case fault.Status != 0:
			return errorResponse(r, fault.Status, fault.Code), nil
		}
		return bodyResponse(r, 200, fault.Body), nil
	}
	resp, err := next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case fault.Reset:
		return nil, resetError()
	case fault.Body != "" || fault.Empty:
		return bodyResponse(r, 200, fault.Body), nil
	case fault.Status != 0:
		return errorResponse(r, fault.Status, fault.Code), nil
	}
	return bodyResponse(r, resp.StatusCode, ""), nil
}

// shape sends r on to next and returns the answer as fault shapes it.
func (f *Fault) shape(r *http.Request, next http.RoundTripper) (*http.Response, error) {
	resp, err := next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	body := resp.Body
	if f.Pad > 0 {
		body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(body, io.LimitReader(padding{}, f.Pad)), body}
		if resp.ContentLength >= 0 {
			resp.ContentLength += f.Pad
			resp.Header.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
		}
		var first, last, total int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &total); err == nil {
			resp.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last+f.Pad, max(total, last+f.Pad+1)))
		}
	}
	if f.CutAfter > 0 {
		body = &cutBody{ReadCloser: body, left: f.CutAfter}
	}
	if f.Trickle > 0 {
		body = &trickleBody{ReadCloser: body, every: f.Trickle, ctx: r.Context()}
	}
	if f.Length > 0 {
		resp.ContentLength = f.Length
		resp.Header.Set("Content-Length", strconv.FormatInt(f.Length, 10))
	}
	resp.Body = body
	return resp, nil
}

// padding is an endless source of '#'.
type padding struct{}

func (padding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '#'
	}
	return len(p), nil
}

// cutBody is a body that breaks after left bytes.
type cutBody struct {
	io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		err = nil // the real body ended first: the cut still comes
		if n == 0 {
			return 0, io.ErrUnexpectedEOF
		}
	}
	return n, err
}

// trickleBody hands out one byte per every, until the request ends.
type trickleBody struct {
	io.ReadCloser
	every time.Duration
	ctx   context.Context // the request's
}

func (b *trickleBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	t := time.NewTimer(b.every)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.ctx.Done():
		return 0, b.ctx.Err() // as net/http's body fails
	}
	return b.ReadCloser.Read(p[:1])
}

func resetError() error {
	return &netOpError{err: syscall.ECONNRESET}
}

// netOpError looks like the error a reset TCP connection gives.
type netOpError struct{ err error }

func (e *netOpError) Error() string   { return "read tcp 127.0.0.1: " + e.err.Error() }
func (e *netOpError) Unwrap() error   { return e.err }
func (e *netOpError) Timeout() bool   { return false }
func (e *netOpError) Temporary() bool { return true }

// ErrorBody is an S3 error document.
func ErrorBody(code, message string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Error><Code>` + code + `</Code><Message>` + message + `</Message><RequestId>injected-` + code + `</RequestId><HostId>bucketfs-test</HostId></Error>`
}

func errorResponse(r *http.Request, status int, code string) *http.Response {
	if code == "" {
		code = http.StatusText(status)
	}
	resp := bodyResponse(r, status, ErrorBody(code, "injected by the test"))
	resp.Header.Set("X-Amz-Request-Id", "injected-"+code)
	if r.Method == http.MethodHead {
		resp.Body = http.NoBody
		resp.ContentLength = 0
	}
	return resp
}

func bodyResponse(r *http.Request, status int, body string) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", "application/xml")
	h.Set("X-Amz-Request-Id", "injected")
	return &http.Response{
		Status:        http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader([]byte(body))),
		ContentLength: int64(len(body)),
		Request:       r,
	}
}

// Respond builds a canned 200 response; tests use it in a Match-all rule's
// place when they need a crafted answer (for example a ListObjectsV2 page
// with keys MinIO would refuse to store).
func Respond(r *http.Request, body string) *http.Response { return bodyResponse(r, 200, body) }
