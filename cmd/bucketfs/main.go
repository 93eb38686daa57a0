// Command bucketfs mounts an S3 bucket as a directory.
//
// It only turns flags into one fs.Config, checks what can be checked before
// mounting, and runs the mount in the foreground or as a background daemon.
// The filesystem itself lives in package fs.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	lsyslog "github.com/sirupsen/logrus/hooks/syslog"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/uploader"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// readyFDEnv names the inherited descriptor on which a background child
// reports "ok" or why it could not mount.
const readyFDEnv = "BUCKETFS_READY_FD"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	switch {
	case errors.Is(err, errHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "bucketfs: %v\n", err)
		return 2
	case o.version:
		fmt.Fprintf(stdout, "bucketfs %s\n", version)
		return 0
	}
	if err := checkMountpoint(o.mountpoint); err != nil {
		fmt.Fprintf(stderr, "bucketfs: %v\n", err)
		return 1
	}
	ctx := context.Background()
	if err := checkBucket(ctx, o); err != nil {
		fmt.Fprintf(stderr, "bucketfs: %v\n", err)
		return 1
	}
	if !o.foreground {
		if err := startDaemon(args); err != nil {
			fmt.Fprintf(stderr, "bucketfs: %v\n", err)
			return 1
		}
		return 0
	}
	if err := serve(ctx, o, stderr); err != nil {
		fmt.Fprintf(stderr, "bucketfs: %v\n", err)
		return 1
	}
	return 0
}

// checkMountpoint refuses a mountpoint that is missing, not a directory, or
// already a mount.
func checkMountpoint(path string) error {
	st, err := os.Stat(path)
	switch {
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
		return fmt.Errorf("mountpoint %s is already a mount (unmount it first: umount %s)", path, path)
	}
	return nil
}

func clientConfig(o *options) s3client.Config {
	return s3client.Config{
		Bucket:         o.bucket,
		Endpoint:       o.endpoint,
		Region:         o.region,
		Profile:        o.profile,
		ForcePathStyle: o.forcePathStyle,
	}
}

// checkBucket asks S3 whether the bucket is there and accessible, within a
// bounded time: an endpoint that does not answer fails, never hangs.
func checkBucket(ctx context.Context, o *options) error {
	cfg := clientConfig(o)
	cfg.MaxAttempts = 2
	cfg.ConnectTimeout = 5 * time.Second
	cfg.IdleTimeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := s3client.New(ctx, cfg)
	if err != nil {
		return err
	}
	err = c.HeadBucket(ctx)
	if err == nil {
		return nil
	}
	where := "AWS S3"
	if o.endpoint != "" {
		where = o.endpoint
	}
	var se *s3client.Error
	switch {
	case errors.Is(err, s3client.ErrNotFound) || errors.Is(err, s3client.ErrNoSuchBucket):
		return fmt.Errorf("bucket %q does not exist at %s (NoSuchBucket)", o.bucket, where)
	case errors.Is(err, s3client.ErrAccessDenied):
		return fmt.Errorf("bucket %q is not accessible at %s: access denied (%s); check the credentials and the bucket policy", o.bucket, where, codeOr(err, "AccessDenied"))
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &se) && se.Status == 0:
		return fmt.Errorf("the S3 endpoint %s does not answer for bucket %q: %v", where, o.bucket, rootCause(err))
	}
	return fmt.Errorf("bucket %q is not accessible at %s: %v", o.bucket, where, err)
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

// startDaemon runs this command again, detached, in the foreground mode,
// and waits until the child says the mount is live or why it is not.
func startDaemon(args []string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(self, append([]string{"--foreground"}, args...)...)
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("starting the background process: %w", err)
	}
	w.Close()
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	msg := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		msg <- strings.TrimSpace(string(b))
	}()
	select {
	case m := <-msg:
		if m == "ok" {
			return nil
		}
		if m == "" {
			m = "the background process exited before mounting"
		}
		return errors.New(m)
	case <-time.After(2 * time.Minute):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return errors.New("the background process did not mount within 2 minutes")
	}
}

// newLogger builds the logger: a file, stderr in the foreground, syslog
// (when there is one) in the background.
func newLogger(o *options, stderr io.Writer, background bool) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	level, _ := logrus.ParseLevel(o.logLevel)
	log.SetLevel(level)
	switch {
	case o.logFile != "":
		f, err := os.OpenFile(o.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("opening the log file: %w", err)
		}
		log.SetOutput(f)
	case background:
		log.SetOutput(io.Discard)
		if hook, err := lsyslog.NewSyslogHook("", "", syslog.LOG_DAEMON|syslog.LOG_INFO, "bucketfs"); err == nil {
			log.AddHook(hook)
		}
	default:
		log.SetOutput(stderr)
	}
	return log, nil
}

// serve mounts and serves until unmounted or signalled.
func serve(ctx context.Context, o *options, stderr io.Writer) error {
	var ready *os.File
	if fd := os.Getenv(readyFDEnv); fd != "" {
		ready = os.NewFile(3, "ready")
		os.Unsetenv(readyFDEnv)
	}
	report := func(err error) error {
		if ready != nil {
			if err != nil {
				fmt.Fprintln(ready, err.Error())
			} else {
				fmt.Fprintln(ready, "ok")
			}
			ready.Close()
			ready = nil
		}
		return err
	}
	log, err := newLogger(o, stderr, ready != nil)
	if err != nil {
		return report(err)
	}
	client, err := s3client.New(ctx, clientConfig(o))
	if err != nil {
		return report(err)
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	if o.uid >= 0 {
		uid = uint32(o.uid)
	}
	if o.gid >= 0 {
		gid = uint32(o.gid)
	}
	cfg := bfs.Config{
		Client:           client,
		Bucket:           o.bucket,
		Prefix:           o.prefix,
		ReadOnly:         o.readOnly,
		UID:              uid,
		GID:              gid,
		FileMode:         os.FileMode(o.fileMode),
		DirMode:          os.FileMode(o.dirMode),
		AllowOther:       o.allowOther,
		MetadataTTL:      o.metadataTTL,
		ExactAttrs:       o.exactAttrs,
		ReadAhead:        o.readAhead,
		MaxRenameObjects: o.maxRenameObjects,
		Upload: uploader.Config{
			PartSize:    o.partSize,
			MemoryLimit: o.uploadMemory,
			MemoryWait:  o.uploadMemoryWait,
			Concurrency: o.uploadConcurrency,
		},
		Log:       log,
		FUSEDebug: o.debugFUSE,
	}
	if o.metadataTTL == 0 {
		cfg.MetadataTTL = time.Nanosecond // zero means "default" in fs.Config
	}
	server, err := bfs.Mount(o.mountpoint, cfg)
	if err != nil {
		return report(err)
	}
	_ = report(nil)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for sig := range signals {
			log.WithField("signal", sig.String()).Info("unmounting")
			if err := server.Unmount(); err != nil {
				log.WithError(err).Error("unmount failed; still mounted")
			}
		}
	}()
	server.Wait()
	log.Info("unmounted")
	return nil
}
