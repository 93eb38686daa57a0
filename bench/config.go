package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bucketfs/bucketfs/s3client/s3test"
	"github.com/bucketfs/bucketfs/uploader"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30

	// readBlockSize is bucketfs's read-ahead block (fs/filesystem.go); the
	// direct download fetches blocks of the same size.
	readBlockSize = 8 * mib
	// defaultReadAhead is bucketfs's --read-ahead default (fs.DefaultReadAhead).
	defaultReadAhead = 64 * mib
	// memoryOverhead is the fixed overhead of the bucketfs process beyond its
	// buffers that README "Limits" promises (Go runtime, SDK, FUSE buffers).
	memoryOverhead = 96 * mib
)

// latencyProfile is one network condition the proxy imposes.
type latencyProfile struct {
	Name           string        `json:"name"`
	FirstByteDelay time.Duration `json:"first_byte_delay_ns"`
	// BandwidthPerConn caps each connection, each direction (bytes/s; 0: none).
	BandwidthPerConn int64 `json:"bandwidth_per_conn"`
}

// benchConfig is one run's settings, read once from the environment.
type benchConfig struct {
	Quick    bool             `json:"quick"`
	Rounds   int              `json:"rounds"`
	Profiles []latencyProfile `json:"profiles"`
	Only     []string         `json:"only,omitempty"` // workload IDs to run; empty: all
	// Metrics adds, to W1 and W3, runs on a mount with --metrics-addr
	// (BENCH_METRICS=1), reported against the plain mount (metrics.go).
	Metrics bool `json:"metrics,omitempty"`

	// The mount's settings, passed explicitly to bucketfs and to the ceiling.
	PartSize          int64         `json:"part_size"`
	UploadMemory      int64         `json:"upload_memory"`
	UploadConcurrency int           `json:"upload_concurrency"`
	ReadAhead         int64         `json:"read_ahead"`
	ReadBlock         int64         `json:"read_block"`
	MetadataTTL       time.Duration `json:"metadata_ttl_ns"`
	// MountFlags are more bucketfs flags for every mount (BENCH_MOUNT_FLAGS),
	// to measure another setting in the same way, such as --direct-io.
	MountFlags []string `json:"mount_flags,omitempty"`

	SeqSize     int64 `json:"seq_size"`     // W1 write, W2 read, W6 object
	TarFiles    int   `json:"tar_files"`    // W3
	TarDirs     int   `json:"tar_dirs"`     // W3
	ListObjects int   `json:"list_objects"` // W4, in each of its two trees
	RsyncFiles  int   `json:"rsync_files"`  // W5
	RsyncMax    int64 `json:"rsync_max"`    // W5's largest file
	RandomReads int   `json:"random_reads"` // W6, of each size
	Writers     int   `json:"writers"`      // W7
	WriterSize  int64 `json:"writer_size"`  // W7, each

	Bucketfs string `json:"-"` // the binary
	MinIO    string `json:"-"`
	OutDir   string `json:"-"`
	Root     string `json:"-"`
}

// loadConfig builds the run's settings: full size, or QUICK=1's short run.
// BENCH_ROUNDS, BENCH_ONLY (e.g. W1,W4), BENCH_BANDWIDTH (the 20 ms
// profile's per-connection cap, e.g. 64MiB) and BENCH_MOUNT_FLAGS (more
// bucketfs flags, e.g. --direct-io) override the defaults;
// BENCH_METRICS=1 measures --metrics-addr on W1 and W3.
func loadConfig() (benchConfig, error) {
	c := benchConfig{
		Quick:             os.Getenv("QUICK") != "" && os.Getenv("QUICK") != "0",
		Rounds:            3,
		PartSize:          uploader.DefaultPartSize,
		UploadMemory:      uploader.DefaultMemoryLimit,
		UploadConcurrency: uploader.DefaultConcurrency,
		ReadAhead:         defaultReadAhead,
		ReadBlock:         readBlockSize,
		MetadataTTL:       5 * time.Second,
		SeqSize:           2 * gib,
		TarFiles:          2000,
		TarDirs:           100,
		ListObjects:       10000,
		RsyncFiles:        200,
		RsyncMax:          20 * mib,
		RandomReads:       200,
		Writers:           8,
		WriterSize:        256 * mib,
	}
	bandwidth := int64(64 * mib)
	if c.Quick {
		c.Rounds = 1
		c.SeqSize = 256 * mib
		c.TarFiles, c.TarDirs = 200, 10
		c.ListObjects = 1000
		c.RsyncFiles = 40
		c.RandomReads = 50
		c.WriterSize = 32 * mib
	}
	if v := os.Getenv("BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("BENCH_ROUNDS=%q: want a positive number", v)
		}
		c.Rounds = n
	}
	if v := os.Getenv("BENCH_ONLY"); v != "" {
		for _, w := range strings.Split(v, ",") {
			c.Only = append(c.Only, strings.ToUpper(strings.TrimSpace(w)))
		}
	}
	c.MountFlags = strings.Fields(os.Getenv("BENCH_MOUNT_FLAGS"))
	if v := os.Getenv("BENCH_METRICS"); v != "" && v != "0" {
		c.Metrics = true
	}
	if v := os.Getenv("BENCH_BANDWIDTH"); v != "" {
		n, err := parseSize(v)
		if err != nil {
			return c, fmt.Errorf("BENCH_BANDWIDTH: %w", err)
		}
		bandwidth = n
	}
	c.Profiles = []latencyProfile{
		{Name: "0ms"},
		{Name: "20ms", FirstByteDelay: 20 * time.Millisecond, BandwidthPerConn: bandwidth},
	}
	if c.SeqSize%c.PartSize != 0 || c.WriterSize%c.PartSize != 0 || c.WriterSize > c.SeqSize {
		return c, fmt.Errorf("sizes must be multiples of the part size, and a W7 writer at most the W1 size")
	}
	c.Root = s3test.ModuleRoot()
	if c.Root == "" {
		return c, fmt.Errorf("cannot find the module root")
	}
	c.Bucketfs = filepath.Join(c.Root, "bin", "bucketfs")
	if _, err := os.Stat(c.Bucketfs); err != nil {
		return c, fmt.Errorf("bucketfs binary: %w (run `make build`)", err)
	}
	c.MinIO = s3test.MinIOPath()
	if c.MinIO == "" {
		return c, fmt.Errorf("no MinIO binary (run `make bin/minio`)")
	}
	c.OutDir = filepath.Join(c.Root, "bench-results")
	return c, nil
}

// directIO says whether the mounts read around the page cache.
func (c benchConfig) directIO() bool {
	for _, f := range c.MountFlags {
		if f == "--direct-io" {
			return true
		}
	}
	return false
}

// selected says whether workload id runs.
func (c benchConfig) selected(id string) bool {
	if len(c.Only) == 0 {
		return true
	}
	for _, w := range c.Only {
		if w == id {
			return true
		}
	}
	return false
}

// parseSize reads 64MiB, 1GiB, 100MB or plain bytes.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", gib}, {"MiB", mib}, {"KiB", kib}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", gib}, {"M", mib}, {"K", kib}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseFloat(num, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return int64(n * float64(u.mult)), nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n, nil
}

// sizeFlag formats a size for a bucketfs flag.
func sizeFlag(n int64) string {
	switch {
	case n%gib == 0:
		return fmt.Sprintf("%dGiB", n/gib)
	case n%mib == 0:
		return fmt.Sprintf("%dMiB", n/mib)
	}
	return strconv.FormatInt(n, 10)
}
