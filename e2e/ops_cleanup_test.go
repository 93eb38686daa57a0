package e2e

import (
	"context"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// unsupportedCleanup is what bucketfs cleanup says while s3client cannot
// list upload keys and start times (the method it needs is missing).
const unsupportedCleanup = "cannot list the keys and start times of incomplete uploads"

// TestOpsCleanup: bucketfs cleanup against MinIO. --dry-run aborts nothing,
// --older-than spares recent uploads, --prefix limits it, --older-than 0s
// aborts the rest; each run ends with its summary.
func TestOpsCleanup(t *testing.T) {
	srv := s3test.StartMinIO(t)
	bucket, c := srv.Bucket(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, key := range []string{"orphans/a.bin", "orphans/b.bin", "keep/c.bin"} {
		if _, err := c.CreateMultipartUpload(ctx, key, s3client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	remaining := func() int {
		ids, err := c.ListMultipartUploads(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return len(ids)
	}
	conn := []string{"--endpoint-url", srv.Endpoint, "--force-path-style", "--cache-dir", t.TempDir()}
	cleanup := func(args ...string) (string, int) {
		t.Helper()
		out, code := cli(t, srv, append(append([]string{"cleanup"}, args...), append(conn, bucket)...)...)
		if strings.Contains(out, unsupportedCleanup) {
			msg := "bucketfs cleanup needs s3client.Client.ListMultipartUploadsFunc (issue 13): " + strings.TrimSpace(out)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		return out, code
	}
	// lastLine is the uploads' summary (the staged edits' follows it).
	lastLine := func(out string) string {
		summary := ""
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.HasPrefix(l, "found ") {
				summary = l
			}
		}
		return summary
	}

	out, code := cleanup("--older-than", "0s", "--dry-run")
	if code != 0 || lastLine(out) != "found 3, would abort 3, kept 0 (dry run: nothing aborted)" || remaining() != 3 {
		t.Fatalf("dry run: exit %d, %d left:\n%s", code, remaining(), out)
	}
	if strings.Count(out, "\nwould abort ") != 3 {
		t.Fatalf("dry run lists no uploads:\n%s", out)
	}

	out, code = cleanup() // the default 24h spares uploads just started
	if code != 0 || lastLine(out) != "found 3, aborted 0, kept 3, failed 0" || remaining() != 3 {
		t.Fatalf("default bound: exit %d, %d left:\n%s", code, remaining(), out)
	}

	out, code = cleanup("--prefix", "orphans/", "--older-than", "0s")
	if code != 0 || lastLine(out) != "found 2, aborted 2, kept 0, failed 0" || remaining() != 1 {
		t.Fatalf("prefix: exit %d, %d left:\n%s", code, remaining(), out)
	}
	var aborted []string
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "aborted "); ok {
			aborted = append(aborted, strings.Fields(rest)[0])
		}
	}
	sort.Strings(aborted)
	if strings.Join(aborted, ",") != "orphans/a.bin,orphans/b.bin" {
		t.Fatalf("aborted %v:\n%s", aborted, out)
	}

	out, code = cleanup("--older-than", "0s")
	if code != 0 || lastLine(out) != "found 1, aborted 1, kept 0, failed 0" || remaining() != 0 {
		t.Fatalf("the rest: exit %d, %d left:\n%s", code, remaining(), out)
	}

	out, code = cli(t, srv, append([]string{"cleanup", "--older-than", "0s", "no-such-bucket-here"}, conn...)...)
	if code != 1 || !strings.Contains(out, `bucket "no-such-bucket-here" does not exist`) {
		t.Fatalf("missing bucket: exit %d: %s", code, out)
	}
}
