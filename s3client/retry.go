package s3client

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// Defaults of the retry and timeout policy (see Config).
const (
	// DefaultMaxAttempts is one attempt and five retries.
	DefaultMaxAttempts = 6
	// DefaultRequestTimeout bounds how long a request waits for an answer.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultRetryBaseDelay is the backoff before the first retry; it
	// doubles at each retry, up to DefaultRetryMaxDelay.
	DefaultRetryBaseDelay = 500 * time.Millisecond
	// DefaultRetryMaxDelay caps one backoff.
	DefaultRetryMaxDelay = 20 * time.Second
	// minIdleTimeout is the least idle timeout derived from the request
	// timeout: CompleteMultipartUpload may stay silent between the
	// keep-alive whitespace S3 and MinIO send while they assemble the parts
	// (MinIO every 10 s).
	minIdleTimeout = 15 * time.Second
)

// backoff is the delay before retry n (n = 1 after the first attempt): a
// random value in [d/2, d] where d = base·2^(n-1), capped at max. Half of
// it is fixed, so retries against a server that is down or restarting
// ("connection refused" fails at once) spread over seconds instead of
// running back to back; the random half keeps clients that failed together
// from retrying together.
type backoff struct {
	base, max time.Duration
}

// BackoffDelay implements retry.BackoffDelayer.
func (b backoff) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	return b.delay(attempt, rand.Int64N), nil
}

func (b backoff) delay(attempt int, randN func(int64) int64) time.Duration {
	d := b.base
	for i := 1; i < attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	half := d / 2
	return half + time.Duration(randN(int64(d-half)+1))
}

// MaxBackoffTotal is the most time a request that fails every attempt
// spends waiting between them with this configuration's retry policy.
func (cfg Config) MaxBackoffTotal() time.Duration {
	cfg = cfg.withDefaults()
	b := backoff{base: cfg.RetryBaseDelay, max: cfg.RetryMaxDelay}
	var total time.Duration
	for n := 1; n < cfg.MaxAttempts; n++ {
		total += b.delay(n, func(n int64) int64 { return n - 1 })
	}
	return total
}

// retryableCodes are S3 error codes that the SDK does not retry by itself
// but that only say the transfer broke: the part (or object) is still in
// memory and seekable, so sending it again is safe.
var retryableCodes = map[string]bool{
	"IncompleteBody":     true, // S3 got fewer bytes than Content-Length
	"ClientDisconnected": true, // MinIO: the body stopped arriving
	"RequestTimeout":     true, // S3: the socket was idle too long
	"InternalError":      true,
	"ServiceUnavailable": true,
	"SlowDown":           true,
}

// retryableTransport says whether err is a broken transfer worth another
// attempt. The SDK already retries "connection refused", "connection
// reset" in the message, dial errors and timeouts; a write to a closed
// socket (EPIPE), an aborted connection and a connection closed before the
// answer (EOF) it leaves undecided, and it would not retry them.
func retryableTransport(err error) aws.Ternary {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return aws.UnknownTernary
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && retryableCodes[apiErr.ErrorCode()] {
		return aws.TrueTernary
	}
	switch {
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ETIMEDOUT):
		return aws.TrueTernary
	}
	var sendErr interface{ ConnectionError() bool }
	if errors.As(err, &sendErr) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return aws.TrueTernary
	}
	if msg := err.Error(); strings.Contains(msg, "broken pipe") || strings.Contains(msg, "server closed idle connection") {
		return aws.TrueTernary
	}
	return aws.UnknownTernary
}

// newRetryer is the retry policy of every request: cfg.MaxAttempts
// attempts, the backoff above, the SDK's retryable errors plus
// retryableTransport's, and no client-side retry quota (the SDK's token
// bucket would stop retrying after a burst of failures, which is exactly
// when an outage needs retries paced, not cut).
func newRetryer(cfg Config) aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = cfg.MaxAttempts
		so.MaxBackoff = cfg.RetryMaxDelay
		so.Backoff = backoff{base: cfg.RetryBaseDelay, max: cfg.RetryMaxDelay}
		so.RateLimiter = noRateLimit{}
		// A cancelled request is never retried (the first check); ours
		// come before the SDK's, which would leave some of them undecided.
		so.Retryables = append([]retry.IsErrorRetryable{
			retry.NoRetryCanceledError{},
			retry.IsErrorRetryableFunc(retryableTransport),
		}, retry.DefaultRetryables...)
	})
}

type noRateLimit struct{}

func (noRateLimit) GetToken(context.Context, uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (noRateLimit) AddTokens(uint) error { return nil }
