package s3client

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Sentinel errors that callers test with errors.Is. The S3 error codes that
// map to each are decided here, in one place, not at call sites.
var (
	// ErrNotFound is a missing key (NoSuchKey, HEAD's NotFound, or a 404
	// that names nothing else). A missing bucket or upload is not a missing
	// key: they have sentinels of their own.
	ErrNotFound = errors.New("not found")
	// ErrNoSuchBucket is a bucket that does not exist (NoSuchBucket).
	ErrNoSuchBucket = errors.New("no such bucket")
	// ErrPreconditionFailed is a failed conditional request (412, If-None-Match on an existing key).
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrAccessDenied is a refusal by S3 (AccessDenied, 403, bad credentials).
	ErrAccessDenied = errors.New("access denied")
	// ErrNoSuchUpload is a multipart upload that S3 no longer knows (completed or aborted).
	ErrNoSuchUpload = errors.New("no such upload")
	// ErrInvalidRange is a range request that starts at or past the end of the object (416).
	ErrInvalidRange = errors.New("invalid range")
	// ErrMultipartContract is a multipart request S3 refused because the parts are wrong
	// (EntityTooSmall, InvalidPart, InvalidPartOrder): retrying the same request cannot help.
	ErrMultipartContract = errors.New("multipart contract violated")
	// ErrEmptyResult is a 2xx answer whose body lacks the result S3 must send
	// (an empty or truncated CompleteMultipartUploadResult).
	ErrEmptyResult = errors.New("2xx answer without a result")
	// ErrNotImplemented is a request feature the server does not support
	// (NotImplemented, 501): here, conditional writes on some S3-compatible stores.
	ErrNotImplemented = errors.New("not implemented by the server")
)

// Error is a failed S3 request: the operation, the key, and what S3 said.
type Error struct {
	Op        string // S3 operation, e.g. "UploadPart"
	Key       string // object key (or prefix for listings)
	Code      string // S3 error code, e.g. "SlowDown"; empty for transport errors
	Message   string // S3 error message
	Status    int    // HTTP status, 0 when no response arrived
	RequestID string // x-amz-request-id, when S3 sent one
	Err       error  // the underlying SDK or transport error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("s3 %s %q", e.Op, e.Key)
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	} else if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.RequestID != "" {
		s += " [request " + e.RequestID + "]"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is maps S3 error codes and statuses onto the package's sentinel errors.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == "NoSuchKey" || e.Code == "NotFound" || (e.Code == "" && e.Status == 404)
	case ErrNoSuchBucket:
		return e.Code == "NoSuchBucket"
	case ErrPreconditionFailed:
		return e.Code == "PreconditionFailed" || e.Status == 412
	case ErrAccessDenied:
		return e.Code == "AccessDenied" || e.Code == "InvalidAccessKeyId" ||
			e.Code == "SignatureDoesNotMatch" || e.Status == 403
	case ErrNoSuchUpload:
		return e.Code == "NoSuchUpload"
	case ErrInvalidRange:
		return e.Code == "InvalidRange" || e.Status == 416
	case ErrNotImplemented:
		return e.Code == "NotImplemented" || e.Status == 501
	case ErrMultipartContract:
		return e.Code == "EntityTooSmall" || e.Code == "InvalidPart" || e.Code == "InvalidPartOrder"
	}
	return false
}

// wrapError turns an SDK error into an *Error carrying the op, key, code and request ID.
func wrapError(op, key string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Key: key, Err: hideErrno(err)}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		e.Code = apiErr.ErrorCode()
		e.Message = apiErr.ErrorMessage()
	}
	var nf *types.NotFound
	if errors.As(err, &nf) && e.Code == "" {
		e.Code = "NotFound"
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
		e.RequestID = re.ServiceRequestID()
	}
	if errors.Is(err, ErrEmptyResult) {
		e.Code = "EmptyResult"
	}
	return e
}

// hideErrno keeps a transport failure's text but not the syscall.Errno
// inside it: callers map errors to errno with errors.As, and a reset or
// refused connection must reach an application as EIO, not as ECONNRESET
// or ECONNREFUSED, which name its own sockets. Context errors stay visible.
func hideErrno(err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &transportError{msg: err.Error()}
}

// transportError is a network failure reduced to its text (see hideErrno).
type transportError struct{ msg string }

func (e *transportError) Error() string { return e.msg }

// Code returns the S3 error code carried by err, or "" when there is none.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// RequestID returns the S3 request ID carried by err, or "" when there is none.
func RequestID(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.RequestID
	}
	return ""
}
