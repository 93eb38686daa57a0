package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
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

func parse(args ...string) (*options, error) {
	return parseArgs(args, io.Discard, io.Discard, false)
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
		{"single dash long flags", []string{"-read-only", "-part-size=16MiB", "b", "/m"}, "", func(o *options) bool {
			return o.readOnly && o.partSize == 16<<20
		}},
		{"switch with value", []string{"--read-only=false", "--exact-attrs=true", "b", "/m"}, "", func(o *options) bool {
			return !o.readOnly && o.exactAttrs
		}},
		{"double dash ends flags", []string{"--", "cleanup", "/m"}, "", func(o *options) bool { return o.bucket == "cleanup" }},
		{"defaults", []string{"b", "/m"}, "", func(o *options) bool {
			return o.partSize == 8<<20 && o.uploadMemory == 512<<20 && o.uploadMemoryWait == 30*time.Second && o.uploadConcurrency == 16 &&
				o.fileMode == 0o644 && o.dirMode == 0o755 && !o.foreground && !o.exactAttrs && o.uid == -1 && o.gid == -1 &&
				o.shutdownTimeout == 60*time.Second && o.metadataTTL == 5*time.Second && o.readAhead == 64<<20 && o.readMemory == 256<<20 && o.cacheMemory == 0 && !o.directIO && o.maxRenameObjects == 10000
		}},
		{"shutdown timeout", []string{"--shutdown-timeout", "5s", "b", "/m"}, "", func(o *options) bool { return o.shutdownTimeout == 5*time.Second }},
		{"shutdown timeout zero", []string{"--shutdown-timeout", "0s", "b", "/m"}, "--shutdown-timeout must be positive", nil},
		{"upload memory wait", []string{"b", "/m", "--upload-memory-wait", "2m"}, "", func(o *options) bool { return o.uploadMemoryWait == 2*time.Minute }},
		{"upload memory wait zero", []string{"--upload-memory-wait=0s", "b", "/m"}, "--upload-memory-wait must be positive", nil},
		{"upload memory wait bad", []string{"--upload-memory-wait", "forever", "b", "/m"}, `--upload-memory-wait: "forever" is not a duration`, nil},
		{"exact attributes", []string{"--exact-attrs", "b", "/m"}, "", func(o *options) bool { return o.exactAttrs }},
		{"endpoint", []string{"--endpoint-url", "http://127.0.0.1:9000", "b", "/m"}, "", func(o *options) bool { return o.conn.endpoint == "http://127.0.0.1:9000" }},
		{"unknown flag", []string{"--bogus", "b", "/m"}, "unknown flag --bogus", nil},
		{"missing value", []string{"b", "/m", "--part-size"}, "--part-size needs a value", nil},
		{"bad size", []string{"--part-size", "lots", "b", "/m"}, `--part-size: "lots" is not a size`, nil},
		{"part too small", []string{"--part-size", "1MiB", "b", "/m"}, "outside 5MiB", nil},
		{"bad mode", []string{"--file-mode", "999", "b", "/m"}, "octal", nil},
		{"mode with setuid bits", []string{"--file-mode", "07777", "b", "/m"}, `--file-mode: "07777" has bits beyond 0777`, nil},
		{"dir mode with sticky bit", []string{"--dir-mode", "1777", "b", "/m"}, "bits beyond 0777", nil},
		{"negative uid", []string{"--uid", "-5", "b", "/m"}, `--uid: "-5" is not a numeric ID`, nil},
		{"uid too large", []string{"--gid", "4294967296", "b", "/m"}, "--gid", nil},
		{"uid name", []string{"--uid", "root", "b", "/m"}, "not a numeric ID", nil},
		{"endpoint without scheme", []string{"--endpoint-url", "127.0.0.1:9000", "b", "/m"}, `--endpoint-url: "127.0.0.1:9000" has no scheme: write http://127.0.0.1:9000`, nil},
		{"endpoint with another scheme", []string{"--endpoint-url", "s3://host", "b", "/m"}, "must be http or https", nil},
		{"endpoint without host", []string{"--endpoint-url", "http://", "b", "/m"}, "names no host", nil},
		{"bad duration", []string{"--metadata-ttl", "soon", "b", "/m"}, "not a duration", nil},
		{"negative duration", []string{"--metadata-ttl", "-1s", "b", "/m"}, "negative", nil},
		{"concurrency zero", []string{"--upload-concurrency", "0", "b", "/m"}, "--upload-concurrency: 0 is less than 1", nil},
		{"one arg", []string{"b"}, "want BUCKET and MOUNTPOINT", nil},
		{"three args", []string{"b", "/m", "x"}, "want BUCKET and MOUNTPOINT", nil},
		{"prefix without slash", []string{"--prefix", "p", "b", "/m"}, "must end with /", nil},
		{"bad log level", []string{"--log-level", "loud", "b", "/m"}, "log-level", nil},
		{"memory below a part", []string{"--upload-memory", "4MiB", "b", "/m"}, "smaller than --part-size", nil},
		{"read memory", []string{"-o", "read_memory=1GiB", "b", "/m"}, "", func(o *options) bool { return o.readMemory == 1<<30 }},
		{"cache", []string{"-o", "cache_memory=2GiB", "b", "/m"}, "", func(o *options) bool { return o.cacheMemory == 2<<30 }},
		{"direct I/O", []string{"-o", "direct_io", "b", "/m"}, "", func(o *options) bool { return o.directIO }},
		{"read memory below a block", []string{"--read-memory", "4MiB", "b", "/m"}, "--read-memory must be at least 8MiB", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if _, ok := err.(*usageError); !ok {
					t.Fatalf("err %v is not a usage error (exit 2)", err)
				}
				return
			}
			if err != nil || !tc.check(o) {
				t.Fatalf("parseArgs(%v) = %+v, %v", tc.args, o, err)
			}
		})
	}
}

// TestParseArgsLogFileAbsolute: the daemon reopens the log file on SIGHUP
// by the path it was given, made absolute once.
func TestParseArgsLogFileAbsolute(t *testing.T) {
	o, err := parse("--log-file", "x.log", "b", "/m")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(o.logFile) || filepath.Base(o.logFile) != "x.log" {
		t.Fatalf("log file %q", o.logFile)
	}
}

// TestMountOptions: every flag has an -o form under its long name with _
// for -, the generic options of mount(8) are accepted, ro and rw map to
// --read-only, and mistakes name the option.
func TestMountOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		check   func(*options) bool
	}{
		{"ro and values", []string{"b", "/m", "-o", "ro,metadata_ttl=1s,part_size=16MiB,uid=7,file_mode=0600"}, "", func(o *options) bool {
			return o.readOnly && o.metadataTTL == time.Second && o.partSize == 16<<20 && o.uid == 7 && o.fileMode == 0o600
		}},
		{"attached form", []string{"-oro,allow_other", "b", "/m"}, "", func(o *options) bool { return o.readOnly && o.allowOther }},
		{"equals form", []string{"-o=read_only", "b", "/m"}, "", func(o *options) bool { return o.readOnly }},
		{"dashes allowed", []string{"-o", "read-only,metadata-ttl=2s", "b", "/m"}, "", func(o *options) bool {
			return o.readOnly && o.metadataTTL == 2*time.Second
		}},
		{"rw after ro", []string{"-o", "ro", "-o", "rw", "b", "/m"}, "", func(o *options) bool { return !o.readOnly }},
		{"switch with value", []string{"-o", "read_only=false,force_path_style=true", "b", "/m"}, "", func(o *options) bool {
			return !o.readOnly && o.conn.forcePathStyle
		}},
		{"connection", []string{"-o", "endpoint_url=http://127.0.0.1:9000,region=eu-west-1,profile=backup", "b", "/m"}, "", func(o *options) bool {
			return o.conn.endpoint == "http://127.0.0.1:9000" && o.conn.region == "eu-west-1" && o.conn.profile == "backup"
		}},
		{"quoted comma", []string{"-o", `prefix="a,b/",ro`, "b", "/m"}, "", func(o *options) bool { return o.prefix == "a,b/" && o.readOnly }},
		{"generic options ignored", []string{"-o", "rw,dev,suid,exec,nodev,nosuid,noexec,atime,noatime,relatime,auto,noauto,user,users,nofail,_netdev,defaults,x-systemd.automount,x-systemd.requires=network-online.target,comment=backup,async", "b", "/m"}, "",
			func(o *options) bool { return !o.readOnly }},
		{"flag overrides option order", []string{"-o", "metadata_ttl=1s", "--metadata-ttl", "3s", "b", "/m"}, "", func(o *options) bool { return o.metadataTTL == 3*time.Second }},
		{"unknown option", []string{"-o", "ro,cache_size=1G", "b", "/m"}, `unknown mount option "cache_size"`, nil},
		{"help is no option", []string{"-o", "help", "b", "/m"}, `unknown mount option "help"`, nil},
		{"short name is no option", []string{"-o", "f", "b", "/m"}, `unknown mount option "f"`, nil},
		{"option missing value", []string{"-o", "part_size", "b", "/m"}, "mount option part_size needs a value (part_size=SIZE)", nil},
		{"option bad value", []string{"-o", "uid=-5", "b", "/m"}, `mount option uid: "-5" is not a numeric ID`, nil},
		{"-o without list", []string{"b", "/m", "-o"}, "-o needs mount options", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(tc.args...)
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

// TestEveryFlagIsAMountOption sets each flag through -o with a value it
// accepts and checks it took effect as the flag would.
func TestEveryFlagIsAMountOption(t *testing.T) {
	samples := map[string]string{
		"prefix": "p/", "endpoint-url": "https://s3.example.com", "region": "eu-west-1", "profile": "x",
		"uid": "7", "gid": "8", "file-mode": "0600", "dir-mode": "0700", "log-level": "debug", "log-file": "/tmp/x.log",
		"shutdown-timeout": "7s", "part-size": "16MiB", "upload-memory": "1GiB", "upload-memory-wait": "1m",
		"upload-concurrency": "3", "metadata-ttl": "9s", "negative-ttl": "2s", "read-ahead": "2MiB", "read-memory": "64MiB", "cache-memory": "1GiB", "max-rename-objects": "5",
		"cache-dir": "/var/cache/b", "cache-max-size": "2GiB",
		"max-retries": "2", "request-timeout": "5s",
		"ca-bundle": "/etc/ssl/private-ca.pem", "sse": "aws:kms", "sse-kms-key-id": "alias/k", "storage-class": "STANDARD_IA", "checksum": "none",
		"log-format": "json", "metrics-addr": "127.0.0.1:9100", "content-type": "*.gz=application/gzip",
	}
	var o options
	c := newMountFlags(&o)
	for _, g := range c.groups {
		for _, f := range g.flags {
			if f.notOption {
				continue
			}
			v, ok := samples[f.name]
			if f.isSwitch() {
				v, ok = "true", true
			}
			if !ok {
				t.Errorf("no sample value for --%s", f.name)
				continue
			}
			viaFlag, err := parse("--"+f.name+"="+v, "b", "/m")
			if err != nil {
				t.Fatalf("--%s=%s: %v", f.name, v, err)
			}
			opt := strings.ReplaceAll(f.name, "-", "_")
			viaOption, err := parse("-o", opt+"="+v, "b", "/m")
			if err != nil {
				t.Fatalf("-o %s=%s: %v", opt, v, err)
			}
			if !reflect.DeepEqual(viaFlag, viaOption) {
				t.Errorf("-o %s=%s gives %+v, --%s gives %+v", opt, v, viaOption, f.name, viaFlag)
			}
			def, _ := parse("b", "/m")
			if reflect.DeepEqual(viaFlag, def) {
				t.Errorf("--%s=%s changed nothing", f.name, v)
			}
		}
	}
}

func TestHelperArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		argv    []string
		want    helperCall
		wantErr string
	}{
		{"mount(8)", []string{"bkt", "/mnt/b", "-o", "ro,noatime", "-t", "fuse.bucketfs"},
			helperCall{args: []string{"-o", "ro,noatime", "--", "bkt", "/mnt/b"}}, ""},
		{"flags", []string{"bkt", "/mnt/b", "-sv", "-n", "-o", "ro"},
			helperCall{args: []string{"-o", "ro", "--", "bkt", "/mnt/b"}, sloppy: true}, ""},
		{"fake", []string{"bkt", "/mnt/b", "-f"}, helperCall{args: []string{"--", "bkt", "/mnt/b"}, fake: true}, ""},
		{"bucket named cleanup", []string{"cleanup", "/mnt/b"}, helperCall{args: []string{"--", "cleanup", "/mnt/b"}}, ""},
		{"attached", []string{"bkt", "/mnt/b", "-oro", "-tfuse.bucketfs"}, helperCall{args: []string{"-o", "ro", "--", "bkt", "/mnt/b"}}, ""},
		{"namespace", []string{"bkt", "/mnt/b", "-N", "/proc/1/ns/mnt"}, helperCall{}, "another mount namespace"},
		{"unknown", []string{"bkt", "/mnt/b", "-x"}, helperCall{}, "unknown mount(8) helper option -x"},
		{"one argument", []string{"bkt"}, helperCall{}, "want SOURCE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseHelperArgs(tc.argv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got.args, " ") != strings.Join(tc.want.args, " ") || got.sloppy != tc.want.sloppy || got.fake != tc.want.fake {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestHelperSloppy: mount -s turns an unknown option into a warning.
func TestHelperSloppy(t *testing.T) {
	var errb bytes.Buffer
	o, err := parseArgs([]string{"-o", "ro,cache_size=1G", "b", "/m"}, io.Discard, &errb, true)
	if err != nil || !o.readOnly || !strings.Contains(errb.String(), `ignoring unknown mount option "cache_size"`) {
		t.Fatalf("sloppy: %+v, %v, %q", o, err, errb.String())
	}
}

// TestHelperFake: mount -f checks the options and mounts nothing.
func TestHelperFake(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runHelper([]string{"b", "/nonexistent", "-f", "-o", "ro"}, &out, &errb); code != 0 {
		t.Fatalf("fake mount: exit %d: %s", code, errb.String())
	}
	if code := runHelper([]string{"b", "/nonexistent", "-f", "-o", "bogus"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "bogus") {
		t.Fatalf("fake mount with a bad option: exit %d: %s", code, errb.String())
	}
}

// TestRunExitCodes: a mistake prints its reason first, then one line of
// hint, and exits 2; --version and --help exit 0 on stdout.
func TestRunExitCodes(t *testing.T) {
	for _, args := range [][]string{
		{"--nope", "b", "/m"},
		{"--part-size", "lots", "b", "/m"},
		{"--uid", "-5", "b", "/m"},
		{"--file-mode", "07777", "b", "/m"},
		{"--endpoint-url", "minio:9000", "b", "/m"},
		{"b"},
		{},
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], "bucketfs: ") || !strings.Contains(lines[1], "bucketfs --help") || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2, the reason, one hint line", args, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "bucketfs ") {
		t.Fatalf("--version: exit %d, %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"b", "/nonexistent-mountpoint-for-test"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "does not exist") {
		t.Fatalf("missing mountpoint: exit %d, %q", code, errb.String())
	}
}

// TestHelp: --help goes to stdout, writes flags as README does (--flag),
// shows each default once, and lists every flag README documents and no
// other.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"b", "/m", "--help"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 || errb.Len() != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errb.String())
		}
		if !strings.HasPrefix(out.String(), "Usage: bucketfs") {
			t.Fatalf("%v: stdout %q", args, out.String())
		}
	}
	var out bytes.Buffer
	run([]string{"--help"}, &out, io.Discard)
	help := out.String()
	if m := regexp.MustCompile(`(?m)^\s+-[a-z][a-z-]+`).FindString(help); m != "" {
		t.Errorf("a long flag with one dash: %q", m)
	}
	for _, line := range strings.Split(help, "\n") {
		if n := strings.Count(line, "(default"); n > 1 {
			t.Errorf("default shown %d times: %q", n, line)
		}
	}
	for _, want := range []string{"--metadata-ttl D", "(default: 5s)", "-f, --foreground", "--shutdown-timeout D", "(default: 60s)", "-o metadata_ttl=1s", "mount -t fuse.bucketfs"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var o options
	for _, g := range newMountFlags(&o).groups {
		for _, f := range g.flags {
			if !strings.Contains(help, "--"+f.name) {
				t.Errorf("help lacks --%s", f.name)
			}
			if !strings.Contains(string(readme), "`--"+f.name) {
				t.Errorf("README's flag table lacks --%s", f.name)
			}
		}
	}
	documented := regexp.MustCompile("(?m)^\\| `--([a-z0-9-]+)").FindAllStringSubmatch(string(readme), -1)
	for _, d := range documented {
		if _, ok := newMountFlags(&o).byName[d[1]]; !ok {
			t.Errorf("README documents --%s, which bucketfs does not have", d[1])
		}
	}
}

// TestCleanupHelp: the subcommand has its own help and hint.
func TestCleanupHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"cleanup", "--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "--older-than D") || !strings.Contains(out.String(), "(default: 24h0m0s)") {
		t.Fatalf("cleanup --help: exit %d, %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"cleanup", "--older-than", "yesterday", "b"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "bucketfs cleanup --help") {
		t.Fatalf("cleanup bad value: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"cleanup"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "want BUCKET") {
		t.Fatalf("cleanup without bucket: exit %d, %q", code, errb.String())
	}
}

// TestContentTypeFlag: --content-type repeats, keeps its order, reaches
// the mount's configuration, and refuses a malformed rule.
func TestContentTypeFlag(t *testing.T) {
	o, err := parse("--content-type", ".log=text/plain", "-o", "content_type=*.gz=application/gzip", "b", "/m")
	if err != nil {
		t.Fatal(err)
	}
	want := []bfs.ContentTypeRule{{Pattern: ".log", ContentType: "text/plain"}, {Pattern: "*.gz", ContentType: "application/gzip"}}
	if got := mountConfig(o, nil, nil).ContentTypes; !reflect.DeepEqual(got, want) {
		t.Fatalf("rules %+v, want %+v", got, want)
	}
	if _, err := parse("--content-type", "text/plain", "b", "/m"); err == nil || !strings.Contains(err.Error(), "content-type") {
		t.Fatalf("a rule without a pattern: %v", err)
	}
}
