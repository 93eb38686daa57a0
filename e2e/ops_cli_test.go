package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestOpsNewcomerMessages: what a new user's mistakes print. A bad value
// gives its reason and one line of hint (exit 2); missing credentials say
// so; a background mount that fails gives fusermount3's reason, not its
// exit code.
func TestOpsNewcomerMessages(t *testing.T) {
	requireFUSE(t)
	srv := s3test.StartMinIO(t)
	bucket, _ := srv.Bucket(t)
	mnt := newMountpoint(t)
	ep := []string{"--endpoint-url", srv.Endpoint, "--force-path-style"}

	for _, tc := range []struct {
		name   string
		args   []string
		reason string
	}{
		{"endpoint without scheme", []string{"--endpoint-url", strings.TrimPrefix(srv.Endpoint, "http://"), bucket, mnt},
			`bucketfs: --endpoint-url: "` + strings.TrimPrefix(srv.Endpoint, "http://") + `" has no scheme: write http://`},
		{"negative uid", append([]string{"--uid", "-5", bucket, mnt}, ep...), `bucketfs: --uid: "-5" is not a numeric ID`},
		{"setuid mode", append([]string{"--file-mode", "07777", bucket, mnt}, ep...), `bucketfs: --file-mode: "07777" has bits beyond 0777`},
		{"unknown flag", append([]string{"--cache-size", "1G", bucket, mnt}, ep...), "bucketfs: unknown flag --cache-size"},
		{"unknown mount option", append([]string{"-o", "ro,cache_size=1G", bucket, mnt}, ep...), `bucketfs: unknown mount option "cache_size"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := cli(t, srv, tc.args...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], tc.reason) || !strings.Contains(lines[1], "bucketfs --help") {
				t.Fatalf("exit %d, output %q; want exit 2, %q, then a one-line hint", code, out, tc.reason)
			}
			if isMounted(t, mnt) {
				t.Fatal("something was mounted")
			}
		})
	}

	t.Run("no credentials", func(t *testing.T) {
		home := t.TempDir()
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "HOME=") {
				env = append(env, kv)
			}
		}
		env = append(env, "HOME="+home, "AWS_EC2_METADATA_DISABLED=true",
			"AWS_CONFIG_FILE="+filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"))
		out, code := runBucketfsEnv(t, env, append([]string{bucket, mnt}, ep...)...)
		if code != 1 || !strings.Contains(out, "bucketfs: no AWS credentials found") {
			t.Fatalf("exit %d: %q", code, out)
		}
	})

	t.Run("background mount failure", func(t *testing.T) {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("setpriv (util-linux) is missing")
		}
		// Without CAP_SYS_ADMIN the daemon cannot mount by itself: go-fuse
		// falls back to fusermount3, which fails (it is no more privileged),
		// saying why on its stderr.
		args := append([]string{"--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", bucketfsBinary(t), bucket, mnt}, ep...)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "setpriv", args...)
		cmd.Env = append(os.Environ(), srv.Env()...)
		outb, err := cmd.CombinedOutput()
		out := string(outb)
		t.Cleanup(func() { unmountIfMounted(t, mnt) })
		if err == nil || !strings.Contains(out, "fusermount3: mount failed: Operation not permitted") || strings.Contains(out, "exited with code") {
			t.Fatalf("%v: %q; want fusermount3's own reason", err, out)
		}
		t.Logf("%s", strings.TrimSpace(out))
	})
}

// runBucketfsEnv runs the binary with exactly env; it returns the output
// and exit code.
func runBucketfsEnv(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bucketfsBinary(t), args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("bucketfs %v hung", args)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}
