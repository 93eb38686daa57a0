package fs

import (
	"testing"
	"time"
)

func TestParseMtime(t *testing.T) {
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1700000000", time.Unix(1700000000, 0), true},                       // s3fs: whole seconds
		{"1700000000.123456789", time.Unix(1700000000, 123456789), true},     // rclone
		{"1700000000.5", time.Unix(1700000000, 500000000), true},             // short fraction
		{"1700000000.1234567891234", time.Unix(1700000000, 123456789), true}, // too many digits
		{"", time.Time{}, false},
		{"soon", time.Time{}, false},
		{"NaN", time.Time{}, false},
	}
	for _, c := range cases {
		got, ok := parseMtime(c.in)
		if ok != c.ok || (ok && !got.Equal(c.want)) {
			t.Errorf("parseMtime(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestFormatMtimeRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{time.Unix(0, 0), time.Unix(1700000000, 1), time.Unix(1700000000, 999999999)} {
		got, ok := parseMtime(formatMtime(tm))
		if !ok || !got.Equal(tm) {
			t.Errorf("round trip of %v via %q gave %v", tm, formatMtime(tm), got)
		}
	}
}

// TestDescribes: what a HEAD or our own write learned holds for a listing
// of the same object version only.
func TestDescribes(t *testing.T) {
	headTime := time.Unix(1700000000, 0)                           // HEAD: whole seconds
	listTime := time.Unix(1700000000, 123*int64(time.Millisecond)) // listing: milliseconds
	known := entryAttr{etag: `"abc"`, size: 10, modified: headTime, fromHead: true}
	listed := entryAttr{etag: `"abc"`, size: 10, modified: listTime}
	cases := []struct {
		name  string
		known entryAttr
		want  bool
	}{
		{"same version", known, true},
		{"other etag", entryAttr{etag: `"def"`, size: 10, modified: headTime}, false},
		{"other size", entryAttr{etag: `"abc"`, size: 11, modified: headTime}, false},
		{"later version, same etag", entryAttr{etag: `"abc"`, size: 10, modified: headTime.Add(time.Second)}, false},
		{"just written: LastModified unknown", entryAttr{etag: `"abc"`, size: 10}, true},
		{"etag unknown", entryAttr{size: 10, modified: headTime}, false},
	}
	for _, c := range cases {
		if got := c.known.describes(listed); got != c.want {
			t.Errorf("%s: describes = %v, want %v", c.name, got, c.want)
		}
	}
}
