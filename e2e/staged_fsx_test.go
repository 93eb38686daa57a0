package e2e

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/internal/fsx"
)

// fsxLimit bounds one seed's run on the mount: past it the mount is
// aborted and the run fails as hung.
const fsxLimit = 3 * time.Minute

// TestStagedFSX runs the randomized exerciser (package internal/fsx) on
// the mount: pwrite, pread, O_APPEND writes, ftruncate up and down, fsync,
// close and reopen, shared mappings read and written (msync), two or three
// descriptors at once, on a file of up to 24 MiB, each step checked
// against the model. The file must then hold the model's bytes after an
// unmount and remount, and so must its object in S3. A daemon of its own
// per seed; make test's seeds are fixed (BUCKETFS_FSX_SEED,
// BUCKETFS_FSX_SEEDS and BUCKETFS_FSX_OPS run others).
func TestStagedFSX(t *testing.T) {
	seeds, ops, err := fsx.Plan(fsxFixedSeeds, 300)
	if err != nil {
		t.Fatal(err)
	}
	srv := stagedServer(t)
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			m := newStagedMount(t, srv)
			cfg := fsx.Defaults(seed, ops)
			cfg.Logf = t.Logf
			stop := m.watchdog(t, fsxLimit, fmt.Sprintf("fsx seed %d", seed))
			start := time.Now()
			final, err := fsx.Run(dirFS(m.Dir), cfg)
			took := time.Since(start)
			if err != nil {
				t.Error(err)
				stop()
				t.FailNow()
			}
			cost := m.Counts()
			figures := m.figures(t)
			m.Remount(t)
			got, err := os.ReadFile(m.Path(cfg.Name))
			stop()
			if err != nil {
				t.Fatalf("reading %s after the remount: %v", cfg.Name, err)
			}
			if !bytes.Equal(got, final) {
				t.Errorf("after the remount %s holds %d bytes (sha %s); the model %d (sha %s)", cfg.Name, len(got), sha(got)[:12], len(final), sha(final)[:12])
			}
			if !m.local() {
				if obj := m.object(t, cfg.Name); !bytes.Equal(obj, final) {
					t.Errorf("object %s holds %d bytes (sha %s); the model %d (sha %s)", cfg.Name, len(obj), sha(obj)[:12], len(final), sha(final)[:12])
				}
			}
			t.Logf("seed %d: %d operations in %v; S3 %s; %s", seed, ops, took.Round(time.Millisecond), describeCounts(cost), figures)
		})
	}
}
