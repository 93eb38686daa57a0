package s3fake

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"

	"github.com/bucketfs/bucketfs/s3client"
)

// maxListKeys is the most entries (objects and common prefixes) of one page.
const maxListKeys = 1000

// List implements s3client.API as ListObjectsV2 does: keys in ascending
// byte order; with a delimiter, the keys that contain it after the prefix
// are rolled into one common prefix each, which counts as one entry towards
// maxKeys (at most, and by default, 1,000); NextToken is opaque and set only
// when more entries follow. Listings carry neither metadata nor
// Content-Type, and never show multipart uploads in progress.
func (f *Fake) List(ctx context.Context, prefix, delimiter, token string, maxKeys int32) (*s3client.ListPage, error) {
	const op = OpListObjectsV2
	fault, err := f.begin(ctx, op, prefix)
	if err != nil {
		return nil, err
	}
	page, err := f.list(op, prefix, delimiter, token, maxKeys)
	if err := end(op, prefix, fault, err); err != nil {
		return nil, err
	}
	return page, nil
}

// listMarker is where a listing continues: after the last entry returned,
// a key or a common prefix (after which every key under it is skipped).
type listMarker struct {
	after    string
	isPrefix bool
}

func (f *Fake) list(op, prefix, delimiter, token string, maxKeys int32) (*s3client.ListPage, error) {
	limit := maxListKeys
	if maxKeys > 0 && maxKeys < maxListKeys {
		limit = int(maxKeys)
	}
	var marker listMarker
	if token != "" {
		var ok bool
		if marker, ok = decodeToken(token); !ok {
			e := APIError(op, prefix, "InvalidArgument", 400).(*s3client.Error)
			e.Message = "The continuation token provided is incorrect"
			return nil, e
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	page := &s3client.ListPage{Objects: []s3client.ObjectInfo{}}
	start, _ := slices.BinarySearch(f.sorted, prefix)
	if marker.after > prefix {
		start, _ = slices.BinarySearch(f.sorted, marker.after)
	}
	entries := 0
	var last listMarker
	for _, key := range f.sorted[start:] {
		if !strings.HasPrefix(key, prefix) {
			break
		}
		if token != "" && (key <= marker.after || marker.isPrefix && strings.HasPrefix(key, marker.after)) {
			continue
		}
		entry := listMarker{after: key}
		if delimiter != "" {
			if i := strings.Index(key[len(prefix):], delimiter); i >= 0 {
				entry = listMarker{after: key[:len(prefix)+i+len(delimiter)], isPrefix: true}
			}
		}
		if entry.isPrefix && entry == last {
			continue // another key under the common prefix just listed
		}
		if entries == limit {
			page.NextToken = encodeToken(last)
			break
		}
		if entry.isPrefix {
			page.CommonPrefixes = append(page.CommonPrefixes, entry.after)
		} else {
			page.Objects = append(page.Objects, *f.objects[key].info(key))
		}
		entries++
		last = entry
	}
	return page, nil
}

// encodeToken makes a continuation token from the last entry of a page.
func encodeToken(m listMarker) string {
	kind := "k"
	if m.isPrefix {
		kind = "p"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(kind + m.after))
}

// decodeToken reads a token made by encodeToken.
func decodeToken(token string) (listMarker, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 2 || b[0] != 'k' && b[0] != 'p' {
		return listMarker{}, false
	}
	return listMarker{after: string(b[1:]), isPrefix: b[0] == 'p'}, true
}
