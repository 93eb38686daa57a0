package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/stage"
)

// cleanupOptions are the settings of bucketfs cleanup.
type cleanupOptions struct {
	bucket    string
	conn      connection
	prefix    string
	olderThan time.Duration
	dryRun    bool
	cacheDir  string // where crashed mounts' staged edits are swept (--cache-dir)
	help      bool
}

// defaultOlderThan spares the uploads live writers (this mount's or other
// clients') are still sending.
const defaultOlderThan = 24 * time.Hour

// cleanupConcurrency bounds the aborts sent at once.
const cleanupConcurrency = 8

func newCleanupFlags(o *cleanupOptions) *commandLine {
	o.olderThan = defaultOlderThan
	c := newCommandLine(false)
	g := c.group("Cleanup")
	g.add(&flagSpec{name: "prefix", arg: "P", value: stringValue{&o.prefix},
		usage: "only uploads of keys that start with P"})
	g.add(&flagSpec{name: "older-than", arg: "D", def: defaultOlderThan.String(), value: durationValue{&o.olderThan},
		usage: "abort only uploads started at least this long ago; 0s aborts every one, live writers' included"})
	g.add(&flagSpec{name: "dry-run", value: boolValue{&o.dryRun},
		usage: "list what would be aborted or removed, abort and remove nothing"})
	g.add(&flagSpec{name: "cache-dir", arg: "DIR", def: "$XDG_CACHE_HOME/bucketfs or ~/.cache/bucketfs", value: stringValue{&o.cacheDir},
		usage: "also remove the staged edits that mounts which ended without unmounting left there (lost+found), written more than --older-than ago; running mounts' are never touched"})
	addConnectionFlags(c, &o.conn)
	g = c.group("")
	g.add(&flagSpec{name: "help", short: "h", value: boolValue{&o.help}, usage: "print this help and exit"})
	return c
}

const cleanupHelpHeader = `Usage: bucketfs cleanup [flags] BUCKET

Aborts the incomplete multipart uploads of BUCKET started more than
--older-than ago, which frees the storage their parts take, and removes the
staged edits crashed mounts left in --cache-dir (never uploaded). A daemon that was
killed (kill -9, a crash, a power cut) leaves the upload of each file it was
writing incomplete; nothing aborts them at mount time, since another client's
upload may be live. A bucket lifecycle rule (AbortIncompleteMultipartUpload)
does the same on the server's side.
`

const cleanupHelpHint = "Usage: bucketfs cleanup [flags] BUCKET; bucketfs cleanup --help lists the flags."

// runCleanup is bucketfs cleanup. It exits 0 when every upload it meant to
// abort was aborted, 1 when the listing or an abort failed.
func runCleanup(args []string, stdout, stderr io.Writer) int {
	o := &cleanupOptions{}
	c := newCleanupFlags(o)
	positional, err := c.parse(args)
	switch {
	case err != nil:
		return fail(stderr, err, cleanupHelpHint)
	case o.help:
		c.printHelp(stdout, cleanupHelpHeader, "\nDurations: 30m, 24h, 168h.\n")
		return 0
	case len(positional) != 1:
		return fail(stderr, usagef("want BUCKET, got %d argument(s)", len(positional)), cleanupHelpHint)
	}
	o.bucket = positional[0]
	warnInsecure(o.conn.aws, nil, stderr)
	ctx := context.Background()
	client, err := s3client.New(ctx, clientConfig(o.bucket, o.conn))
	if err != nil {
		return fail(stderr, err, "")
	}
	store, err := newUploadStore(client)
	if err != nil {
		return fail(stderr, err, "")
	}
	sum, err := cleanup(ctx, store, o, stdout, time.Now)
	fmt.Fprintln(stdout, sum)
	if err != nil {
		return fail(stderr, describeBucketError(err, o.bucket, o.conn), "")
	}
	staged := sweepStage(o, stdout, time.Now())
	if sum.failed > 0 || staged > 0 {
		fmt.Fprintf(stderr, "bucketfs: %d upload(s) could not be aborted and %d staged file(s) not removed; run bucketfs cleanup again\n", sum.failed, staged)
		return 1
	}
	return 0
}

// sweepStage removes the leftovers of crashed mounts in o.cacheDir (stage
// package), printing a line for each and a summary, and returns how many
// could not be removed.
func sweepStage(o *cleanupOptions, out io.Writer, now time.Time) (failed int) {
	dir := o.cacheDir
	if dir == "" {
		dir = bfs.DefaultCacheDir()
	}
	var found, removed, kept int
	err := stage.Sweep(dir, o.olderThan, o.dryRun, now, func(l stage.Leftover, gone bool, err error) {
		found++
		what := fmt.Sprintf("staged edit of %q (%s, %d bytes, written %s ago)", l.Key, l.Path, l.Size, now.Sub(l.Modified).Truncate(time.Second))
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(out, "failed  %s: %v\n", what, err)
		case !gone:
			kept++
			fmt.Fprintf(out, "kept    %s\n", what)
		case o.dryRun:
			removed++
			fmt.Fprintf(out, "would remove %s\n", what)
		default:
			removed++
			fmt.Fprintf(out, "removed %s\n", what)
		}
	})
	if err != nil {
		fmt.Fprintf(out, "staged edits in %s: %v\n", dir, err)
		return failed + 1
	}
	if o.dryRun {
		fmt.Fprintf(out, "staged edits in %s: found %d, would remove %d, kept %d (dry run: nothing removed)\n", dir, found, removed, kept)
	} else {
		fmt.Fprintf(out, "staged edits in %s: found %d, removed %d, kept %d, failed %d\n", dir, found, removed, kept, failed)
	}
	return failed
}

// incompleteUpload is a multipart upload that was started and neither
// completed nor aborted.
type incompleteUpload struct {
	key, uploadID string
	initiated     time.Time
}

// uploadStore is what cleanup needs of S3.
type uploadStore interface {
	// listIncompleteUploads calls each for every incomplete upload of a key
	// under prefix, and stops at each's first error.
	listIncompleteUploads(ctx context.Context, prefix string, each func(incompleteUpload) error) error
	abortUpload(ctx context.Context, key, uploadID string) error
}

// detailedUploadLister is the s3client method cleanup needs: the key and
// initiation time of every incomplete upload, page after page.
// s3client.API's ListMultipartUploads returns the upload IDs only, with
// which no upload can be aborted (an abort names the key) nor aged.
type detailedUploadLister interface {
	ListMultipartUploadsFunc(ctx context.Context, prefix string, fn func(key, uploadID string, initiated time.Time) error) error
}

// s3UploadStore is uploadStore on an s3client.Client.
type s3UploadStore struct {
	client *s3client.Client
	lister detailedUploadLister
}

func newUploadStore(c *s3client.Client) (uploadStore, error) {
	l, ok := any(c).(detailedUploadLister)
	if !ok {
		return nil, errors.New("this build of bucketfs cannot list the keys and start times of incomplete uploads " +
			"(s3client.Client has no ListMultipartUploadsFunc yet), so it cannot honour --older-than; nothing was aborted")
	}
	return s3UploadStore{client: c, lister: l}, nil
}

func (s s3UploadStore) listIncompleteUploads(ctx context.Context, prefix string, each func(incompleteUpload) error) error {
	return s.lister.ListMultipartUploadsFunc(ctx, prefix, func(key, id string, initiated time.Time) error {
		return each(incompleteUpload{key: key, uploadID: id, initiated: initiated})
	})
}

func (s s3UploadStore) abortUpload(ctx context.Context, key, uploadID string) error {
	return s.client.AbortMultipartUpload(ctx, key, uploadID)
}

// cleanupSummary counts what cleanup saw and did.
type cleanupSummary struct {
	dryRun                       bool
	found, aborted, kept, failed int
}

func (s cleanupSummary) String() string {
	if s.dryRun {
		return fmt.Sprintf("found %d, would abort %d, kept %d (dry run: nothing aborted)", s.found, s.aborted, s.kept)
	}
	return fmt.Sprintf("found %d, aborted %d, kept %d, failed %d", s.found, s.aborted, s.kept, s.failed)
}

// cleanup lists the incomplete uploads under o.prefix and aborts those
// started at least o.olderThan before now (all of them for 0), printing a
// line for each to out. The error is the listing's; failed aborts are
// counted and printed.
func cleanup(ctx context.Context, store uploadStore, o *cleanupOptions, out io.Writer, now func() time.Time) (cleanupSummary, error) {
	sum := cleanupSummary{dryRun: o.dryRun}
	var mu sync.Mutex // guards sum and out from the abort workers
	printf := func(format string, args ...any) {
		fmt.Fprintf(out, format, args...)
	}
	where := "s3://" + o.bucket + "/" + o.prefix
	if o.dryRun {
		printf("listing incomplete multipart uploads in %s started more than %s ago (dry run)\n", where, o.olderThan)
	} else {
		printf("aborting incomplete multipart uploads in %s started more than %s ago\n", where, o.olderThan)
	}
	start := now()
	describe := func(u incompleteUpload) string {
		return fmt.Sprintf("%s (upload %s, started %s, %s ago)", u.key, u.uploadID,
			u.initiated.UTC().Format(time.RFC3339), start.Sub(u.initiated).Truncate(time.Second))
	}

	jobs := make(chan incompleteUpload)
	var workers sync.WaitGroup
	for i := 0; i < cleanupConcurrency; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for u := range jobs {
				actx, cancel := context.WithTimeout(ctx, time.Minute)
				err := store.abortUpload(actx, u.key, u.uploadID)
				cancel()
				mu.Lock()
				switch {
				case err == nil || errors.Is(err, s3client.ErrNoSuchUpload):
					// NoSuchUpload: completed or aborted meanwhile; gone either way.
					sum.aborted++
					printf("aborted %s\n", describe(u))
				default:
					sum.failed++
					printf("failed  %s: %v\n", describe(u), err)
				}
				mu.Unlock()
			}
		}()
	}
	// The whole bucket is listed and --prefix applied here: MinIO, among
	// others, reads ListMultipartUploads' prefix as an exact key
	// (minio/minio#20989), and a bucket's incomplete uploads are few.
	err := store.listIncompleteUploads(ctx, "", func(u incompleteUpload) error {
		if !strings.HasPrefix(u.key, o.prefix) {
			return nil
		}
		mu.Lock()
		sum.found++
		old := o.olderThan == 0 || start.Sub(u.initiated) >= o.olderThan
		switch {
		case !old:
			sum.kept++
			printf("kept    %s\n", describe(u))
		case o.dryRun:
			sum.aborted++
			printf("would abort %s\n", describe(u))
		}
		mu.Unlock()
		if old && !o.dryRun {
			select {
			case jobs <- u:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	close(jobs)
	workers.Wait()
	return sum, err
}
