package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/uploader"
)

// connection says how to reach a bucket; a mount and cleanup share it.
type connection struct {
	endpoint       string
	region         string
	profile        string
	forcePathStyle bool
	maxRetries     int           // retries of a failed S3 request (--max-retries)
	requestTimeout time.Duration // bound of every wait for S3 (--request-timeout)
	aws            awsOptions
}

// options are the settings of a mount, from flags and -o mount options.
type options struct {
	bucket, mountpoint string
	conn               connection

	prefix          string
	foreground      bool
	readOnly        bool
	uid, gid        int64 // -1: the mounting user's
	fileMode        uint32
	dirMode         uint32
	allowOther      bool
	logLevel        string
	logFile         string
	shutdownTimeout time.Duration
	version         bool
	help            bool

	partSize          int64
	uploadMemory      int64
	uploadMemoryWait  time.Duration
	uploadConcurrency int
	metadataTTL       time.Duration
	negativeTTL       time.Duration
	exactAttrs        bool
	readAhead         int64
	readMemory        int64
	cacheMemory       int64
	cacheDir          string // stage directory (--cache-dir); "" for the default
	cacheMaxSize      int64  // bound on the stage (--cache-max-size)
	directIO          bool
	maxRenameObjects  int
	contentTypes      []bfs.ContentTypeRule // --content-type, in order
	debugFUSE         bool
	debugS3           bool
	logFormat         string // text or json (--log-format)
	metricsAddr       string // host:port of the Prometheus endpoint; "" for none
}

// defaultShutdownTimeout is how long SIGTERM, SIGINT or an unmount with
// files still open waits for their uploads before the daemon exits anyway.
const defaultShutdownTimeout = 60 * time.Second

// errHelp says --help was asked for and printed: exit 0.
var errHelp = errors.New("help requested")

// usageError is a mistake on the command line: the command prints it with
// a one-line hint to --help and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// addConnectionFlags declares the flags that say how to reach S3.
func addConnectionFlags(c *commandLine, conn *connection) {
	g := c.group("Connection")
	g.add(&flagSpec{name: "endpoint-url", arg: "URL", def: "AWS", value: endpointValue{&conn.endpoint},
		usage: "S3 endpoint of an S3-compatible store (MinIO, Ceph, R2, ...), with http:// or https://"})
	g.add(&flagSpec{name: "region", arg: "R", def: "from the environment or profile, else us-east-1", value: stringValue{&conn.region},
		usage: "AWS region"})
	g.add(&flagSpec{name: "profile", arg: "NAME", def: "$AWS_PROFILE, else default", value: stringValue{&conn.profile},
		usage: "shared-config profile for credentials and settings"})
	g.add(&flagSpec{name: "force-path-style", value: boolValue{&conn.forcePathStyle},
		usage: "endpoint/bucket/key addressing (most S3-compatible stores need it)"})
	conn.maxRetries = s3client.DefaultMaxAttempts - 1
	conn.requestTimeout = s3client.DefaultRequestTimeout
	g.add(&flagSpec{name: "max-retries", arg: "N", def: fmt.Sprint(s3client.DefaultMaxAttempts - 1), value: intValue{&conn.maxRetries, 0},
		usage: "retries of a failed S3 request, with exponential backoff and jitter (0.5s, 1s, 2s, ... at most 20s)"})
	g.add(&flagSpec{name: "request-timeout", arg: "D", def: s3client.DefaultRequestTimeout.String(), value: durationValue{&conn.requestTimeout},
		usage: "how long an S3 request waits for an answer, and the whole bound of small requests (HEAD, LIST, DELETE), retries included"})
	addAccessFlags(g, &conn.aws)
}

// newMountFlags declares every flag of a mount on o, with its default.
func newMountFlags(o *options) *commandLine {
	o.uid, o.gid = -1, -1
	o.fileMode, o.dirMode = 0o644, 0o755
	o.logLevel = "info"
	o.logFormat = "text"
	o.shutdownTimeout = defaultShutdownTimeout
	o.partSize = uploader.DefaultPartSize
	o.uploadMemory = uploader.DefaultMemoryLimit
	o.uploadMemoryWait = uploader.DefaultMemoryWait
	o.uploadConcurrency = uploader.DefaultConcurrency
	o.metadataTTL = 5 * time.Second
	o.negativeTTL = time.Second
	o.readAhead = 64 << 20
	o.readMemory = 256 << 20
	o.maxRenameObjects = 10000

	c := newCommandLine(true)
	g := c.group("Mount")
	g.add(&flagSpec{name: "prefix", arg: "P/", value: stringValue{&o.prefix},
		usage: "mount only the keys under P/"})
	g.add(&flagSpec{name: "foreground", short: "f", value: boolValue{&o.foreground},
		usage: "stay attached; SIGINT or SIGTERM unmounts"})
	g.add(&flagSpec{name: "read-only", value: boolValue{&o.readOnly},
		usage: "refuse every change with EROFS (mount option: ro)"})
	g.add(&flagSpec{name: "uid", arg: "N", def: "the mounting user", value: idValue{&o.uid},
		usage: "owner of entries without x-amz-meta-uid"})
	g.add(&flagSpec{name: "gid", arg: "N", def: "the mounting user's group", value: idValue{&o.gid},
		usage: "group of entries without x-amz-meta-gid"})
	g.add(&flagSpec{name: "file-mode", arg: "MODE", def: "0644", value: modeValue{&o.fileMode},
		usage: "permission bits of files without x-amz-meta-mode, octal, at most 0777"})
	g.add(&flagSpec{name: "dir-mode", arg: "MODE", def: "0755", value: modeValue{&o.dirMode},
		usage: "permission bits of directories, octal, at most 0777"})
	g.add(&flagSpec{name: "allow-other", value: boolValue{&o.allowOther},
		usage: "let other users use the mount (non-root users need user_allow_other in /etc/fuse.conf)"})
	g.add(&flagSpec{name: "shutdown-timeout", arg: "D", def: "60s", value: durationValue{&o.shutdownTimeout},
		usage: "on SIGTERM, SIGINT or an unmount with files open, how long uploads in flight may take before the daemon exits anyway"})

	addConnectionFlags(c, &o.conn)

	g = c.group("Reading and metadata")
	g.add(&flagSpec{name: "metadata-ttl", arg: "D", def: "5s", value: durationValue{&o.metadataTTL},
		usage: "how long names, attributes and listings are trusted without asking S3"})
	g.add(&flagSpec{name: "negative-ttl", arg: "D", def: "1s", value: durationValue{&o.negativeTTL},
		usage: "how long a name seen as absent (by a lookup or a listing) stays absent without asking S3 again, at most --metadata-ttl: another client's new object shows within it"})
	g.add(&flagSpec{name: "exact-attrs", value: boolValue{&o.exactAttrs},
		usage: "show each object's stored mode and mtime (x-amz-meta-*) even right after a listing, at one HEAD per object on its first stat"})
	g.add(&flagSpec{name: "read-ahead", arg: "SIZE", def: "64MiB", value: sizeValue{&o.readAhead},
		usage: "largest read-ahead window of one sequential reader"})
	g.add(&flagSpec{name: "read-memory", arg: "SIZE", def: "256MiB", value: sizeValue{&o.readMemory},
		usage: "one budget for the read-ahead blocks of every open file; when it is spent readers fetch fewer blocks ahead instead of the process growing"})
	g.add(&flagSpec{name: "cache-memory", arg: "SIZE", def: "0 (off)", value: sizeValue{&o.cacheMemory},
		usage: "a cache of data read in the daemon, by object version, for --direct-io mounts: re-reading an unchanged file costs no GET while it holds it"})
	g.add(&flagSpec{name: "direct-io", value: boolValue{&o.directIO},
		usage: "read around the kernel's page cache: nothing is kept between opens (re-reads GET again unless --cache-memory) and no random read costs more than one GET; by default the page cache keeps an unchanged file's data across opens"})

	g = c.group("Writing")
	g.add(&flagSpec{name: "cache-dir", arg: "DIR", def: "$XDG_CACHE_HOME/bucketfs or ~/.cache/bucketfs", value: stringValue{&o.cacheDir},
		usage: "where files edited in place (appends, writes inside a file, truncations, reads while writing) are staged, holding only the ranges written or read; created 0700"})
	g.add(&flagSpec{name: "cache-max-size", arg: "SIZE", def: "10GiB", value: sizeValue{&o.cacheMaxSize},
		usage: "bound on the bytes staged in --cache-dir at once; a write that does not fit fails with ENOSPC"})
	g.add(&flagSpec{name: "part-size", arg: "SIZE", def: formatSize(uploader.DefaultPartSize), value: sizeValue{&o.partSize},
		usage: "first part size of multipart uploads, 5MiB to 5GiB; later parts grow"})
	g.add(&flagSpec{name: "upload-memory", arg: "SIZE", def: formatSize(uploader.DefaultMemoryLimit), value: sizeValue{&o.uploadMemory},
		usage: "one budget for the part buffers of every file being written; writers wait when it is spent"})
	g.add(&flagSpec{name: "upload-memory-wait", arg: "D", def: uploader.DefaultMemoryWait.String(), value: durationValue{&o.uploadMemoryWait},
		usage: "how long a write waits for upload memory while none is released before it fails with ENOBUFS"})
	g.add(&flagSpec{name: "upload-concurrency", arg: "N", def: fmt.Sprint(uploader.DefaultConcurrency), value: intValue{&o.uploadConcurrency, 1},
		usage: "parts uploaded at once, over all files"})
	g.add(&flagSpec{name: "max-rename-objects", arg: "N", def: "10000", value: intValue{&o.maxRenameObjects, 1},
		usage: "most objects one directory rename moves; more answers EXDEV (mv then copies itself)"})

	g.add(&flagSpec{name: "content-type", arg: "PATTERN=TYPE", value: contentTypeValue{&o.contentTypes},
		usage: "Content-Type of new objects whose name matches PATTERN, an extension (.log) or a glob on the base name ('*.gz'); repeatable, the first match wins, over the MIME tables (/etc/mime.types)"})
	addStorageFlags(g, &o.conn.aws)

	g = c.group("Logging")
	g.add(&flagSpec{name: "log-level", arg: "L", def: "info", value: stringValue{&o.logLevel},
		usage: "error, warn, info or debug"})
	g.add(&flagSpec{name: "log-format", arg: "F", def: "text", value: stringValue{&o.logFormat},
		usage: "text (key=value) or json (one JSON object a line)"})
	g.add(&flagSpec{name: "log-file", arg: "PATH", def: "stderr in the foreground, syslog in the background", value: stringValue{&o.logFile},
		usage: "where logs go; created 0600; SIGHUP reopens it (logrotate)"})
	g.add(&flagSpec{name: "debug-fuse", value: boolValue{&o.debugFUSE},
		usage: "log every FUSE request"})
	g.add(&flagSpec{name: "debug-s3", value: boolValue{&o.debugS3},
		usage: "log every S3 request (operation, key, status, bytes, latency, attempt, request ID; never a credential); implies --log-level debug"})
	g.add(&flagSpec{name: "metrics-addr", arg: "HOST:PORT", def: "off", value: stringValue{&o.metricsAddr},
		usage: "serve Prometheus metrics at http://HOST:PORT/metrics, without authentication: keep it on 127.0.0.1"})

	g = c.group("")
	g.add(&flagSpec{name: "version", value: boolValue{&o.version}, notOption: true, usage: "print the version and exit"})
	g.add(&flagSpec{name: "help", short: "h", value: boolValue{&o.help}, notOption: true, usage: "print this help and exit"})
	return c
}

const mountHelpHeader = `Usage: bucketfs [flags] BUCKET MOUNTPOINT
       mount -t fuse.bucketfs BUCKET MOUNTPOINT -o option,option=value
       bucketfs cleanup [flags] BUCKET        (bucketfs cleanup --help)

Mounts an S3 bucket as a directory. bucketfs returns once the mount is live
and serves it in the background; umount MOUNTPOINT ends it. Credentials come
from the AWS default chain (environment, shared config and credentials files,
--profile, SSO, instance metadata).
`

const mountHelpFooter = `
Flags may come before or after BUCKET and MOUNTPOINT. Every flag is also a
mount option (-o), its name written with _ for -: --metadata-ttl 1s is
-o metadata_ttl=1s, --read-only is -o read_only or -o ro. The generic options
mount(8) passes (rw, ro, dev, suid, exec, noatime, _netdev, nofail, x-systemd.*,
...) are accepted and ignored; bucketfs mounts are always nosuid and nodev.
Sizes: 8MiB, 512MiB, 1GiB (K/M/G binary, KB/MB/GB decimal) or bytes.
Durations: 500ms, 5s, 2m, 1h30m.
`

// mountHelpHint is the line printed under a command-line mistake.
const mountHelpHint = "Usage: bucketfs [flags] BUCKET MOUNTPOINT; bucketfs --help lists the flags."

// parseArgs reads a mount's command line. It prints --help to stdout and
// returns errHelp; in sloppy mode (mount -s) an unknown mount option is
// reported on stderr and ignored.
func parseArgs(args []string, stdout, stderr io.Writer, sloppy bool) (*options, error) {
	o := &options{}
	c := newMountFlags(o)
	c.sloppy = sloppy
	positional, err := c.parse(args)
	for _, w := range c.warnings {
		fmt.Fprintf(stderr, "bucketfs: %s\n", w)
	}
	if err != nil {
		return nil, err
	}
	if o.help {
		c.printHelp(stdout, mountHelpHeader, mountHelpFooter)
		return nil, errHelp
	}
	if o.version {
		return o, nil
	}
	if len(positional) != 2 {
		return nil, usagef("want BUCKET and MOUNTPOINT, got %d argument(s)", len(positional))
	}
	o.bucket, o.mountpoint = positional[0], positional[1]
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.logFile != "" {
		// The daemon reopens it on SIGHUP: keep the path it was given
		// meaning the same file, whatever the working directory.
		if abs, err := filepath.Abs(o.logFile); err == nil {
			o.logFile = abs
		}
	}
	return o, nil
}

// fsNegativeTTL is --negative-ttl for fs.Config, where zero means the
// default: 0 becomes a nanosecond, an absence never trusted.
func (o *options) fsNegativeTTL() time.Duration {
	if o.negativeTTL == 0 {
		return time.Nanosecond
	}
	return o.negativeTTL
}

// check validates values that each flag alone cannot.
func (o *options) check() error {
	switch {
	case o.bucket == "":
		return usagef("the bucket name is empty")
	case o.prefix != "" && !strings.HasSuffix(o.prefix, "/"):
		return usagef("--prefix %q must end with /", o.prefix)
	case strings.HasPrefix(o.prefix, "/"):
		return usagef("--prefix %q must not start with /", o.prefix)
	case o.partSize < uploader.MinPartSize || o.partSize > uploader.MaxPartSize:
		return usagef("--part-size %s is outside 5MiB to 5GiB", formatSize(o.partSize))
	case o.uploadMemory < o.partSize:
		return usagef("--upload-memory %s is smaller than --part-size %s", formatSize(o.uploadMemory), formatSize(o.partSize))
	case o.uploadMemoryWait <= 0:
		return usagef("--upload-memory-wait must be positive")
	case o.readAhead < 1<<20:
		return usagef("--read-ahead must be at least 1MiB")
	case o.readMemory < 8<<20:
		return usagef("--read-memory must be at least 8MiB (one read-ahead block)")
	case o.shutdownTimeout <= 0:
		return usagef("--shutdown-timeout must be positive")
	case o.conn.requestTimeout <= 0:
		return usagef("--request-timeout must be positive")
	}
	if err := o.conn.aws.check(); err != nil {
		return err
	}
	switch o.logLevel {
	case "error", "warn", "info", "debug":
	default:
		return usagef("--log-level %q: want error, warn, info or debug", o.logLevel)
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return usagef("--log-format %q: want text or json", o.logFormat)
	}
	if o.metricsAddr != "" {
		if _, port, err := net.SplitHostPort(o.metricsAddr); err != nil || port == "" {
			return usagef("--metrics-addr %q: want HOST:PORT, such as 127.0.0.1:9100", o.metricsAddr)
		}
	}
	return nil
}
