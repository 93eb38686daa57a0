package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
)

// value is one flag's setting. Set's error names the bad input and says
// what is wanted; the parser puts the flag's name in front of it.
type value interface {
	String() string
	Set(string) error
}

// switchValue is a value that needs no argument (--read-only).
type switchValue interface {
	value
	isSwitch()
}

type stringValue struct{ p *string }

func (v stringValue) String() string { return *v.p }

func (v stringValue) Set(s string) error { *v.p = s; return nil }

type boolValue struct{ p *bool }

func (v boolValue) String() string { return strconv.FormatBool(*v.p) }

func (v boolValue) isSwitch() {}

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	*v.p = b
	return nil
}

// intValue is a whole number of at least min.
type intValue struct {
	p   *int
	min int
}

func (v intValue) String() string { return strconv.Itoa(*v.p) }

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a whole number", s)
	case n < v.min:
		return fmt.Errorf("%d is less than %d", n, v.min)
	}
	*v.p = n
	return nil
}

type durationValue struct{ p *time.Duration }

func (v durationValue) String() string { return v.p.String() }

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a duration (examples: 500ms, 5s, 2m, 1h30m)", s)
	case d < 0:
		return fmt.Errorf("%q is negative", s)
	}
	*v.p = d
	return nil
}

// idValue is a user or group ID; -1 in *p means "the mounting user's".
type idValue struct{ p *int64 }

func (v idValue) String() string { return strconv.FormatInt(*v.p, 10) }

func (v idValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return fmt.Errorf("%q is not a numeric ID from 0 to 4294967295", s)
	}
	*v.p = int64(n)
	return nil
}

// modeValue is octal permission bits: setuid, setgid and sticky bits are
// refused, since bucketfs mounts are nosuid and those bits mean nothing in S3.
type modeValue struct{ m *uint32 }

func (v modeValue) String() string { return fmt.Sprintf("%04o", *v.m) }

func (v modeValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 8, 32)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not an octal mode (examples: 0644, 755)", s)
	case n > 0o777:
		return fmt.Errorf("%q has bits beyond 0777 (setuid, setgid or sticky); give permission bits only, such as 0644", s)
	}
	*v.m = uint32(n)
	return nil
}

// sizeValue is a byte count with units (8MiB).
type sizeValue struct{ n *int64 }

func (v sizeValue) String() string { return formatSize(*v.n) }

func (v sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v.n = n
	return nil
}

// endpointValue is an S3 endpoint URL; it must name its scheme, since
// "host:9000" alone is ambiguous (the SDK would read "host" as the scheme).
type endpointValue struct{ p *string }

func (v endpointValue) String() string { return *v.p }

func (v endpointValue) Set(s string) error {
	scheme, rest, ok := strings.Cut(s, "://")
	switch {
	case s == "":
		*v.p = ""
		return nil
	case !ok:
		return fmt.Errorf("%q has no scheme: write http://%s or https://%s", s, s, s)
	case scheme != "http" && scheme != "https":
		return fmt.Errorf("%q: the scheme must be http or https, not %q", s, scheme)
	case rest == "" || strings.HasPrefix(rest, "/"):
		return fmt.Errorf("%q names no host", s)
	}
	*v.p = s
	return nil
}

// contentTypeValue is a repeatable --content-type: each use adds a rule.
type contentTypeValue struct{ p *[]bfs.ContentTypeRule }

func (v contentTypeValue) String() string {
	rules := make([]string, len(*v.p))
	for i, r := range *v.p {
		rules[i] = r.Pattern + "=" + r.ContentType
	}
	return strings.Join(rules, " ")
}

func (v contentTypeValue) Set(s string) error {
	r, err := bfs.ParseContentTypeRule(s)
	if err != nil {
		return err
	}
	*v.p = append(*v.p, r)
	return nil
}
