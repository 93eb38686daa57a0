package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// runW1 measures a sequential write of SeqSize bytes: `dd bs=1M` into the
// mount, against a multipart upload of the same bytes by the SDK. Every
// object is checked (size and multipart ETag) and deleted after its round.
func (r *runner) runW1(p *profile) ([]*result, error) {
	c := r.cfg
	res := &result{
		Workload: "W1", Name: fmt.Sprintf("write %s dd bs=1M", sizeFlag(c.SeqSize)), Profile: p.Name, Metric: metricMBps,
		Budget: c.UploadMemory + memoryOverhead,
		checks: []func(*result) goal{ratioGoal("write", 0.9)},
	}
	results := []*result{res}
	var withMetrics *result
	if c.Metrics {
		withMetrics = metricsRow(res)
		results = append(results, withMetrics)
	}
	want := r.src.etag(c.SeqSize, c.PartSize)
	for round := 1; round <= c.Rounds; round++ {
		key := fmt.Sprintf("w1-%s-r%d", p.Name, round)
		var plain sample
		mountSide := func() error {
			s, err := r.mountRun(p, bucketWrite, "", key+"-mount", nil, func(m *mount) (int64, int, error) {
				return c.SeqSize, 1, ddWrite(r.ctx, r.src.SeqPath, m.Path(key+"-mount"), c.SeqSize)
			})
			if err != nil {
				return err
			}
			s.Round = round
			if err := r.checkObject(bucketWrite, key+"-mount", c.SeqSize, want); err != nil {
				return err
			}
			plain = s
			res.Mount = append(res.Mount, s)
			r.progress.printf("  round %d mount: %s", round, formatValue(res.Metric, value(res.Metric, s)))
			return r.deleteKeys(bucketWrite, key+"-mount")
		}
		metricsSide := func() error {
			s, err := r.metricsRun(p, bucketWrite, "", key+"-metrics", nil, func(m *mount) (int64, int, error) {
				return c.SeqSize, 1, ddWrite(r.ctx, r.src.SeqPath, m.Path(key+"-metrics"), c.SeqSize)
			})
			if err != nil {
				return err
			}
			s.Round = round
			if err := r.checkObject(bucketWrite, key+"-metrics", c.SeqSize, want); err != nil {
				return err
			}
			withMetrics.Mount = append(withMetrics.Mount, s)
			r.progress.printf("  round %d mount with --metrics-addr: %s", round, formatValue(res.Metric, value(res.Metric, s)))
			return r.deleteKeys(bucketWrite, key+"-metrics")
		}
		if err := runSides(round, withMetrics, &plain, mountSide, metricsSide); err != nil {
			return results, err
		}

		d, err := r.directRun(p, func() (int64, int, error) {
			f, err := os.Open(r.src.SeqPath)
			if err != nil {
				return 0, 0, fmt.Errorf("opening the source: %w", err)
			}
			defer f.Close()
			etag, err := p.direct.upload(r.ctx, p.direct.newPartSlots(), bucketWrite, key+"-direct", f, c.SeqSize)
			if err == nil && etag != want {
				err = fmt.Errorf("direct upload has ETag %s, want %s", etag, want)
			}
			return c.SeqSize, 1, err
		})
		if err != nil {
			return results, err
		}
		d.Round = round
		res.Direct = append(res.Direct, d)
		r.progress.printf("  round %d direct: %s", round, formatValue(res.Metric, value(res.Metric, d)))
		if err := r.deleteKeys(bucketWrite, key+"-direct"); err != nil {
			return results, err
		}
	}
	return results, nil
}

// ddWrite copies size bytes of src to dst with dd bs=1M.
func ddWrite(ctx context.Context, src, dst string, size int64) error {
	cmd := exec.CommandContext(ctx, "dd", "if="+src, "of="+dst, "bs=1M", fmt.Sprintf("count=%d", size/mib), "status=none")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dd of=%s: %v: %s", dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// checkObject verifies, straight from MinIO, that key has size bytes and
// the multipart ETag of the source's first size bytes.
func (r *runner) checkObject(bucket, key string, size int64, etag string) error {
	admin, err := r.admin(bucket)
	if err != nil {
		return err
	}
	info, err := admin.Head(r.ctx, key)
	if err != nil {
		return fmt.Errorf("checking %s: %w", key, err)
	}
	if info.Size != size || info.ETag != etag {
		return fmt.Errorf("%s written through the mount is wrong: size %d ETag %s, want %d and %s", key, info.Size, info.ETag, size, etag)
	}
	return nil
}

// deleteKeys removes objects straight from MinIO, to keep the disk small.
func (r *runner) deleteKeys(bucket string, keys ...string) error {
	admin, err := r.admin(bucket)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := admin.Delete(r.ctx, k); err != nil {
			return fmt.Errorf("deleting %s: %w", k, err)
		}
	}
	return nil
}
