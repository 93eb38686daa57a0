// Command bucketfs mounts an S3 bucket as a directory.
//
// It only turns flags and -o mount options into one fs.Config, checks what
// can be checked before mounting, and runs the mount in the foreground or
// as a background daemon, which it stops on signals. Installed as
// /sbin/mount.fuse.bucketfs it is also mount(8)'s helper for the type
// fuse.bucketfs (helper.go), and `bucketfs cleanup` aborts the incomplete
// multipart uploads crashed writers leave behind (cleanup.go). The
// filesystem itself lives in package fs.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	fillEnvironment()
	if isHelperName(os.Args[0]) {
		os.Exit(runHelper(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// fillEnvironment sets HOME and PATH when they are missing: mount(8)
// removes both from the environment of the helpers it runs. The AWS SDK
// finds ~/.aws/credentials and ~/.aws/config through HOME; fusermount3 is
// found on PATH.
func fillEnvironment() {
	if os.Getenv("HOME") == "" {
		if u, err := user.Current(); err == nil && u.HomeDir != "" {
			os.Setenv("HOME", u.HomeDir)
		}
	}
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
}

// run is the bucketfs command: a mount, or a subcommand.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "cleanup" {
		return runCleanup(args[1:], stdout, stderr)
	}
	return runMount(args, stdout, stderr, false)
}

// runMount mounts. sloppy (mount -s) turns unknown mount options into
// warnings.
func runMount(args []string, stdout, stderr io.Writer, sloppy bool) int {
	if os.Getenv(sloppyEnv) != "" {
		sloppy = true
		os.Unsetenv(sloppyEnv)
	}
	o, err := parseArgs(args, stdout, stderr, sloppy)
	switch {
	case errors.Is(err, errHelp):
		return 0
	case err != nil:
		return fail(stderr, err, mountHelpHint)
	case o.version:
		fmt.Fprintf(stdout, "bucketfs %s\n", version)
		return 0
	}
	if err := checkMountpoint(o.mountpoint); err != nil {
		return fail(stderr, err, "")
	}
	if err := checkFUSEDevice("/dev/fuse"); err != nil {
		return fail(stderr, err, "")
	}
	ctx := context.Background()
	if err := checkBucket(ctx, o); err != nil {
		return fail(stderr, err, "")
	}
	if !o.foreground {
		// The daemon logs it too, but to syslog or --log-file.
		warnInsecure(o.conn.aws, nil, stderr)
		if err := startDaemon(args, sloppy); err != nil {
			return fail(stderr, err, "")
		}
		return 0
	}
	if err := serve(ctx, o, stderr); err != nil {
		return fail(stderr, err, "")
	}
	return 0
}

// fail prints err, and hint under a usage error, and returns the exit
// code: 2 for a usage error, 1 for anything else.
func fail(stderr io.Writer, err error, hint string) int {
	fmt.Fprintf(stderr, "bucketfs: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		if hint != "" {
			fmt.Fprintln(stderr, hint)
		}
		return 2
	}
	return 1
}

// checkMountpoint refuses a mountpoint that is missing, not a directory,
// already a mount, or a dead mount (its FUSE process is gone).
func checkMountpoint(path string) error {
	st, err := os.Stat(path)
	switch {
	case isDeadMount(err):
		return deadMountError(path)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mountpoint %s does not exist", path)
	case err != nil:
		return fmt.Errorf("mountpoint %s: %w", path, err)
	case !st.IsDir():
		return fmt.Errorf("mountpoint %s is not a directory", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	mounted, err := bfs.IsMountpoint(abs)
	if err != nil {
		return err
	}
	if mounted {
		// The kernel answers stat from its cache for a while after the
		// process of a FUSE mount died; statfs always asks the process.
		if isDeadMount(statfsWithin(abs, 2*time.Second)) {
			return deadMountError(path)
		}
		what := ""
		if m, ok, _ := mountAt(abs); ok {
			what = fmt.Sprintf(" (%s, %s)", m.fstype, m.source)
		}
		return fmt.Errorf("mountpoint %s is already a mount%s; unmount it first: umount %s", path, what, path)
	}
	return nil
}

// statfsWithin is statfs(2) of path, given up after limit (a mount whose
// process is stopped never answers).
func statfsWithin(path string, limit time.Duration) error {
	done := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t
		done <- syscall.Statfs(path, &st)
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		return context.DeadlineExceeded
	}
}

// isDeadMount says whether err is what the kernel answers on a FUSE mount
// whose process has exited (killed, crashed) without unmounting.
func isDeadMount(err error) bool {
	return errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED)
}

func deadMountError(path string) error {
	return fmt.Errorf("mountpoint %s is a dead mount: the process that served it has exited (killed or crashed). "+
		"Clear it with: umount %s (or: fusermount3 -u %s; add -l, or -z, if it is busy), then mount again", path, path, path)
}

// checkFUSEDevice says why FUSE cannot be used when /dev/fuse cannot be
// opened, rather than letting fusermount3 fail with an exit code. A user
// other than root who may not open it can still mount through the setuid
// fusermount3, which opens it as root: that case is left to fusermount3.
func checkFUSEDevice(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	switch {
	case err == nil:
		return f.Close()
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s does not exist: load the fuse kernel module (modprobe fuse); in a container, pass the device (docker run --device /dev/fuse --cap-add SYS_ADMIN)", path)
	case errors.Is(err, os.ErrPermission):
		if _, lookErr := exec.LookPath("fusermount3"); os.Geteuid() != 0 && lookErr == nil {
			return nil
		}
		return fmt.Errorf("no access to %s (%v): FUSE needs to open it for reading and writing; run as root, install fuse3 (fusermount3), or in a container pass the device (docker run --device /dev/fuse --cap-add SYS_ADMIN)", path, rootCause(err))
	}
	return fmt.Errorf("cannot open %s: %v", path, rootCause(err))
}

func clientConfig(bucket string, c connection) s3client.Config {
	cfg := s3client.Config{
		Bucket:         bucket,
		Endpoint:       c.endpoint,
		Region:         c.region,
		Profile:        c.profile,
		ForcePathStyle: c.forcePathStyle,
		MaxAttempts:    c.maxRetries + 1,
		RequestTimeout: c.requestTimeout,
	}
	c.aws.apply(&cfg)
	return cfg
}

// checkBucket asks S3 whether the bucket is there and accessible, within a
// bounded time: an endpoint that does not answer fails, never hangs.
func checkBucket(ctx context.Context, o *options) error {
	cfg := clientConfig(o.bucket, o.conn)
	cfg.MaxAttempts = 2
	cfg.ConnectTimeout = 5 * time.Second
	cfg.IdleTimeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := s3client.New(ctx, cfg)
	if err != nil {
		return err
	}
	return describeBucketError(c.HeadBucket(ctx), o.bucket, o.conn)
}

// describeBucketError turns the error of a first request to the bucket
// into a one-line reason; nil stays nil.
func describeBucketError(err error, bucket string, conn connection) error {
	if err == nil {
		return nil
	}
	where := "AWS S3"
	if conn.endpoint != "" {
		where = conn.endpoint
	}
	var se *s3client.Error
	switch {
	case isNoCredentials(err):
		return fmt.Errorf("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "+
			"or give a profile of ~/.aws/credentials with --profile (the SDK said: %v)", rootCause(err))
	case errors.Is(err, s3client.ErrNotFound) || errors.Is(err, s3client.ErrNoSuchBucket):
		return fmt.Errorf("bucket %q does not exist at %s (NoSuchBucket)", bucket, where)
	case errors.Is(err, s3client.ErrAccessDenied):
		return fmt.Errorf("bucket %q is not accessible at %s: access denied (%s); check the credentials and the bucket policy", bucket, where, codeOr(err, "AccessDenied"))
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &se) && se.Status == 0:
		return fmt.Errorf("the S3 endpoint %s does not answer for bucket %q: %v", where, bucket, rootCause(err))
	}
	return fmt.Errorf("bucket %q is not accessible at %s: %v", bucket, where, err)
}

// isNoCredentials says whether the SDK could not find credentials in its
// default chain. The SDK has no error type for it: its signing step wraps
// the chain's failure in "get credentials" (aws-sdk-go-v2's
// aws/signer/v4 middleware). A sentinel decided in s3client (an
// ErrNoCredentials beside ErrAccessDenied) would replace this match.
func isNoCredentials(err error) bool {
	return strings.Contains(err.Error(), "get credentials:") || strings.Contains(err.Error(), "failed to refresh cached credentials")
}

func codeOr(err error, def string) string {
	if c := s3client.Code(err); c != "" {
		return c
	}
	return def
}

// rootCause is the innermost error, for a one-line message.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
