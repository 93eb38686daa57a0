// Command demo starts and stops the local MinIO of `make demo`, with a
// bucket of sample files. It keeps its state in .demo/ (git-ignored).
//
//	go run ./e2e/demo start   # start MinIO (if not running) and load samples
//	go run ./e2e/demo stop    # stop the MinIO it started
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

const (
	stateDir = ".demo"
	bucket   = "demo"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: demo start|stop")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "start":
		err = start()
	case "stop":
		err = stop()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func pidFile() string { return filepath.Join(stateDir, "minio.pid") }

// runningPID returns the PID of the demo's MinIO if it is alive.
func runningPID() (int, bool) {
	b, err := os.ReadFile(pidFile())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "minio" {
		return 0, false
	}
	return pid, true
}

func start() error {
	for _, kv := range [][2]string{{"AWS_ACCESS_KEY_ID", s3test.AccessKey}, {"AWS_SECRET_ACCESS_KEY", s3test.SecretKey}, {"AWS_REGION", "us-east-1"}, {"AWS_EC2_METADATA_DISABLED", "true"}} {
		os.Setenv(kv[0], kv[1])
	}
	if err := os.MkdirAll(filepath.Join(stateDir, "data"), 0o755); err != nil {
		return err
	}
	endpoint := ""
	if _, ok := runningPID(); ok {
		b, err := os.ReadFile(filepath.Join(stateDir, "endpoint"))
		if err != nil {
			return err
		}
		endpoint = strings.TrimSpace(string(b))
		fmt.Printf("MinIO is already running at %s\n", endpoint)
	} else {
		bin := s3test.MinIOPath()
		if bin == "" {
			return errors.New("bin/minio is missing (make bin/minio)")
		}
		logf, err := os.OpenFile(filepath.Join(stateDir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer logf.Close()
		abs, _ := filepath.Abs(filepath.Join(stateDir, "data"))
		srv, err := s3test.StartDetached(bin, abs, logf)
		if err != nil {
			return err
		}
		endpoint = srv.Endpoint
		if err := os.WriteFile(pidFile(), []byte(strconv.Itoa(srv.PID())+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(stateDir, "endpoint"), []byte(endpoint+"\n"), 0o644); err != nil {
			return err
		}
		fmt.Printf("MinIO started at %s (PID %d)\n", endpoint, srv.PID())
	}
	env := fmt.Sprintf("export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\nexport AWS_REGION=us-east-1\nexport AWS_EC2_METADATA_DISABLED=true\nexport BUCKETFS_ENDPOINT=%s\n",
		s3test.AccessKey, s3test.SecretKey, endpoint)
	if err := os.WriteFile(filepath.Join(stateDir, "env"), []byte(env), 0o600); err != nil {
		return err
	}
	return seed(endpoint)
}

// seed creates the bucket and its sample files, once.
func seed(endpoint string) error {
	ctx := context.Background()
	c, err := s3client.New(ctx, s3client.Config{Bucket: bucket, Endpoint: endpoint, Region: "us-east-1", ForcePathStyle: true})
	if err != nil {
		return err
	}
	if err := c.HeadBucket(ctx); err != nil {
		if err := c.CreateBucket(ctx); err != nil {
			return err
		}
	}
	if _, err := c.Head(ctx, "README.txt"); err == nil {
		return nil // seeded before
	}
	small := map[string]string{
		"docs/guide.md":            "# A guide\n\nThis file is an S3 object, read through bucketfs.\n",
		"docs/notes/todo.txt":      "- try ls -l\n- try cp and rsync\n",
		"photos/2024/summer/a.txt": "a nested prefix is a directory\n",
		"photos/2024/winter/b.txt": "so is this one\n",
		"logs/app/2024-06-01.log":  strings.Repeat("INFO request served\n", 500),
		"logs/app/2024-06-02.log":  strings.Repeat("WARN slow request\n", 300),
		"empty-dir/":               "",
	}
	for k, v := range small {
		if _, err := c.Put(ctx, k, strings.NewReader(v), int64(len(v)), s3client.PutOptions{}); err != nil {
			return err
		}
	}
	for i, size := range []int{150 << 20, 120 << 20} {
		key := fmt.Sprintf("big/random-%dMiB.bin", size>>20)
		data := randomBytes(uint64(i+1), size)
		if _, err := c.Put(ctx, key, bytes.NewReader(data), int64(size), s3client.PutOptions{}); err != nil {
			return err
		}
		fmt.Printf("loaded %s\n", key)
	}
	readme := "bucketfs demo bucket: see docs/, photos/, logs/ and big/\n"
	_, err = c.Put(ctx, "README.txt", strings.NewReader(readme), int64(len(readme)), s3client.PutOptions{})
	return err
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed*7919))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func stop() error {
	pid, ok := runningPID()
	if !ok {
		fmt.Println("the demo's MinIO is not running")
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	os.Remove(pidFile())
	fmt.Printf("stopped MinIO (PID %d); its data stays in %s/data\n", pid, stateDir)
	return nil
}
