package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"8MiB", 8 << 20, true}, {"512mib", 512 << 20, true}, {"1GiB", 1 << 30, true}, {"1048576", 1 << 20, true},
		{"5M", 5 << 20, true}, {"2G", 2 << 30, true}, {"1KB", 1000, true}, {"1.5GiB", 3 << 29, true}, {"10 MiB", 10 << 20, true},
		{"", 0, false}, {"MiB", 0, false}, {"-1MiB", 0, false}, {"8XB", 0, false}, {"99999999999TiB", 0, false},
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		check   func(*options) bool
	}{
		{"flags before", []string{"--read-only", "--part-size", "16MiB", "b", "/m"}, "", func(o *options) bool {
			return o.readOnly && o.partSize == 16<<20 && o.bucket == "b" && o.mountpoint == "/m"
		}},
		{"interspersed", []string{"b", "-f", "/m", "--uid=7", "--file-mode", "600", "--metadata-ttl", "1m"}, "", func(o *options) bool {
			return o.foreground && o.uid == 7 && o.fileMode == 0o600 && o.metadataTTL == time.Minute && o.mountpoint == "/m"
		}},
		{"defaults", []string{"b", "/m"}, "", func(o *options) bool {
			return o.partSize == 8<<20 && o.uploadMemory == 512<<20 && o.uploadMemoryWait == 30*time.Second && o.uploadConcurrency == 16 && o.fileMode == 0o644 && o.dirMode == 0o755 && !o.foreground && !o.exactAttrs
		}},
		{"upload memory wait", []string{"b", "/m", "--upload-memory-wait", "2m"}, "", func(o *options) bool { return o.uploadMemoryWait == 2*time.Minute }},
		{"upload memory wait zero", []string{"--upload-memory-wait=0s", "b", "/m"}, "--upload-memory-wait must be positive", nil},
		{"upload memory wait bad", []string{"--upload-memory-wait", "forever", "b", "/m"}, "invalid", nil},
		{"exact attributes", []string{"--exact-attrs", "b", "/m"}, "", func(o *options) bool { return o.exactAttrs }},
		{"unknown flag", []string{"--bogus", "b", "/m"}, "not defined", nil},
		{"bad size", []string{"--part-size", "lots", "b", "/m"}, "not a size", nil},
		{"part too small", []string{"--part-size", "1MiB", "b", "/m"}, "outside 5MiB", nil},
		{"bad mode", []string{"--file-mode", "999", "b", "/m"}, "octal", nil},
		{"bad duration", []string{"--metadata-ttl", "soon", "b", "/m"}, "invalid", nil},
		{"one arg", []string{"b"}, "want BUCKET and MOUNTPOINT", nil},
		{"three args", []string{"b", "/m", "x"}, "want BUCKET and MOUNTPOINT", nil},
		{"prefix without slash", []string{"--prefix", "p", "b", "/m"}, "must end with /", nil},
		{"bad log level", []string{"--log-level", "loud", "b", "/m"}, "log-level", nil},
		{"memory below a part", []string{"--upload-memory", "4MiB", "b", "/m"}, "smaller than --part-size", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			o, err := parseArgs(tc.args, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(o) {
				t.Fatalf("parseArgs(%v) = %+v, %v", tc.args, o, err)
			}
		})
	}
}

// TestRunExitCodes: bad usage exits 2 with the usage; --version and --help exit 0.
func TestRunExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--nope", "b", "/m"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "Usage: bucketfs") {
		t.Fatalf("unknown flag: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "bucketfs ") {
		t.Fatalf("--version: exit %d, %q", code, out.String())
	}
	if code := run([]string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	if code := run([]string{"b", "/nonexistent-mountpoint-for-test"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "does not exist") {
		t.Fatalf("missing mountpoint: exit %d, %q", code, errb.String())
	}
}
