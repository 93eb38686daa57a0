package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestOpsMetrics runs the daemon with --metrics-addr, writes a 20 MiB
// file, reads it and lists, and checks the scraped metrics: the request
// counts by operation agree with the --debug-s3 log (one line per attempt),
// the bytes each way cover the file, and the memory gauges show the budgets
// and what a file open for writing or reading holds.
func TestOpsMetrics(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)
	mnt := newMountpoint(t)
	addr := freeAddr(t)
	logPath := filepath.Join(t.TempDir(), "bucketfs.log")
	startOpsDaemon(t, srv, bucket, mnt, nil, "--metrics-addr", addr, "--debug-s3", "--log-file", logPath,
		"--upload-memory", "64MiB", "--read-memory", "32MiB")

	m := scrape(t, addr)
	if got := m[`bucketfs_upload_memory_limit_bytes`]; got != 64<<20 {
		t.Errorf("upload memory limit = %v, want 64MiB", got)
	}
	if got := m[`bucketfs_read_memory_limit_bytes`]; got != 32<<20 {
		t.Errorf("read memory limit = %v, want 32MiB", got)
	}

	// A file open for writing holds part memory until its close commits it.
	f, err := os.Create(filepath.Join(mnt, "open.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randomBytes(1, 3<<20)); err != nil {
		t.Fatal(err)
	}
	m = scrape(t, addr)
	if m[`bucketfs_upload_memory_bytes`] < 3<<20 || m[`bucketfs_uploads_in_flight`] != 1 {
		t.Errorf("with 3 MiB written and the file open: upload memory %v, uploads in flight %v",
			m[`bucketfs_upload_memory_bytes`], m[`bucketfs_uploads_in_flight`])
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	data := randomBytes(2, 20<<20)
	if err := os.WriteFile(filepath.Join(mnt, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A file leaves the writers at RELEASE, which the kernel sends after
	// close returned: wait for it.
	idle := func() bool {
		m = scrape(t, addr)
		return m[`bucketfs_upload_memory_bytes`] == 0 && m[`bucketfs_uploads_in_flight`] == 0 && m[`bucketfs_upload_parts_in_flight`] == 0
	}
	for end := time.Now().Add(5 * time.Second); !idle() && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	if !idle() {
		t.Errorf("after the closes: upload memory %v, uploads in flight %v, parts in flight %v",
			m[`bucketfs_upload_memory_bytes`], m[`bucketfs_uploads_in_flight`], m[`bucketfs_upload_parts_in_flight`])
	}

	// A reader part way through holds read-ahead blocks, within the budget.
	r, err := os.Open(filepath.Join(mnt, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	half := make([]byte, 10<<20)
	if _, err := io.ReadFull(r, half); err != nil {
		t.Fatal(err)
	}
	m = scrape(t, addr)
	if used := m[`bucketfs_read_memory_bytes`]; used <= 0 || used > 32<<20 {
		t.Errorf("read memory with a reader open = %v, want within (0, 32MiB]", used)
	}
	rest, err := io.ReadAll(r)
	r.Close()
	if err != nil || sha(append(half, rest...)) != sha(data) {
		t.Fatalf("read back: %v, %d bytes", err, len(half)+len(rest))
	}
	entries, err := os.ReadDir(mnt)
	if err != nil || len(entries) != 2 {
		t.Fatalf("ls: %v, %v", entries, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "missing")); !os.IsNotExist(err) {
		t.Fatalf("stat missing: %v", err)
	}

	// Every attempt is one debug line and one count; the daemon may still
	// be finishing a request when one of them is read, so compare until
	// they agree.
	var byOp, logged map[string]float64
	deadline := time.Now().Add(5 * time.Second)
	for {
		m = scrape(t, addr)
		byOp = requestsByOperation(m)
		logged = debugLogOps(t, logPath)
		if fmt.Sprint(byOp) == fmt.Sprint(logged) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fmt.Sprint(byOp) != fmt.Sprint(logged) {
		t.Errorf("requests by operation: metrics %v, debug log %v", byOp, logged)
	}
	for op, least := range map[string]float64{
		// 3 MiB is one PutObject; 20 MiB three parts (8 MiB, then larger).
		"PutObject": 1, "CreateMultipartUpload": 1, "UploadPart": 3, "CompleteMultipartUpload": 1, "GetObject": 1, "ListObjectsV2": 1,
	} {
		if byOp[op] < least {
			t.Errorf("%s requests = %v, want at least %v (all: %v)", op, byOp[op], least, byOp)
		}
	}
	for _, op := range []string{"PutObject", "CompleteMultipartUpload"} {
		if ok := m[`bucketfs_s3_requests_total{operation="`+op+`",outcome="ok"}`]; ok != 1 {
			t.Errorf("%s ok = %v, want 1", op, ok)
		}
	}
	if sent := m[`bucketfs_s3_sent_bytes_total`]; sent < 23<<20 {
		t.Errorf("sent %v bytes, want at least 23 MiB", sent)
	}
	if received := m[`bucketfs_s3_received_bytes_total`]; received < 20<<20 {
		t.Errorf("received %v bytes, want at least 20 MiB", received)
	}
	for op, least := range map[string]float64{
		"create": 1, "open": 1, "write": 20, "read": 20, "flush": 2, "release": 2, "readdirplus": 1, "lookup": 1,
	} {
		n := m[`bucketfs_fuse_operations_total{operation="`+op+`"}`]
		if n < least {
			t.Errorf("FUSE %s = %v, want at least %v", op, n, least)
		}
		if lat := m[`bucketfs_fuse_operation_duration_seconds_count{operation="`+op+`"}`]; lat != n {
			t.Errorf("FUSE %s latency observations %v, operations %v", op, lat, n)
		}
	}
	if n := m[`bucketfs_fuse_errors_total{errno="ENOENT"}`]; n < 1 {
		t.Errorf("ENOENT errors = %v, want at least 1 (the stat of a missing name)", n)
	}
	if n := m[`bucketfs_s3_request_duration_seconds_count{operation="UploadPart"}`]; n != byOp["UploadPart"] {
		t.Errorf("UploadPart latency observations %v, requests %v", n, byOp["UploadPart"])
	}
}

// freeAddr returns a 127.0.0.1 address with a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrape reads /metrics at addr: sample (name with its labels, as
// written) -> value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var requestSample = regexp.MustCompile(`^bucketfs_s3_requests_total\{operation="([^"]+)",outcome="[^"]+"\}$`)

// requestsByOperation sums bucketfs_s3_requests_total over outcomes.
func requestsByOperation(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if g := requestSample.FindStringSubmatch(k); g != nil {
			out[g[1]] += v
		}
	}
	return out
}

var debugOp = regexp.MustCompile(`msg="s3 request".* op=(\w+)`)

// debugLogOps counts the --debug-s3 lines of the log by operation.
func debugLogOps(t *testing.T, path string) map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if g := debugOp.FindStringSubmatch(line); g != nil {
			out[g[1]]++
		}
	}
	return out
}
