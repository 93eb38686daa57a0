package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	lsyslog "github.com/sirupsen/logrus/hooks/syslog"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/uploader"
)

// newLogger builds the logger: a file (returned, for SIGHUP), stderr in
// the foreground, syslog (when there is one) in the background.
func newLogger(o *options, stderr io.Writer, background bool) (*logrus.Logger, *logFile, error) {
	log := logrus.New()
	if o.logFormat == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	}
	level, _ := logrus.ParseLevel(o.logLevel)
	if o.debugS3 {
		level = logrus.DebugLevel
	}
	log.SetLevel(level)
	switch {
	case o.logFile != "":
		f, err := openLogFile(o.logFile, false)
		if err != nil {
			return nil, nil, err
		}
		log.SetOutput(f)
		return log, f, nil
	case background:
		log.SetOutput(io.Discard)
		if hook, err := lsyslog.NewSyslogHook("", "", syslog.LOG_DAEMON|syslog.LOG_INFO, "bucketfs"); err == nil {
			log.AddHook(hook)
		}
	default:
		log.SetOutput(stderr)
	}
	return log, nil, nil
}

// mountConfig is the one fs.Config of a mount, from the options.
func mountConfig(o *options, client s3client.API, log *logrus.Logger) bfs.Config {
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
		NegativeTTL:      o.fsNegativeTTL(),
		ExactAttrs:       o.exactAttrs,
		ReadAhead:        o.readAhead,
		ReadMemory:       o.readMemory,
		CacheMemory:      o.cacheMemory,
		CacheDir:         o.cacheDir,
		CacheMaxSize:     o.cacheMaxSize,
		DirectIO:         o.directIO,
		MaxRenameObjects: o.maxRenameObjects,
		ContentTypes:     o.contentTypes,
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
	return cfg
}

// logSettings records what this mount runs with, for whoever reads the
// log later; no credential is among them (an endpoint's user info is cut).
func logSettings(log *logrus.Logger, o *options) {
	endpoint := o.conn.endpoint
	if u, err := url.Parse(endpoint); err == nil && u.User != nil {
		u.User = nil
		endpoint = u.String()
	}
	log.WithFields(logrus.Fields{
		"pid": os.Getpid(), "version": version, "bucket": o.bucket, "prefix": o.prefix, "mountpoint": o.mountpoint,
		"endpoint": endpoint, "region": o.conn.region, "read_only": o.readOnly, "metadata_ttl": o.metadataTTL.String(),
		"part_size": formatSize(o.partSize), "upload_memory": formatSize(o.uploadMemory),
		"upload_concurrency": o.uploadConcurrency, "shutdown_timeout": o.shutdownTimeout.String(),
	}).Info("starting")
}

// serve mounts and serves until the mount ends or the daemon is stopped.
func serve(ctx context.Context, o *options, stderr io.Writer) error {
	var ready *os.File
	if os.Getenv(readyFDEnv) != "" {
		ready = os.NewFile(3, "ready")
		os.Unsetenv(readyFDEnv)
	}
	background := ready != nil
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
	// A log written to a closed pipe must fail, not kill the daemon and
	// leave a dead mount behind.
	signal.Ignore(syscall.SIGPIPE)
	log, logs, err := newLogger(o, stderr, background)
	if err != nil {
		return report(err)
	}
	logSettings(log, o)
	setMemoryLimit(o, log)
	warnInsecure(o.conn.aws, log, nil)
	ccfg := clientConfig(o.bucket, o.conn)
	if o.debugS3 || log.IsLevelEnabled(logrus.DebugLevel) {
		ccfg.DebugLog = log.WithField("component", "s3")
	}
	var metrics *metricsServer
	if o.metricsAddr != "" {
		if metrics, err = startMetrics(o.metricsAddr, log); err != nil {
			return report(err)
		}
		defer metrics.Close()
		if ccfg.Metrics, err = s3client.NewMetrics(metrics.reg); err != nil {
			return report(err)
		}
	}
	client, err := s3client.New(ctx, ccfg)
	if err != nil {
		return report(err)
	}
	// Signals are caught from before the mount: one that arrives while it
	// is being made is handled once it is live, instead of killing the
	// process half-way and leaving a dead mount behind.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)
	// Resolved before mounting, so that no lookup of it is served by us.
	mountpoint := bfs.MountPath(o.mountpoint)
	mcfg := mountConfig(o, client, log)
	if metrics != nil {
		mcfg.ObserveOp = metrics.observeOp
	}
	server, err := bfs.Mount(mountpoint, mcfg)
	if err != nil {
		return report(err)
	}
	if metrics != nil {
		metrics.addMount(server)
	}
	if background {
		// The parent stops reading our stderr once we report: point it
		// at the log file, or nowhere.
		if err := detachStderr(logs); err != nil {
			log.WithError(err).Warn("redirecting stderr")
		}
	}
	_ = report(nil)
	if !background {
		if err := sdNotify("READY=1"); err != nil {
			log.WithError(err).Warn("notifying systemd")
		}
	}
	d := &daemon{
		server:     server,
		mountpoint: mountpoint,
		timeout:    o.shutdownTimeout,
		log:        log,
		logs:       logs,
		unmount:    unmountOrDetach,
	}
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	var unmounted <-chan struct{}
	if m, ok, _ := mountAt(d.mountpoint); ok {
		d.device = m.device
		unmounted = watchUnmount(m.device, stopWatch)
	}
	return d.run(signals, unmounted)
}

// detachStderr points descriptor 2 at the log file, or at /dev/null.
func detachStderr(logs *logFile) error {
	if logs != nil {
		logs.stderr = true
		return logs.Reopen()
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	return syscall.Dup3(int(devnull.Fd()), 2, 0)
}

// mountServer is what the daemon needs of a live mount.
type mountServer interface {
	// Wait blocks until the mount has ended and its resources are released
	// (pending attribute changes written).
	Wait()
}

// writeDrainer is a mount that accounts for its uploads at shutdown: Drain
// refuses new writes, waits until ctx ends for the files being written to
// be committed, then aborts the uploads of the rest, logging each, and
// returns their keys. fs.Server does not offer it yet (issue 13); until it
// does, a file still open at the deadline leaves an incomplete multipart
// upload behind, which bucketfs cleanup (or a lifecycle rule) removes.
type writeDrainer interface {
	Drain(ctx context.Context) []string
}

// errNotCommitted ends a daemon whose work was not done when the shutdown
// deadline passed: files still open for writing (or, rarely, attribute
// changes still being written at unmount, which fs logs).
var errNotCommitted = errors.New("stopped at the shutdown deadline with files still open: what they wrote since their last commit is not in S3")

// daemon is a live mount and the rules of its end.
type daemon struct {
	server     mountServer
	mountpoint string        // absolute
	device     string        // major:minor of the mount in the mount table; "" when not found
	timeout    time.Duration // --shutdown-timeout
	log        *logrus.Logger
	logs       *logFile // nil when logs do not go to a file
	// unmount unmounts the mountpoint, detaching it while files are open.
	unmount func(path string) (detached bool, err error)
}

// run serves until the mount ends. SIGHUP reopens the log file. SIGTERM
// and SIGINT, or an unmount by someone else (unmounted closes), stop the
// daemon: the mount is unmounted, or detached while files are open, so no
// new open reaches it; open files may finish and close until the timeout;
// then the daemon exits, whatever is still open. A second SIGTERM or SIGINT
// skips the rest of the wait.
func (d *daemon) run(signals <-chan os.Signal, unmounted <-chan struct{}) error {
	served := make(chan struct{})
	go func() { d.server.Wait(); close(served) }()

	var deadline <-chan time.Time
	var drained chan []string
	stop := func(why string) {
		if deadline != nil {
			return
		}
		deadline = time.After(d.timeout)
		_ = sdNotify("STOPPING=1")
		if dr, ok := d.server.(writeDrainer); ok {
			drained = make(chan []string, 1)
			reserve := min(5*time.Second, d.timeout/5)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), d.timeout-reserve)
				defer cancel()
				drained <- dr.Drain(ctx)
			}()
		}
		d.log.WithFields(logrus.Fields{"reason": why, "shutdown_timeout": d.timeout.String()}).Info("stopping")
	}
	for {
		select {
		case <-served:
			d.log.Info("unmounted")
			return nil

		case sig := <-signals:
			if sig == syscall.SIGHUP {
				d.reopenLog()
				continue
			}
			if deadline != nil {
				d.log.WithField("signal", sig.String()).Warn("second signal: not waiting for open files any longer")
				return d.abandon(drained)
			}
			stop(sig.String())
			detached, err := d.unmount(d.mountpoint)
			switch {
			case err != nil:
				d.log.WithError(err).Error("unmount failed")
			case detached:
				d.log.WithField("deadline", time.Now().Add(d.timeout).Format(time.RFC3339)).
					Warn("files are still open: the mount is detached (no new opens); waiting for them to close")
			}

		case <-unmounted:
			unmounted = nil
			stop("unmounted")

		case <-deadline:
			return d.abandon(drained)
		}
	}
}

// abandon ends a stop whose files did not all close in time.
func (d *daemon) abandon(drained chan []string) error {
	if drained != nil {
		select {
		case keys := <-drained:
			for _, k := range keys {
				d.log.WithField("key", k).Error("not committed: the file was still being written at shutdown; its upload was aborted")
			}
		default:
		}
	}
	// Exiting closes our FUSE connection: whatever is still open then
	// answers ENOTCONN, and no half-written file is committed. The mount
	// must be out of the table first, or it would stay behind dead.
	if mounts, err := readMounts(); err == nil && d.device != "" && hasDevice(mounts, d.device) {
		if _, err := d.unmount(d.mountpoint); err != nil {
			d.log.WithError(err).Error("unmount failed; the mount stays behind dead (umount it)")
		}
	}
	d.log.WithField("shutdown_timeout", d.timeout.String()).Error(errNotCommitted.Error() +
		" (uploads left incomplete are removed by bucketfs cleanup)")
	return errNotCommitted
}

func (d *daemon) reopenLog() {
	if d.logs == nil {
		d.log.Info("SIGHUP: no --log-file to reopen")
		return
	}
	if err := d.logs.Reopen(); err != nil {
		d.log.WithError(err).Error("SIGHUP: reopening the log file failed; still writing to the old one")
		return
	}
	d.log.WithField("log_file", d.logs.path).Info("SIGHUP: reopened the log file")
}
