package s3client_test

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestListEncodedKeys: listings ask for url-encoded keys and decode them, so
// keys with spaces, plus signs, percent signs and non-ASCII characters come
// back exactly as stored, as objects and as common prefixes, across pages.
func TestListEncodedKeys(t *testing.T) {
	srv := s3test.StartMinIO(t)
	_, c := srv.Bucket(t)
	ctx := context.Background()
	files := []string{
		"d/a b.txt", "d/a+b.txt", "d/a%20b.txt", "d/100%.txt", "d/ünïcødé 日本.txt", "d/tab\there", "d/q?x=1&y=2#z",
		"d/semi;colon,comma", "d/~tilde*star'quote\"", "d/emoji 🎉",
	}
	dirs := []string{"d/sp ace/", "d/pl+us/", "d/ß/"}
	objects := map[string][]byte{}
	for _, k := range files {
		objects[k] = []byte("x")
	}
	for _, p := range dirs {
		objects[p+"inner"] = []byte("y")
	}
	s3test.PutObjects(t, c, objects)

	// Pages of 2 entries: continuation tokens must work with encoded keys.
	var gotKeys, gotPrefixes []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("listing does not end")
		}
		page, err := c.List(ctx, "d/", "/", token, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			gotKeys = append(gotKeys, o.Key)
		}
		gotPrefixes = append(gotPrefixes, page.CommonPrefixes...)
		if page.NextToken == "" {
			break
		}
		token = page.NextToken
	}
	sort.Strings(files)
	sort.Strings(dirs)
	sort.Strings(gotKeys)
	sort.Strings(gotPrefixes)
	if strings.Join(gotKeys, "|") != strings.Join(files, "|") {
		t.Errorf("keys:\n got %q\nwant %q", gotKeys, files)
	}
	if strings.Join(gotPrefixes, "|") != strings.Join(dirs, "|") {
		t.Errorf("prefixes:\n got %q\nwant %q", gotPrefixes, dirs)
	}

	// A prefix that itself needs encoding.
	page, err := c.List(ctx, "d/sp ace/", "/", "", 0)
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Key != "d/sp ace/inner" {
		t.Fatalf("list of %q = %+v, %v", "d/sp ace/", page, err)
	}
	page, err = c.List(ctx, "d/pl+us/", "/", "", 0)
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Key != "d/pl+us/inner" {
		t.Fatalf("list of %q = %+v, %v", "d/pl+us/", page, err)
	}
}

// TestListCraftedPages: what a server sends back is decoded only when it
// says it encoded (EncodingType in the answer); a key XML cannot carry
// arrives encoded and is decoded; a malformed encoding is an error.
func TestListCraftedPages(t *testing.T) {
	c, ft := faultClient(t, 1)
	ctx := context.Background()
	listingRule := func(prefix, body string) {
		ft.Add(s3test.Rule{Op: "ListObjectsV2", Match: func(r *http.Request) bool {
			if r.URL.Query().Get("encoding-type") != "url" {
				t.Errorf("ListObjectsV2 without encoding-type=url: %s", r.URL.RawQuery)
			}
			return r.URL.Query().Get("prefix") == prefix
		}, Fault: s3test.Fault{Body: body}})
	}
	listingRule("enc/", craftedListing("enc/", "url", []string{"enc/ctl%01key", "enc/a+b", "enc/p%2Bq", "enc/%E6%97%A5"}, []string{"enc/sub%01dir/"}))
	listingRule("raw/", craftedListing("raw/", "", []string{"raw/a+b", "raw/p%2Bq"}, nil))
	listingRule("bad/", craftedListing("bad/", "url", []string{"bad/%zz"}, nil))

	page, err := c.List(ctx, "enc/", "/", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range page.Objects {
		keys = append(keys, o.Key)
	}
	if want := []string{"enc/ctl\x01key", "enc/a b", "enc/p+q", "enc/日"}; strings.Join(keys, "|") != strings.Join(want, "|") {
		t.Errorf("decoded keys %q, want %q", keys, want)
	}
	if len(page.CommonPrefixes) != 1 || page.CommonPrefixes[0] != "enc/sub\x01dir/" {
		t.Errorf("decoded prefixes %q", page.CommonPrefixes)
	}

	page, err = c.List(ctx, "raw/", "/", "", 0)
	if err != nil || len(page.Objects) != 2 || page.Objects[0].Key != "raw/a+b" || page.Objects[1].Key != "raw/p%2Bq" {
		t.Errorf("a page without EncodingType must be taken as is: %+v, %v", page, err)
	}

	if _, err := c.List(ctx, "bad/", "/", "", 0); err == nil {
		t.Error("a malformed encoded key was accepted")
	} else {
		t.Logf("malformed key: %v", err)
	}
}

// craftedListing is a one-page ListObjectsV2 answer; keys and prefixes are
// written as given (already encoded when encoding is "url").
func craftedListing(prefix, encoding string, keys, prefixes []string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>` +
		prefix + `</Prefix><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter>`)
	if encoding != "" {
		b.WriteString(`<EncodingType>` + encoding + `</EncodingType>`)
	}
	b.WriteString(`<IsTruncated>false</IsTruncated>`)
	for _, k := range keys {
		b.WriteString(`<Contents><Key>` + k + `</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>"x"</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>`)
	}
	for _, p := range prefixes {
		b.WriteString(`<CommonPrefixes><Prefix>` + p + `</Prefix></CommonPrefixes>`)
	}
	b.WriteString(`</ListBucketResult>`)
	return b.String()
}

var _ s3client.API = (*s3client.Client)(nil)
