package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
)

// fakeUploads is an uploadStore in memory.
type fakeUploads struct {
	mu       sync.Mutex // guards the fields below
	uploads  []incompleteUpload
	aborted  []string
	failKeys map[string]error // abort of these keys fails with the error
	listErr  error            // the listing fails after the uploads
}

func (f *fakeUploads) listIncompleteUploads(ctx context.Context, prefix string, each func(incompleteUpload) error) error {
	f.mu.Lock()
	ups := append([]incompleteUpload(nil), f.uploads...)
	f.mu.Unlock()
	for _, u := range ups {
		if !strings.HasPrefix(u.key, prefix) {
			continue
		}
		if err := each(u); err != nil {
			return err
		}
	}
	return f.listErr
}

func (f *fakeUploads) abortUpload(ctx context.Context, key, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failKeys[key]; err != nil {
		return err
	}
	f.aborted = append(f.aborted, key)
	return nil
}

func (f *fakeUploads) abortedKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]string(nil), f.aborted...)
	sort.Strings(out)
	return out
}

func TestCleanup(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	uploads := []incompleteUpload{
		{key: "a/old", uploadID: "1", initiated: now.Add(-48 * time.Hour)},
		{key: "a/day", uploadID: "2", initiated: now.Add(-24 * time.Hour)},
		{key: "a/new", uploadID: "3", initiated: now.Add(-time.Minute)},
		{key: "b/old", uploadID: "4", initiated: now.Add(-72 * time.Hour)},
		{key: "a/future", uploadID: "5", initiated: now.Add(time.Minute)}, // a server clock ahead of ours
	}
	for _, tc := range []struct {
		name        string
		o           cleanupOptions
		failKeys    map[string]error
		wantAborted []string
		wantSummary string
	}{
		{"default bound", cleanupOptions{olderThan: 24 * time.Hour}, nil,
			[]string{"a/day", "a/old", "b/old"}, "found 5, aborted 3, kept 2, failed 0"},
		{"prefix", cleanupOptions{prefix: "a/", olderThan: 24 * time.Hour}, nil,
			[]string{"a/day", "a/old"}, "found 4, aborted 2, kept 2, failed 0"},
		{"zero aborts all", cleanupOptions{olderThan: 0}, nil,
			[]string{"a/day", "a/future", "a/new", "a/old", "b/old"}, "found 5, aborted 5, kept 0, failed 0"},
		{"dry run", cleanupOptions{olderThan: 0, dryRun: true}, nil,
			nil, "found 5, would abort 5, kept 0 (dry run: nothing aborted)"},
		{"failures counted", cleanupOptions{olderThan: time.Hour}, map[string]error{"b/old": errors.New("s3 AbortMultipartUpload: AccessDenied")},
			[]string{"a/day", "a/old"}, "found 5, aborted 2, kept 2, failed 1"},
		{"gone meanwhile", cleanupOptions{olderThan: time.Hour}, map[string]error{"b/old": fmt.Errorf("abort: %w", s3client.ErrNoSuchUpload)},
			[]string{"a/day", "a/old"}, "found 5, aborted 3, kept 2, failed 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &fakeUploads{uploads: uploads, failKeys: tc.failKeys}
			var out bytes.Buffer
			o := tc.o
			o.bucket = "bkt"
			sum, err := cleanup(context.Background(), store, &o, &out, func() time.Time { return now })
			if err != nil {
				t.Fatal(err)
			}
			if got := store.abortedKeys(); strings.Join(got, ",") != strings.Join(tc.wantAborted, ",") {
				t.Errorf("aborted %v, want %v", got, tc.wantAborted)
			}
			if sum.String() != tc.wantSummary {
				t.Errorf("summary %q, want %q", sum, tc.wantSummary)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 1+sum.found {
				t.Errorf("want a heading and one line per upload:\n%s", out.String())
			}
			if !strings.Contains(out.String(), "s3://bkt/"+o.prefix) {
				t.Errorf("output does not say where:\n%s", out.String())
			}
		})
	}
}

// TestCleanupListError: a failed listing is returned, after what was found.
func TestCleanupListError(t *testing.T) {
	store := &fakeUploads{
		uploads: []incompleteUpload{{key: "k", uploadID: "1", initiated: time.Now().Add(-48 * time.Hour)}},
		listErr: errors.New("s3 ListMultipartUploads: SlowDown"),
	}
	o := &cleanupOptions{bucket: "b", olderThan: time.Hour}
	sum, err := cleanup(context.Background(), store, o, &bytes.Buffer{}, time.Now)
	if err == nil || sum.found != 1 || sum.aborted != 1 {
		t.Fatalf("%+v, %v", sum, err)
	}
}
