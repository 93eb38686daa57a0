package s3client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3test"
)

// TestMetricsAgreeWithCounter runs a sequence of requests, one retried
// after an injected 503, and checks that the Prometheus registry counts by
// operation what the RequestCounter counts, with outcomes, retries and
// bytes each way.
func TestMetricsAgreeWithCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := s3client.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	counter := s3client.NewRequestCounter()
	c, ft := faultClientWith(t, func(cfg *s3client.Config) {
		cfg.Counter = counter
		cfg.Metrics = metrics
		cfg.RetryBaseDelay = time.Millisecond
		cfg.RetryMaxDelay = 10 * time.Millisecond
	})
	ft.Add(s3test.Rule{Op: "HeadObject", Times: 1, Fault: s3test.Fault{Status: 503, Code: "ServiceUnavailable"}})
	ctx := context.Background()

	body := bytes.Repeat([]byte("m"), 100_000)
	if _, err := c.Put(ctx, "dir/a", bytes.NewReader(body), int64(len(body)), s3client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Head(ctx, "dir/a"); err != nil { // 503, then retried
		t.Fatal(err)
	}
	if _, err := c.Head(ctx, "missing"); !errors.Is(err, s3client.ErrNotFound) {
		t.Fatalf("head missing: %v", err)
	}
	rc, err := c.GetRange(ctx, "dir/a", 0, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if len(got) != len(body) {
		t.Fatalf("read %d bytes, want %d", len(got), len(body))
	}
	if _, err := c.List(ctx, "dir/", "/", "", 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "dir/a"); err != nil {
		t.Fatal(err)
	}

	families := gather(t, reg)
	byOp := map[string]float64{}
	outcomes := map[string]float64{} // "op/outcome"
	for _, m := range families["bucketfs_s3_requests_total"].GetMetric() {
		op, oc := label(m, "operation"), label(m, "outcome")
		byOp[op] += m.GetCounter().GetValue()
		outcomes[op+"/"+oc] += m.GetCounter().GetValue()
	}
	want := counter.Snapshot()
	if len(byOp) != len(want) {
		t.Errorf("metrics count operations %v, the counter %v", byOp, want)
	}
	for op, n := range want {
		if byOp[op] != float64(n) {
			t.Errorf("%s: metrics count %v, the counter %d", op, byOp[op], n)
		}
	}
	for key, n := range map[string]float64{
		"HeadObject/ok": 1, "HeadObject/server_error": 1, "HeadObject/not_found": 1,
		"PutObject/ok": 1, "GetObject/ok": 1, "ListObjectsV2/ok": 1, "DeleteObject/ok": 1,
	} {
		if outcomes[key] != n {
			t.Errorf("requests %s = %v, want %v (all: %v)", key, outcomes[key], n, outcomes)
		}
	}
	retries := map[string]float64{}
	for _, m := range families["bucketfs_s3_retries_total"].GetMetric() {
		retries[label(m, "operation")] = m.GetCounter().GetValue()
	}
	if len(retries) != 1 || retries["HeadObject"] != 1 {
		t.Errorf("retries = %v, want HeadObject: 1", retries)
	}
	var observed uint64
	for _, m := range families["bucketfs_s3_request_duration_seconds"].GetMetric() {
		observed += m.GetHistogram().GetSampleCount()
	}
	if int64(observed) != counter.Total() {
		t.Errorf("latency observations %d, requests %d", observed, counter.Total())
	}
	sent := families["bucketfs_s3_sent_bytes_total"].GetMetric()[0].GetCounter().GetValue()
	received := families["bucketfs_s3_received_bytes_total"].GetMetric()[0].GetCounter().GetValue()
	if sent < float64(len(body)) || sent > float64(len(body))+10_000 {
		t.Errorf("sent %v bytes, want about %d", sent, len(body))
	}
	if received < float64(len(body)) {
		t.Errorf("received %v bytes, want at least %d", received, len(body))
	}
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
