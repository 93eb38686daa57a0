package main

import (
	"io"
	"path/filepath"
	"strings"
)

// mount(8) runs a filesystem's helper for `mount -t fuse.bucketfs` (and
// fstab lines of that type): /sbin/mount.fuse.bucketfs when it exists,
// else mount.fuse3, which runs `bucketfs SOURCE DIR -o OPTIONS` from PATH.
// make install puts a link to this binary at /sbin/mount.fuse.bucketfs;
// the binary recognises it by its name.

// isHelperName says whether the binary runs as mount(8)'s helper.
func isHelperName(argv0 string) bool {
	return strings.HasPrefix(filepath.Base(argv0), "mount.")
}

// helperCall is mount(8)'s call of a helper, translated.
type helperCall struct {
	args   []string // bucketfs's own arguments: -o OPTIONS -- SOURCE DIR
	sloppy bool     // -s: tolerate unknown mount options
	fake   bool     // -f: check everything, mount nothing
}

// parseHelperArgs reads mount(8)'s helper convention:
//
//	mount.fuse.bucketfs SOURCE DIR [-sfnv] [-N NAMESPACE] [-o OPTIONS] [-t TYPE]
//
// -n (no mtab) and -v (verbose) need nothing; -t names our own type.
func parseHelperArgs(argv []string) (helperCall, error) {
	var hc helperCall
	var positional, opts []string
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "-o" || a == "-t" || a == "-N":
			if i+1 >= len(argv) {
				return hc, usagef("%s needs a value", a)
			}
			i++
			switch a {
			case "-o":
				opts = append(opts, argv[i])
			case "-N":
				return hc, usagef("-N %s: mounting in another mount namespace is not supported", argv[i])
			}
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, a[2:])
		case strings.HasPrefix(a, "-t"):
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for _, r := range a[1:] {
				switch r {
				case 's':
					hc.sloppy = true
				case 'f':
					hc.fake = true
				case 'n', 'v':
				default:
					return hc, usagef("unknown mount(8) helper option -%c", r)
				}
			}
		default:
			positional = append(positional, a)
		}
	}
	if len(positional) != 2 {
		return hc, usagef("want SOURCE (the bucket) and DIR (the mountpoint), got %d argument(s)", len(positional))
	}
	for _, o := range opts {
		hc.args = append(hc.args, "-o", o)
	}
	hc.args = append(hc.args, "--", positional[0], positional[1])
	return hc, nil
}

// runHelper is the binary run as mount.fuse.bucketfs.
func runHelper(argv []string, stdout, stderr io.Writer) int {
	hc, err := parseHelperArgs(argv)
	if err != nil {
		return fail(stderr, err, "Usage: mount -t fuse.bucketfs BUCKET MOUNTPOINT -o option,option=value; bucketfs --help lists the options.")
	}
	if hc.fake {
		if _, err := parseArgs(hc.args, stdout, stderr, hc.sloppy); err != nil {
			fail(stderr, err, "")
			return 1
		}
		return 0
	}
	if code := runMount(hc.args, stdout, stderr, hc.sloppy); code != 0 {
		// mount(8) reads 32 as "mount failure"; 1 would mean "incorrect
		// invocation or permissions".
		if code == 2 {
			return 1
		}
		return 32
	}
	return 0
}
