package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/bucketfs/bucketfs/s3client/s3test"
)

var (
	buildOnce sync.Once
	buildDir  string // removed by TestMain
	buildErr  error
)

// mmapChildEnv names the file the test binary, started as a child by
// mmapSHA, maps and hashes instead of running tests.
const mmapChildEnv = "BUCKETFS_E2E_MMAP"

// TestMain removes the binary built for the tests, and is the mmap child
// and the exerciser's child (staged_fsx_test.go).
func TestMain(m *testing.M) {
	if path := os.Getenv(mmapChildEnv); path != "" {
		os.Exit(mmapChild(path))
	}
	if spec := os.Getenv(fsxChildEnv); spec != "" {
		os.Exit(fsxChild(spec))
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// bucketfsBinary builds cmd/bucketfs once for the test run.
func bucketfsBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "bucketfs-e2e-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "bucketfs"), "./cmd/bucketfs")
		cmd.Dir = s3test.ModuleRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("building bucketfs: %v", buildErr)
	}
	return filepath.Join(buildDir, "bucketfs")
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// mmapSHA maps path (flags: syscall.MAP_SHARED or MAP_PRIVATE) in a child
// process and returns the SHA-256 of its bytes. Not in this process: a
// goroutine faulting on a mapping of our own mount cannot be preempted, so
// a garbage collection would wait for it while the mount's server, in this
// same process, waits for the collection.
func mmapSHA(t testing.TB, path string, flags int) string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), mmapChildEnv+"="+path, "BUCKETFS_E2E_MMAP_FLAGS="+strconv.Itoa(flags))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mmap of %s (flags %#x): %v\n%s", path, flags, err, out)
	}
	return strings.TrimSpace(string(out))
}

func mmapChild(path string) int {
	flags, _ := strconv.Atoi(os.Getenv("BUCKETFS_E2E_MMAP_FLAGS"))
	f, err := os.Open(path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, flags)
	if err != nil {
		fmt.Println("mmap:", err)
		return 1
	}
	defer syscall.Munmap(mem)
	fmt.Println(sha(mem))
	return 0
}
