package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bucketfs/bucketfs/uploader"
)

// options are the command line's settings.
type options struct {
	bucket, mountpoint string

	prefix         string
	foreground     bool
	endpoint       string
	region         string
	profile        string
	forcePathStyle bool
	readOnly       bool
	uid, gid       int64
	fileMode       uint32
	dirMode        uint32
	allowOther     bool
	logLevel       string
	logFile        string
	version        bool
	help           bool

	partSize          int64
	uploadMemory      int64
	uploadMemoryWait  time.Duration
	uploadConcurrency int
	metadataTTL       time.Duration
	exactAttrs        bool
	readAhead         int64
	maxRenameObjects  int
	debugFUSE         bool
}

// errHelp asks for usage and exit 0.
var errHelp = errors.New("help requested")

// newFlagSet declares every flag on o.
func newFlagSet(o *options, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bucketfs", flag.ContinueOnError)
	fs.SetOutput(out)
	o.uid, o.gid = -1, -1
	o.fileMode, o.dirMode = 0o644, 0o755
	o.partSize = uploader.DefaultPartSize
	o.uploadMemory = uploader.DefaultMemoryLimit
	fs.StringVar(&o.prefix, "prefix", "", "mount only the keys under this prefix (must end with /)")
	fs.BoolVar(&o.foreground, "foreground", false, "stay in the foreground; SIGINT or SIGTERM unmounts")
	fs.BoolVar(&o.foreground, "f", false, "short for --foreground")
	fs.StringVar(&o.endpoint, "endpoint-url", "", "S3 endpoint URL, for S3-compatible stores (default: AWS)")
	fs.StringVar(&o.region, "region", "", "AWS region (default: from the environment or profile, else us-east-1)")
	fs.StringVar(&o.profile, "profile", "", "AWS shared-config profile for credentials and settings")
	fs.BoolVar(&o.forcePathStyle, "force-path-style", false, "address the bucket in the path (needed by most S3-compatible stores)")
	fs.BoolVar(&o.readOnly, "read-only", false, "refuse every change with EROFS")
	fs.Int64Var(&o.uid, "uid", -1, "owner of files and directories (default: the mounting user)")
	fs.Int64Var(&o.gid, "gid", -1, "group of files and directories (default: the mounting user's group)")
	fs.Var(modeValue{&o.fileMode}, "file-mode", "permission bits of files without x-amz-meta-mode, octal")
	fs.Var(modeValue{&o.dirMode}, "dir-mode", "permission bits of directories, octal")
	fs.BoolVar(&o.allowOther, "allow-other", false, "let users other than the mounting user access the mount")
	fs.StringVar(&o.logLevel, "log-level", "info", "error, warn, info or debug")
	fs.StringVar(&o.logFile, "log-file", "", "write logs to this file (default: stderr in the foreground, syslog in the background)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVar(&o.help, "help", false, "print this help and exit")
	fs.BoolVar(&o.help, "h", false, "short for --help")
	fs.Var(sizeValue{&o.partSize}, "part-size", "size of the first parts of a multipart upload, 5MiB to 5GiB; later parts grow")
	fs.Var(sizeValue{&o.uploadMemory}, "upload-memory", "memory for the part buffers of all files being written together")
	fs.DurationVar(&o.uploadMemoryWait, "upload-memory-wait", uploader.DefaultMemoryWait, "how long a write waits for upload memory while none is released before it fails with ENOBUFS")
	fs.IntVar(&o.uploadConcurrency, "upload-concurrency", uploader.DefaultConcurrency, "parts uploaded at once, over all files")
	fs.DurationVar(&o.metadataTTL, "metadata-ttl", 5*time.Second, "how long names, attributes and listings are trusted without asking S3")
	fs.BoolVar(&o.exactAttrs, "exact-attrs", false, "show every object's x-amz-meta-* mode and mtime, not a listing's view, at one HEAD per object on its first stat")
	o.readAhead = 64 << 20
	fs.Var(sizeValue{&o.readAhead}, "read-ahead", "largest read-ahead window of a sequential reader")
	fs.IntVar(&o.maxRenameObjects, "max-rename-objects", 10000, "most objects one directory rename moves (more answers EXDEV)")
	fs.BoolVar(&o.debugFUSE, "debug-fuse", false, "log every FUSE request (very verbose)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: bucketfs [flags] BUCKET MOUNTPOINT\n\nMounts an S3 bucket as a directory. Credentials come from the AWS default chain\n(environment, shared config and credentials files, profile, SSO, instance metadata).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs reads the command line; flags may stand before, between and
// after the two positional arguments.
func parseArgs(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := newFlagSet(o, out)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			positional = append(positional, rest[1:]...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	if o.help {
		fs.Usage()
		return nil, errHelp
	}
	if o.version {
		return o, nil
	}
	if len(positional) != 2 {
		fs.Usage()
		return nil, fmt.Errorf("want BUCKET and MOUNTPOINT, got %d argument(s)", len(positional))
	}
	o.bucket, o.mountpoint = positional[0], positional[1]
	if err := o.check(); err != nil {
		fs.Usage()
		return nil, err
	}
	return o, nil
}

// check validates values that each flag alone cannot.
func (o *options) check() error {
	switch {
	case o.bucket == "":
		return errors.New("the bucket name is empty")
	case o.prefix != "" && !strings.HasSuffix(o.prefix, "/"):
		return fmt.Errorf("--prefix %q must end with /", o.prefix)
	case strings.HasPrefix(o.prefix, "/"):
		return fmt.Errorf("--prefix %q must not start with /", o.prefix)
	case o.partSize < uploader.MinPartSize || o.partSize > uploader.MaxPartSize:
		return fmt.Errorf("--part-size %s is outside 5MiB to 5GiB", formatSize(o.partSize))
	case o.uploadMemory < o.partSize:
		return fmt.Errorf("--upload-memory %s is smaller than --part-size %s", formatSize(o.uploadMemory), formatSize(o.partSize))
	case o.uploadMemoryWait <= 0:
		return fmt.Errorf("--upload-memory-wait must be positive")
	case o.uploadConcurrency < 1:
		return fmt.Errorf("--upload-concurrency must be at least 1")
	case o.metadataTTL < 0:
		return fmt.Errorf("--metadata-ttl must not be negative")
	case o.readAhead < 1<<20:
		return fmt.Errorf("--read-ahead must be at least 1MiB")
	case o.maxRenameObjects < 1:
		return fmt.Errorf("--max-rename-objects must be at least 1")
	case o.uid > 1<<32-1 || o.gid > 1<<32-1:
		return fmt.Errorf("--uid and --gid must fit in 32 bits")
	}
	switch o.logLevel {
	case "error", "warn", "info", "debug":
	default:
		return fmt.Errorf("--log-level %q: want error, warn, info or debug", o.logLevel)
	}
	return nil
}
