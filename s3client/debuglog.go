package s3client

import (
	"context"
	"reflect"
	"sync/atomic"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/sirupsen/logrus"
)

// requestLogger logs every attempt of every S3 request at debug level:
// operation, key, attempt, HTTP status, bytes each way, latency and request
// ID. It never logs headers, query strings or the endpoint's user info, so
// no credential or signature (Authorization, X-Amz-Security-Token,
// X-Amz-Signature) can reach the log.
type requestLogger struct {
	log logrus.FieldLogger
}

// debugKey carries one operation's key and attempt count from the
// initialize step (which sees the input) to each attempt's finalize step.
type debugKey struct{}

type debugState struct {
	key      string
	attempts atomic.Int32
}

func (l requestLogger) middleware(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("bucketfsDebugKey",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			ctx = middleware.WithStackValue(ctx, debugKey{}, &debugState{key: inputKey(in.Parameters)})
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	if err != nil {
		return err
	}
	// After the retry middleware: once per attempt.
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("bucketfsDebugLog",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			start := time.Now()
			out, md, err := next.HandleFinalize(ctx, in)
			fields := logrus.Fields{
				"op":         middleware.GetOperationName(ctx),
				"latency_ms": time.Since(start).Milliseconds(),
			}
			if st, ok := middleware.GetStackValue(ctx, debugKey{}).(*debugState); ok {
				fields["key"] = st.key
				fields["attempt"] = st.attempts.Add(1)
			}
			if req, ok := in.Request.(*smithyhttp.Request); ok && req.ContentLength > 0 {
				fields["bytes_out"] = req.ContentLength
			}
			if resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok && resp != nil && resp.Response != nil {
				fields["status"] = resp.StatusCode
				if resp.ContentLength >= 0 {
					fields["bytes_in"] = resp.ContentLength
				}
				if id := resp.Header.Get("X-Amz-Request-Id"); id != "" {
					fields["request_id"] = id
				}
			}
			entry := l.log.WithFields(fields)
			if err != nil {
				entry = entry.WithField("error", err.Error())
			}
			entry.Debug("s3 request")
			return out, md, err
		}), middleware.After)
}

// inputKey is the Key (or, for listings, the Prefix) of an operation's input.
func inputKey(params any) string {
	v := reflect.ValueOf(params)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return ""
	}
	for _, name := range []string{"Key", "Prefix"} {
		f := v.Elem().FieldByName(name)
		if f.IsValid() && f.Kind() == reflect.Pointer && !f.IsNil() && f.Elem().Kind() == reflect.String {
			return f.Elem().String()
		}
	}
	return ""
}
