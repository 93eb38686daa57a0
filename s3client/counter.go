package s3client

import (
	"context"
	"net/url"
	"sort"
	"sync"

	"github.com/aws/smithy-go/middleware"
)

// RequestCounter counts S3 requests by operation, each attempt (retries
// included), because each attempt is billed.
type RequestCounter struct {
	mu     sync.Mutex       // guards counts
	counts map[string]int64 // operation name -> attempts
}

// NewRequestCounter returns an empty counter.
func NewRequestCounter() *RequestCounter {
	return &RequestCounter{counts: map[string]int64{}}
}

// Add counts n requests of op.
func (c *RequestCounter) Add(op string, n int64) {
	c.mu.Lock()
	c.counts[op] += n
	c.mu.Unlock()
}

// Snapshot returns a copy of the counts.
func (c *RequestCounter) Snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Total returns the number of requests counted.
func (c *RequestCounter) Total() int64 {
	var t int64
	for _, v := range c.Snapshot() {
		t += v
	}
	return t
}

// Reset sets every count to zero.
func (c *RequestCounter) Reset() {
	c.mu.Lock()
	c.counts = map[string]int64{}
	c.mu.Unlock()
}

// Ops returns the operations counted so far, sorted.
func (c *RequestCounter) Ops() []string {
	var ops []string
	for k := range c.Snapshot() {
		ops = append(ops, k)
	}
	sort.Strings(ops)
	return ops
}

// middleware registers a finalize step, after the retry loop, so each attempt counts.
func (c *RequestCounter) middleware(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("bucketfsRequestCounter",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.Add(middleware.GetOperationName(ctx), 1)
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func urlPathEscape(s string) string { return url.PathEscape(s) }
