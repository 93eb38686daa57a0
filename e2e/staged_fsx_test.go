package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
// per seed, the exerciser in a child process (runFSXChild); make test's
// seeds are fixed (BUCKETFS_FSX_SEED, BUCKETFS_FSX_SEEDS and
// BUCKETFS_FSX_OPS run others).
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
			stop := m.watchdog(t, fsxLimit, fmt.Sprintf("fsx seed %d", seed))
			start := time.Now()
			final, err := runFSXChild(t, m.Dir, seed, ops)
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

// fsxChildEnv holds, in the environment of the test binary started by
// runFSXChild, the run (an fsxChildRun in JSON) it makes instead of
// running tests.
const fsxChildEnv = "BUCKETFS_E2E_FSX"

// fsxChildRun is one run of the exerciser in a child process.
type fsxChildRun struct {
	Dir   string // the directory the file is exercised in
	Seed  uint64
	Ops   int
	Final string // where the child writes the file's final bytes
}

// runFSXChild runs the exerciser on dir in a child process (the test
// binary again) and returns the file's final bytes; the child's summary is
// logged. Not in this process: a goroutine faulting on a mapping of the
// mount cannot be preempted, so a garbage collection here would wait for
// it while the page waits for the daemon, which waits for this process (its
// S3 requests go through the proxy here, its log through a pipe read
// here), and the watchdog's timer would stop with the rest: seed 1 hung so
// until go test's timeout in half the runs.
func runFSXChild(t *testing.T, dir string, seed uint64, ops int) ([]byte, error) {
	t.Helper()
	run := fsxChildRun{Dir: dir, Seed: seed, Ops: ops, Final: filepath.Join(t.TempDir(), "final")}
	spec, err := json.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	// The watchdog aborts the mount at fsxLimit, which ends the child's
	// calls; the deadline is for a child that would still not exit.
	ctx, cancel := context.WithTimeout(context.Background(), fsxLimit+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), fsxChildEnv+"="+string(spec))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("the exerciser's process: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(string(out)))
	return os.ReadFile(run.Final)
}

// fsxChild is the child's side of runFSXChild; it returns the exit code.
func fsxChild(spec string) int {
	var run fsxChildRun
	if err := json.Unmarshal([]byte(spec), &run); err != nil {
		fmt.Printf("%s=%q: %v\n", fsxChildEnv, spec, err)
		return 1
	}
	cfg := fsx.Defaults(run.Seed, run.Ops)
	cfg.Logf = func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	final, err := fsx.Run(dirFS(run.Dir), cfg)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if err := os.WriteFile(run.Final, final, 0o600); err != nil {
		fmt.Println(err)
		return 1
	}
	return 0
}
