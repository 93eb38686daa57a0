package s3client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of one mount's S3 requests. Each
// attempt counts (retries included), like RequestCounter, so the two agree.
type Metrics struct {
	requests *prometheus.CounterVec   // operation, outcome
	latency  *prometheus.HistogramVec // operation; until the answer's headers
	retries  *prometheus.CounterVec   // operation
	sent     prometheus.Counter       // request body bytes
	received prometheus.Counter       // response body bytes read
}

// NewMetrics creates the S3 metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bucketfs_s3_requests_total",
			Help: "S3 request attempts (retries included) by operation and outcome (ok, not_found, precondition_failed, client_error, server_error, network_error, canceled).",
		}, []string{"operation", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bucketfs_s3_request_duration_seconds",
			Help:    "Latency of S3 request attempts by operation, until the answer's headers (a GET's body streams after).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms to 33 s
		}, []string{"operation"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bucketfs_s3_retries_total",
			Help: "S3 request attempts after the first, by operation.",
		}, []string{"operation"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bucketfs_s3_sent_bytes_total",
			Help: "Bytes of S3 request bodies sent (uploads).",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bucketfs_s3_received_bytes_total",
			Help: "Bytes of S3 response bodies received (downloads, listings).",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.retries, m.sent, m.received} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// metricsAttempts carries one operation's attempt count from the
// initialize step to each attempt's finalize step.
type metricsAttempts struct{}

// middleware counts each attempt after the retry loop, with its outcome and
// latency, and the attempts after the first as retries.
func (m *Metrics) middleware(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("bucketfsMetricsAttempts",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			ctx = middleware.WithStackValue(ctx, metricsAttempts{}, new(atomic.Int32))
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	if err != nil {
		return err
	}
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("bucketfsMetrics",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			op := middleware.GetOperationName(ctx)
			if n, ok := middleware.GetStackValue(ctx, metricsAttempts{}).(*atomic.Int32); ok && n.Add(1) > 1 {
				m.retries.WithLabelValues(op).Inc()
			}
			start := time.Now()
			out, md, err := next.HandleFinalize(ctx, in)
			m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
			status := 0
			if resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok && resp != nil && resp.Response != nil {
				status = resp.StatusCode
			}
			m.requests.WithLabelValues(op, outcome(err, status)).Inc()
			return out, md, err
		}), middleware.After)
}

// outcome names the result of one attempt in a few bounded values.
func outcome(err error, status int) string {
	switch {
	case err == nil:
		return "ok"
	case status == http.StatusNotFound:
		return "not_found"
	case status == http.StatusPreconditionFailed:
		return "precondition_failed"
	case status >= 500:
		return "server_error"
	case status >= 400:
		return "client_error"
	case status > 0:
		return "status_" + strconv.Itoa(status)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	default:
		return "network_error"
	}
}

// transport counts the bytes of request bodies sent (their Content-Length,
// once the server answered) and of response bodies as they are read.
func (m *Metrics) transport(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		if err != nil {
			return resp, err
		}
		if r.ContentLength > 0 {
			m.sent.Add(float64(r.ContentLength))
		}
		if resp.Body != nil {
			resp.Body = &countingBody{ReadCloser: resp.Body, c: m.received}
		}
		return resp, nil
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// countingBody adds the bytes read from a response body to c.
type countingBody struct {
	io.ReadCloser
	c prometheus.Counter
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.c.Add(float64(n))
	}
	return n, err
}
