// Command bench is bucketfs's benchmark harness (`make bench`, `make bench
// QUICK=1`). It starts MinIO, puts an S3-aware proxy in front of it that
// adds latency and counts requests (bench/s3proxy), and runs each workload
// through a bucketfs mount and, where there is one, through the AWS SDK
// directly (the ceiling), alternating the two over several rounds at 0 ms
// and 20 ms. Results go to bench-results/ as JSON and markdown. See
// bench/README.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bucketfs/bucketfs/bench/s3proxy"
	bfs "github.com/bucketfs/bucketfs/fs"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// Buckets, one per family of workloads.
const (
	bucketWrite = "bench-write" // W1, W7
	bucketRead  = "bench-read"  // W2, W6
	bucketTar   = "bench-tar"   // W3
	bucketList  = "bench-list"  // W4
	bucketRsync = "bench-rsync" // W5
	// seqKey is the object W2 and W6 read: SeqPath uploaded at setup.
	seqKey = "seq.bin"
)

// profile is one latency profile's proxy and the ceiling client behind it.
type profile struct {
	latencyProfile
	proxy  *s3proxy.Proxy
	direct *directClient
}

// workload is one benchmark; run measures it at one profile, all rounds.
type workload struct {
	ID    string
	Title string
	run   func(r *runner, p *profile) ([]*result, error)
}

// workloads are run in this order.
func workloads() []workload {
	return []workload{
		{"W1", "sequential write (dd bs=1M)", (*runner).runW1},
		{"W2", "cold sequential read", (*runner).runW2},
		{"W3", "tar x of small files", (*runner).runW3},
		{"W4", "ls -l and find", (*runner).runW4},
		{"W5", "rsync -a and its no-op rerun", (*runner).runW5},
		{"W6", "random reads", (*runner).runW6},
		{"W7", "concurrent writers", (*runner).runW7},
	}
}

// runner holds everything one run shares; there is no package-level state.
type runner struct {
	cfg      benchConfig
	ctx      context.Context
	progress *progress
	work     string // temporary directory holding MinIO's data, inputs, mountpoints, logs
	minio    *s3test.Server
	setup    *directClient // straight to MinIO, for loading data
	profiles []*profile
	src      *sourceData
	started  time.Time
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &runner{cfg: cfg, ctx: ctx, progress: newProgress(os.Stderr), started: time.Now()}
	defer r.close()
	if err := r.start(); err != nil {
		return err
	}
	rep := &report{Config: cfg, Started: r.started, Host: hostInfo(cfg.Root)}
	for _, w := range workloads() {
		if !cfg.selected(w.ID) {
			continue
		}
		for _, p := range r.profiles {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", ctx.Err())
			}
			r.progress.printf("%s %s at %s", w.ID, w.Title, p.Name)
			start := time.Now()
			results, err := w.run(r, p)
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("interrupted during %s: %w", w.ID, ctx.Err())
				}
				r.progress.printf("%s at %s FAILED: %v", w.ID, p.Name, err)
				// Keep the rounds that completed; the row says what failed.
				if len(results) == 0 {
					results = []*result{{Workload: w.ID, Name: w.Title, Profile: p.Name}}
				}
				results[0].Err = err.Error()
			}
			for _, res := range results {
				res.summarize(cfg)
				r.progress.printf("  %s", res.line())
			}
			rep.Results = append(rep.Results, results...)
			r.progress.printf("%s at %s done in %.0fs", w.ID, p.Name, time.Since(start).Seconds())
		}
	}
	rep.Seconds = time.Since(r.started).Seconds()
	md, err := rep.write(cfg.OutDir)
	if err != nil {
		return err
	}
	fmt.Println(md)
	r.progress.printf("finished in %.0fs", rep.Seconds)
	if n := rep.failures(); n > 0 {
		return fmt.Errorf("%d workload run(s) failed; see the report", n)
	}
	return nil
}

// start brings up MinIO, the proxies, the clients and the inputs.
func (r *runner) start() error {
	var err error
	r.work, err = os.MkdirTemp(workParent(), "bucketfs-bench-")
	if err != nil {
		return fmt.Errorf("creating the work directory: %w", err)
	}
	logf, err := os.Create(filepath.Join(r.work, "minio.log"))
	if err != nil {
		return fmt.Errorf("creating the MinIO log: %w", err)
	}
	defer logf.Close()
	r.progress.printf("starting MinIO (%s), data in %s", r.cfg.MinIO, r.work)
	r.minio, err = s3test.Start(r.cfg.MinIO, filepath.Join(r.work, "minio"), logf)
	if err != nil {
		return fmt.Errorf("starting MinIO: %w", err)
	}
	// The setup client (s3client's default credential chain) reads these.
	for _, kv := range r.minio.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("setting %s: %w", k, err)
		}
	}
	for _, lp := range r.cfg.Profiles {
		px, err := s3proxy.Start(s3proxy.Config{Upstream: r.minio.Endpoint, FirstByteDelay: lp.FirstByteDelay, BandwidthPerConn: lp.BandwidthPerConn})
		if err != nil {
			return fmt.Errorf("starting the %s proxy: %w", lp.Name, err)
		}
		p := &profile{latencyProfile: lp, proxy: px}
		r.profiles = append(r.profiles, p)
		if p.direct, err = newDirectClient(r.ctx, px.URL, r.cfg); err != nil {
			return err
		}
	}
	if r.setup, err = newDirectClient(r.ctx, r.minio.Endpoint, r.cfg); err != nil {
		return err
	}
	for _, b := range []string{bucketWrite, bucketRead, bucketTar, bucketList, bucketRsync} {
		c, err := r.admin(b)
		if err != nil {
			return err
		}
		if err := c.CreateBucket(r.ctx); err != nil {
			return fmt.Errorf("creating bucket %s: %w", b, err)
		}
	}
	r.progress.printf("generating inputs in %s", r.work)
	if r.src, err = generate(r.ctx, r.cfg, filepath.Join(r.work, "src")); err != nil {
		return err
	}
	return r.load()
}

// load puts the objects the read and list workloads need.
func (r *runner) load() error {
	c := r.cfg
	if c.selected("W2") || c.selected("W6") {
		r.progress.printf("uploading the %d MiB object W2 and W6 read", c.SeqSize/mib)
		f, err := os.Open(r.src.SeqPath)
		if err != nil {
			return fmt.Errorf("opening the source: %w", err)
		}
		defer f.Close()
		etag, err := r.setup.upload(r.ctx, r.setup.newPartSlots(), bucketRead, seqKey, f, c.SeqSize)
		if err != nil {
			return fmt.Errorf("uploading %s: %w", seqKey, err)
		}
		if want := r.src.etag(c.SeqSize, c.PartSize); etag != want {
			return fmt.Errorf("uploaded %s has ETag %s, want %s", seqKey, etag, want)
		}
	}
	if c.selected("W4") {
		r.progress.printf("loading 2 x %d objects for W4", c.ListObjects)
		admin, err := r.admin(bucketList)
		if err != nil {
			return err
		}
		body := []byte("a small object listed by W4\n")
		if err := putMany(r.ctx, admin, c.ListObjects, func(i int) string { return fmt.Sprintf("flat/obj-%05d", i) }, body); err != nil {
			return err
		}
		dirs := max(1, c.ListObjects/100)
		if err := putMany(r.ctx, admin, c.ListObjects, func(i int) string { return fmt.Sprintf("tree/d-%03d/obj-%05d", i%dirs, i) }, body); err != nil {
			return err
		}
	}
	return nil
}

// admin returns a client of bucket straight to MinIO (no proxy), for
// setup and checks; it goes through bucketfs's s3client.
func (r *runner) admin(bucket string) (*s3client.Client, error) {
	c, err := s3client.New(r.ctx, r.minio.Config(bucket))
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", bucket, err)
	}
	return c, nil
}

// workParent picks where MinIO's data and the inputs live: BENCH_TMPDIR,
// else the system's temporary directory. (/dev/shm takes the disk out of
// the figures, but several GiB of tmpfs can push a small machine into
// memory stalls long enough for MinIO to take its drive offline.)
func workParent() string {
	if d := os.Getenv("BENCH_TMPDIR"); d != "" {
		return d
	}
	return os.TempDir()
}

// close stops what start started: proxies, MinIO, the work directory.
// Mounts are unmounted by the workloads that made them, however they end.
func (r *runner) close() {
	for _, p := range r.profiles {
		_ = p.proxy.Close()
	}
	if r.minio != nil {
		r.minio.Stop()
	}
	if r.work != "" {
		// Never delete through a mount that is still there: that would
		// delete objects in the bucket.
		entries, _ := os.ReadDir(filepath.Join(r.work, "mnt"))
		for _, e := range entries {
			dir := filepath.Join(r.work, "mnt", e.Name())
			if ok, err := bfs.IsMountpoint(dir); ok || err != nil {
				r.progress.printf("%s is still mounted (%v); leaving %s in place", dir, err, r.work)
				return
			}
		}
		r.keepLogs()
		if err := os.RemoveAll(r.work); err != nil {
			r.progress.printf("removing %s: %v", r.work, err)
		}
	}
}

// keepLogs copies the bucketfs logs that hold warnings or errors, and
// MinIO's log when it holds errors, to
// bench-results/bucketfs-logs-<timestamp>/ before the work directory goes.
func (r *runner) keepLogs() {
	logs, _ := filepath.Glob(filepath.Join(r.work, "logs", "*.log"))
	logs = append(logs, filepath.Join(r.work, "minio.log"))
	dest := filepath.Join(r.cfg.OutDir, "bucketfs-logs-"+r.started.UTC().Format("20060102-150405"))
	for _, p := range logs {
		if (&mount{LogPath: p}).warnings() == 0 && !fileContains(p, "Error:") {
			continue
		}
		data, err := os.ReadFile(p)
		if err == nil {
			err = os.MkdirAll(dest, 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dest, filepath.Base(p)), data, 0o644)
		}
		if err != nil {
			r.progress.printf("keeping %s: %v", p, err)
			return
		}
		r.progress.printf("log with warnings or errors kept: %s", filepath.Join(dest, filepath.Base(p)))
	}
}

func fileContains(path, s string) bool {
	data, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(data), s)
}

// progress writes timestamped progress lines.
type progress struct {
	w     io.Writer
	start time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

func (p *progress) printf(format string, args ...any) {
	fmt.Fprintf(p.w, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}
