package fs

import (
	"fmt"
	"mime"
	"path"
	"strings"
)

// defaultContentType is the Content-Type of a new object whose name says
// nothing of its content.
const defaultContentType = "application/octet-stream"

// ContentTypeRule gives the Content-Type of new objects whose base name
// matches Pattern: an extension (".log", matched without regard to case) or
// a glob on the base name ("*.gz", "README*", path.Match's syntax).
type ContentTypeRule struct {
	Pattern     string
	ContentType string
}

// ParseContentTypeRule reads a rule written PATTERN=TYPE (--content-type
// .log=text/plain, --content-type '*.gz=application/gzip').
func ParseContentTypeRule(s string) (ContentTypeRule, error) {
	pattern, typ, ok := strings.Cut(s, "=")
	switch {
	case !ok || pattern == "" || typ == "":
		return ContentTypeRule{}, fmt.Errorf("%q is not PATTERN=TYPE (.log=text/plain, '*.gz=application/gzip')", s)
	case strings.Contains(pattern, "/"):
		return ContentTypeRule{}, fmt.Errorf("pattern %q: a rule matches the base name, which holds no /", pattern)
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return ContentTypeRule{}, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	if _, _, err := mime.ParseMediaType(typ); err != nil {
		return ContentTypeRule{}, fmt.Errorf("content type %q: %w", typ, err)
	}
	return ContentTypeRule{Pattern: pattern, ContentType: typ}, nil
}

// isExtension says whether the rule's pattern is an extension rather than a glob.
func (r ContentTypeRule) isExtension() bool {
	return strings.HasPrefix(r.Pattern, ".") && !strings.ContainsAny(r.Pattern, `*?[\`)
}

func (r ContentTypeRule) matches(base string) bool {
	if r.isExtension() {
		return strings.EqualFold(path.Ext(base), r.Pattern)
	}
	ok, _ := path.Match(r.Pattern, base)
	return ok
}

// contentTypeOf returns the Content-Type of a new object at key, by the
// mount's rules (contentTypeOf).
func (b *bucketFS) contentTypeOf(key string) string {
	return contentTypeOf(b.cfg.ContentTypes, key)
}

// contentTypeOf returns the Content-Type of a new object at key: the first
// of rules matching its base name, else the one Go's MIME tables (and
// /etc/mime.types and the like, which they read) give its extension, else
// application/octet-stream.
func contentTypeOf(rules []ContentTypeRule, key string) string {
	base := path.Base(key)
	for _, r := range rules {
		if r.matches(base) {
			return r.ContentType
		}
	}
	if t := mime.TypeByExtension(path.Ext(base)); t != "" {
		return t
	}
	return defaultContentType
}
