package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// BENCH_METRICS=1 measures what --metrics-addr costs: W1 and W3 run each
// round on a second mount with the metrics endpoint on, scraped every
// second, and report it as a row of their own whose ceiling is the plain
// mount of the same rounds (ratio: with / without).

// scrapeEvery is how often a metrics run scrapes the endpoint: more often
// than Prometheus would (15s by default), so the figure errs on the side of
// cost.
const scrapeEvery = time.Second

// metricsRow is the row of a workload's runs with --metrics-addr: its
// "ceiling" is the same workload on a plain mount in the same rounds.
func metricsRow(plain *result) *result {
	return &result{
		Workload: plain.Workload, Name: plain.Name + ", --metrics-addr", Profile: plain.Profile, Metric: plain.Metric,
		Budget: plain.Budget, Per: plain.Per,
		Notes: []string{"ceiling: the same workload on a mount without --metrics-addr, in the same rounds; " +
			"ratio: with / without (1.00: no overhead); the endpoint was scraped every second"},
	}
}

// metricsRun is mountRun on a mount serving its metrics on a free port of
// 127.0.0.1, scraped every scrapeEvery while fn runs. It fails when the
// endpoint never showed the S3 request counter, so that a sample cannot
// have been measured without metrics.
func (r *runner) metricsRun(p *profile, bucket, prefix, name string, prep func(*mount) error, fn func(*mount) (int64, int, error)) (sample, error) {
	addr, err := freeAddr()
	if err != nil {
		return sample{}, err
	}
	var scrapes int
	s, err := r.mountRunWith(p, bucket, prefix, name, []string{"--metrics-addr", addr}, prep, func(m *mount) (int64, int, error) {
		ctx, stop := context.WithCancel(r.ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(scrapeEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if _, err := scrape(ctx, addr); err == nil {
						scrapes++ // read after wg.Wait
					}
				}
			}
		}()
		n, items, err := fn(m)
		stop()
		wg.Wait()
		if err != nil {
			return n, items, err
		}
		text, serr := scrape(r.ctx, addr)
		if serr != nil || !strings.Contains(text, "bucketfs_s3_requests_total{") {
			return n, items, fmt.Errorf("the metrics endpoint %s did not show bucketfs_s3_requests_total: %v", addr, serr)
		}
		scrapes++
		return n, items, nil
	})
	if err != nil {
		return s, err
	}
	if s.Extra == nil {
		s.Extra = map[string]float64{}
	}
	s.Extra["metrics_scraped"] = float64(scrapes)
	return s, nil
}

// scrape reads the metrics endpoint at addr once.
func scrape(ctx context.Context, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return string(b), err
}

// freeAddr is a port of 127.0.0.1 that nothing listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a port for --metrics-addr: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// inOrder runs a then b in odd rounds and b then a in even ones, so that
// a machine that drifts over a run favours neither.
// runSides runs a round's plain mount, and with withMetrics the metrics
// mount too (in inOrder's order), recording the plain sample *plain as
// the metrics row's baseline.
func runSides(round int, withMetrics *result, plain *sample, mountSide, metricsSide func() error) error {
	if withMetrics == nil {
		return mountSide()
	}
	if err := inOrder(round, mountSide, metricsSide); err != nil {
		return err
	}
	withMetrics.Direct = append(withMetrics.Direct, *plain)
	return nil
}

func inOrder(round int, a, b func() error) error {
	if round%2 == 0 {
		a, b = b, a
	}
	if err := a(); err != nil {
		return err
	}
	return b()
}
