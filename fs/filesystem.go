// Package fs is bucketfs's FUSE layer: go-fuse node types for directories
// and files, their handles, and the one errno mapping (errno.go).
//
// Ownership: go-fuse calls every method on a goroutine of its own, so each
// node guards its mutable state with its own mutex (documented on the
// field). A file being written has exactly one writeHandle, which owns the
// file's uploader.Upload; the node points at it so that stat and listings
// show the current size. Read handles own their prefetch goroutines and
// stop them on release; directory handles own the fetch of their next
// listing page (listing.go) and stop it on release.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/bucketfs/bucketfs/cache"
	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/stage"
	"github.com/bucketfs/bucketfs/uploader"
)

// lookupResult is a cached answer to "what is this key": an entry or its
// absence. The cache keeps both for MetadataTTL; an absence is believed
// only for NegativeTTL after it was learned.
type lookupResult struct {
	attr  entryAttr
	found bool
	at    time.Time // when S3 said the key was absent (found is false)
}

// bucketFS is the state shared by every node of one mount.
type bucketFS struct {
	cfg    Config
	client s3client.API
	up     *uploader.Uploader
	core   *core.Core // the write semantics: sessions and commits
	stage  *stage.Dir // where files edited in place are staged; removed at close
	// draining is set at shutdown (Server.Drain): opens for writing and
	// creates answer EROFS while the open files finish.
	draining atomic.Bool
	log      *logrus.Logger
	started  time.Time

	// lookups caches HEAD+LIST answers by key (no trailing slash) for
	// MetadataTTL (an absence for NegativeTTL), so that stat-then-open asks
	// S3 once.
	lookups *cache.TTL[lookupResult]

	// reads is the one budget (Config.ReadMemory) for the blocks of every
	// read handle; it recycles full-size block buffers.
	reads *readBudget
	// blockCache holds blocks of objects read (Config.CacheMemory); nil
	// when it is off.
	blockCache *cache.Blocks

	warnMu sync.Mutex          // guards warned
	warned map[string]struct{} // keys already logged as unusable, bounded by maxWarned

	writersMu sync.Mutex           // guards writers
	writers   map[string]*fileNode // key -> file with an open upload

	pendingMu sync.Mutex                  // guards pending
	pending   map[pendingApplier]struct{} // nodes with attribute changes not yet in S3
}

// pendingApplier is a node holding attribute changes not yet in S3.
type pendingApplier interface {
	applyPending(ctx context.Context) error
}

const (
	maxWarned     = 10000
	readBlockSize = 8 << 20
)

func newBucketFS(cfg Config) (*bucketFS, error) {
	if cfg.Log == nil {
		cfg.Log = logrus.New()
		cfg.Log.SetOutput(io.Discard)
	}
	if cfg.MetadataTTL == 0 {
		cfg.MetadataTTL = DefaultMetadataTTL
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = DefaultNegativeTTL
	}
	if cfg.NegativeTTL > cfg.MetadataTTL {
		// An absence is never trusted longer than a presence.
		cfg.NegativeTTL = cfg.MetadataTTL
	}
	if cfg.ReadAhead == 0 {
		cfg.ReadAhead = DefaultReadAhead
	}
	if cfg.ReadMemory == 0 {
		cfg.ReadMemory = DefaultReadMemory
	}
	if cfg.MaxRenameObjects == 0 {
		cfg.MaxRenameObjects = DefaultMaxRenameObjects
	}
	if cfg.MultipartCopyThreshold == 0 || cfg.MultipartCopyThreshold > maxCopySize {
		cfg.MultipartCopyThreshold = maxCopySize
	}
	if cfg.FileMode == 0 {
		cfg.FileMode = 0o644
	}
	if cfg.DirMode == 0 {
		cfg.DirMode = 0o755
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("prefix %q must end with /", cfg.Prefix)
	}
	if cfg.Upload.Log == nil {
		cfg.Upload.Log = cfg.Log
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = DefaultCacheDir()
	}
	if cfg.CacheMaxSize == 0 {
		cfg.CacheMaxSize = DefaultCacheMaxSize
	}
	stageDir, err := stage.Open(cfg.CacheDir, cfg.CacheMaxSize, cfg.Log)
	if err != nil {
		return nil, err
	}
	cfg.Upload.SpillDir, cfg.Upload.SpillBound = stageDir.Path(), stageDir
	up, err := uploader.New(cfg.Client, cfg.Upload)
	if err != nil {
		stageDir.Close()
		return nil, err
	}
	lookups, err := cache.NewTTL[lookupResult](100000, cfg.MetadataTTL)
	if err != nil {
		stageDir.Close()
		return nil, err
	}
	var blockCache *cache.Blocks
	if cfg.CacheMemory > 0 {
		if blockCache, err = cache.NewBlocks(cfg.CacheMemory, readBlockSize); err != nil {
			lookups.Close()
			stageDir.Close()
			return nil, err
		}
	}
	b := &bucketFS{
		cfg:        cfg,
		client:     cfg.Client,
		up:         up,
		log:        cfg.Log,
		started:    time.Now(),
		lookups:    lookups,
		reads:      newReadBudget(cfg.ReadMemory),
		blockCache: blockCache,
		warned:     map[string]struct{}{},
		writers:    map[string]*fileNode{},
		pending:    map[pendingApplier]struct{}{},
	}
	b.stage = stageDir
	b.core = core.New(core.Config{Client: cfg.Client, Uploader: up, Copy: b.copyObject, Stage: stageDir, Log: cfg.Log})
	return b, nil
}

func (b *bucketFS) close() {
	b.applyAllPending()
	b.lookups.Close()
	if b.blockCache != nil {
		b.blockCache.Close()
	}
	if err := b.up.Close(); err != nil {
		b.log.WithError(err).Warn("closing the uploader")
	}
	if err := b.stage.Close(); err != nil {
		b.log.WithError(err).Warn("removing the stage directory")
	}
}

// warnOnce logs a problem with a key once per mount (bounded).
func (b *bucketFS) warnOnce(key, msg string, fields logrus.Fields) {
	b.warnMu.Lock()
	_, seen := b.warned[key]
	if !seen && len(b.warned) < maxWarned {
		b.warned[key] = struct{}{}
	}
	b.warnMu.Unlock()
	if !seen {
		b.log.WithFields(fields).WithField("key", key).Warn(msg)
	}
}

// warnFailed logs an S3 failure that a lookup or an open answers with an
// errno other than ENOENT (an outage, a hostile answer), so that every
// EIO has its cause in the log; an interrupted call (EINTR) is not one.
func (b *bucketFS) warnFailed(op, key string, err error) {
	if errno := core.Errno(err); errno == syscall.ENOENT || errno == syscall.EINTR {
		return
	}
	b.log.WithError(err).WithFields(logrus.Fields{"op": op, "key": key, "code": s3client.Code(err)}).Warn(op + " failed")
}

// noteExclusiveWrite logs, once, when an exclusive write (O_EXCL create,
// mkdir) had to use a HEAD check because the server refused a conditional
// write: two mounts racing within a request's time could then both win.
func (b *bucketFS) noteExclusiveWrite() {
	if cw, ok := b.client.(interface{ ConditionalWrites() bool }); ok && !cw.ConditionalWrites() {
		b.warnOnce("conditional-writes", "the S3 server does not support conditional writes (If-None-Match); O_EXCL and mkdir use a HEAD check, which is not race-free between mounts", logrus.Fields{"op": "create"})
	}
}

// validName says whether a key segment can be a file name: not empty, not
// "." or "..", at most 255 bytes, and made of characters XML 1.0 can carry
// (so no NUL). S3 speaks XML: a key holding U+0001 can be stored, but a
// listing that does not url-encode it fails, and DeleteObjects cannot name
// it, so such a key is hidden like the other impossible names.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && len(s) <= 255 && xmlCarries(s)
}

// xmlCarries says whether s is UTF-8 made only of characters XML 1.0
// allows: tab, newline, carriage return, and U+0020 to U+10FFFF without
// the surrogates, U+FFFE and U+FFFF.
func xmlCarries(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20, r >= 0xD800 && r < 0xE000, r == 0xFFFE, r == 0xFFFF:
			return false
		}
	}
	return true
}

// lookupKey answers what key is: a directory (some key lies under key/), a
// file (an object key), or nothing, and then since when S3 has said so. It
// costs at most one HeadObject and one ListObjectsV2, run concurrently; an
// entry is cached for MetadataTTL, an absence for NegativeTTL.
func (b *bucketFS) lookupKey(ctx context.Context, key string) (entryAttr, time.Time, error) {
	if r, ok := b.lookups.Get(key); ok {
		if r.found {
			return r.attr, time.Time{}, nil
		}
		if time.Since(r.at) < b.cfg.NegativeTTL {
			return entryAttr{}, r.at, syscall.ENOENT
		}
	}
	asked := time.Now()
	type headResult struct {
		info *s3client.ObjectInfo
		err  error
	}
	headc := make(chan headResult, 1)
	go func() {
		info, err := b.client.Head(ctx, key)
		headc <- headResult{info, err}
	}()
	page, listErr := b.client.List(ctx, key+"/", "/", "", 1)
	head := <-headc

	isDir := listErr == nil && (len(page.Objects) > 0 || len(page.CommonPrefixes) > 0)
	switch {
	case isDir:
		if head.err == nil {
			b.warnOnce(key, "a file and a directory share this name; showing the directory", logrus.Fields{"op": "lookup"})
		}
		a := entryAttr{isDir: true, uid: -1, gid: -1}
		a.marker = len(page.Objects) > 0 && page.Objects[0].Key == key+"/"
		// Without a marker (it would be listed first) the directory has
		// the defaults: known, no HEAD needed for them.
		a.fromHead = !a.marker
		b.lookups.Set(key, lookupResult{attr: a, found: true})
		return a, time.Time{}, nil
	case listErr != nil:
		b.warnFailed("lookup", key, listErr)
		return entryAttr{}, time.Time{}, listErr
	case head.err == nil:
		a := attrFromHead(head.info)
		a.isDir = legacyDirObject(head.info)
		b.lookups.Set(key, lookupResult{attr: a, found: true})
		return a, time.Time{}, nil
	case s3client.Code(head.err) == "NotFound" || isNotFound(head.err):
		b.lookups.Set(key, lookupResult{at: asked})
		return entryAttr{}, asked, syscall.ENOENT
	default:
		b.warnFailed("lookup", key, head.err)
		return entryAttr{}, time.Time{}, head.err
	}
}

func isNotFound(err error) bool { return core.Errno(err) == syscall.ENOENT }

// forget drops what the caches know of key, after a change through this mount.
func (b *bucketFS) forget(key string) {
	b.lookups.Delete(key)
}

// remember records key's attributes after a change through this mount.
func (b *bucketFS) remember(key string, a entryAttr) {
	b.lookups.Set(key, lookupResult{attr: a, found: true})
}

// writersUnder returns the files with an open upload directly under prefix.
func (b *bucketFS) writersUnder(prefix string) map[string]*fileNode {
	b.writersMu.Lock()
	defer b.writersMu.Unlock()
	out := map[string]*fileNode{}
	for k, n := range b.writers {
		if rest, ok := strings.CutPrefix(k, prefix); ok && rest != "" && !strings.Contains(rest, "/") {
			out[rest] = n
		}
	}
	return out
}

func (b *bucketFS) addWriter(key string, n *fileNode) {
	b.writersMu.Lock()
	b.writers[key] = n
	b.writersMu.Unlock()
}

func (b *bucketFS) removeWriter(key string, n *fileNode) {
	b.writersMu.Lock()
	if b.writers[key] == n {
		delete(b.writers, key)
	}
	b.writersMu.Unlock()
}

func (b *bucketFS) addPending(f pendingApplier) {
	b.pendingMu.Lock()
	b.pending[f] = struct{}{}
	b.pendingMu.Unlock()
}

func (b *bucketFS) removePending(f pendingApplier) {
	b.pendingMu.Lock()
	delete(b.pending, f)
	b.pendingMu.Unlock()
}

// applyAllPending writes every pending attribute change, at unmount.
func (b *bucketFS) applyAllPending() {
	b.pendingMu.Lock()
	files := make([]pendingApplier, 0, len(b.pending))
	for f := range b.pending {
		files = append(files, f)
	}
	b.pendingMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, f := range files {
		_ = f.applyPending(ctx) // logged there
	}
}

// maxCopySize is the largest object one CopyObject may copy.
const maxCopySize = 5 << 30

// copyPartSize is the part size of a multipart copy.
const copyPartSize = 512 << 20

// copyConcurrency bounds the UploadPartCopy requests of one multipart copy.
const copyConcurrency = 8

// copyObject copies src to dst on the server: one CopyObject up to 5 GiB,
// a parallel multipart copy (UploadPartCopy) above. It returns the new
// object's ETag, so that a later listing is recognised as the same object.
//
// The copy keeps the source's headers (Content-Type and the other Content-*
// headers, Expires, storage class, encryption), metadata and tags. Callers
// pass the headers they know (opts.Headers, from a HEAD or this mount's own
// write); without them, and for a multipart copy without the metadata, one
// HeadObject of src reads them first. A multipart copy reads the tags too
// (GetObjectTagging), when the HEAD says there are any.
func (b *bucketFS) copyObject(ctx context.Context, src, dst string, size int64, opts s3client.CopyOptions) (string, error) {
	multipart := size > maxCopySize || size > b.cfg.MultipartCopyThreshold
	meta := opts.ReplaceMetadata
	if opts.Headers == nil || multipart && meta == nil {
		info, err := b.client.Head(ctx, src)
		if err != nil {
			return "", err
		}
		if opts.Headers == nil {
			// Replacing the metadata with the source's, every header sent:
			// a COPY copy loses Expires on MinIO.
			opts.Headers = &info.Headers
			if meta == nil {
				opts.ReplaceMetadata = info.Metadata
			}
		}
		if meta == nil {
			meta = info.Metadata
		}
		size = info.Size
		multipart = size > maxCopySize || size > b.cfg.MultipartCopyThreshold
	}
	if !multipart {
		return b.client.Copy(ctx, src, dst, opts)
	}
	return b.multipartCopy(ctx, src, dst, size, s3client.PutOptions{Metadata: meta, Headers: *opts.Headers, CopiedParts: true})
}

// copyTags returns src's tags for a multipart copy, which S3 does not copy:
// none when headers say it has none; when reading them is refused, none
// and a warning: the copy goes on untagged rather than fail a rename.
func (b *bucketFS) copyTags(ctx context.Context, src string, headers s3client.ObjectHeaders) (map[string]string, error) {
	if headers.TagCount == 0 {
		return nil, nil
	}
	tags, err := b.client.Tags(ctx, src)
	if errors.Is(err, s3client.ErrAccessDenied) || errors.Is(err, s3client.ErrNotImplemented) {
		b.log.WithError(err).WithFields(logrus.Fields{"op": "copy", "key": src, "code": s3client.Code(err)}).Warn("cannot read the tags; the copy has none")
		return nil, nil
	}
	return tags, err
}

// multipartCopy copies src to dst with parallel UploadPartCopy requests
// into an upload created with putOpts (the source's metadata and headers).
func (b *bucketFS) multipartCopy(ctx context.Context, src, dst string, size int64, putOpts s3client.PutOptions) (string, error) {
	tags, err := b.copyTags(ctx, src, putOpts.Headers)
	if err != nil {
		return "", err
	}
	putOpts.Tags = tags
	id, err := b.client.CreateMultipartUpload(ctx, dst, putOpts)
	if err != nil {
		return "", err
	}
	partSize := int64(copyPartSize)
	for size/partSize >= 10000 {
		partSize *= 2
	}
	if size < partSize {
		partSize = size
	}
	n := int((size + partSize - 1) / partSize)
	if n == 0 {
		n = 1
	}
	parts := make([]s3client.CompletedPart, n)
	errs := make(chan error, n)
	forEach(n, copyConcurrency, func(i int) {
		first := int64(i) * partSize
		last := min(first+partSize, size) - 1
		p, err := b.client.UploadPartCopy(ctx, src, "", dst, id, int32(i+1), first, last)
		if err != nil {
			errs <- err
			return
		}
		parts[i] = p
	})
	close(errs)
	if err := <-errs; err != nil {
		b.abortUpload(dst, id)
		return "", err
	}
	etag, err := b.client.CompleteMultipartUpload(ctx, dst, id, parts, s3client.PutOptions{})
	if err != nil {
		b.abortUpload(dst, id)
		return "", err
	}
	return etag, nil
}

func (b *bucketFS) abortUpload(key, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.client.AbortMultipartUpload(ctx, key, id); err != nil {
		b.log.WithError(err).WithFields(logrus.Fields{"key": key, "upload_id": id, "op": "abort"}).Warn("abort failed; the upload's parts are left behind")
	}
}

// hasWritersUnder says whether a file under prefix (any depth) is being written.
func (b *bucketFS) hasWritersUnder(prefix string) bool {
	b.writersMu.Lock()
	defer b.writersMu.Unlock()
	for k := range b.writers {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
