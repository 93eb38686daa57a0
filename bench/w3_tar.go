package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// runW3 measures `tar x` of TarFiles small files (1 to 64 KiB) in TarDirs
// directories into a directory of the mount made before the clock starts;
// against the SDK writing the same files with one PutObject each, one after
// the other as tar does.
func (r *runner) runW3(p *profile) ([]*result, error) {
	c := r.cfg
	res := &result{
		Workload: "W3", Name: fmt.Sprintf("tar x %d files", c.TarFiles), Profile: p.Name, Metric: metricSecs,
		Budget: c.UploadMemory + memoryOverhead, Per: "file",
		checks: []func(*result) goal{func(res *result) goal {
			total := res.Summary.Requests.Total().Requests
			return goal{
				Text:   "1 request per file (+1 per directory)",
				Met:    total <= int64(c.TarFiles+c.TarDirs),
				Actual: fmt.Sprintf("%d requests for %d files and %d dirs", total, c.TarFiles, c.TarDirs),
			}
		}},
	}
	results := []*result{res}
	var withMetrics *result
	if c.Metrics {
		withMetrics = metricsRow(res)
		withMetrics.checks = res.checks
		results = append(results, withMetrics)
	}
	for round := 1; round <= c.Rounds; round++ {
		target := fmt.Sprintf("w3-%s-r%d", p.Name, round)
		// untar measures tar x into dir on a mount made by run (mountRun or
		// metricsRun), checks the objects and removes them.
		untar := func(dir string, run func(*profile, string, string, string, func(*mount) error, func(*mount) (int64, int, error)) (sample, error)) (sample, error) {
			s, err := run(p, bucketTar, "", dir, func(m *mount) error {
				return os.Mkdir(m.Path(dir), 0o755)
			}, func(m *mount) (int64, int, error) {
				return r.tarSize(), c.TarFiles, runTool(r.ctx, "tar", "xf", r.src.TarPath, "-C", m.Path(dir))
			})
			if err != nil {
				return s, err
			}
			if err := r.checkCount(bucketTar, dir+"/", ".bin", c.TarFiles); err != nil {
				return s, err
			}
			s.Round = round
			return s, r.deletePrefix(bucketTar, dir+"/")
		}
		var plain sample
		mountSide := func() error {
			s, err := untar(target, r.mountRun)
			if err != nil {
				return err
			}
			plain = s
			res.Mount = append(res.Mount, s)
			r.progress.printf("  round %d mount: %s, %s", round, formatValue(res.Metric, s.Seconds), formatCounts(s.Requests))
			return nil
		}
		metricsSide := func() error {
			s, err := untar(target+"-metrics", r.metricsRun)
			if err != nil {
				return err
			}
			withMetrics.Mount = append(withMetrics.Mount, s)
			r.progress.printf("  round %d mount with --metrics-addr: %s, %s", round, formatValue(res.Metric, s.Seconds), formatCounts(s.Requests))
			return nil
		}
		if err := runSides(round, withMetrics, &plain, mountSide, metricsSide); err != nil {
			return results, err
		}

		d, err := r.directRun(p, func() (int64, int, error) {
			for _, f := range r.src.tarFiles {
				if err := p.direct.put(r.ctx, bucketTar, target+"-direct/"+f.Name, f.Data); err != nil {
					return 0, 0, err
				}
			}
			return r.tarSize(), len(r.src.tarFiles), nil
		})
		if err != nil {
			return results, err
		}
		d.Round = round
		res.Direct = append(res.Direct, d)
		r.progress.printf("  round %d direct: %s", round, formatValue(res.Metric, d.Seconds))
		if err := r.deletePrefix(bucketTar, target+"-direct/"); err != nil {
			return results, err
		}
	}
	return results, nil
}

func (r *runner) tarSize() int64 {
	var n int64
	for _, f := range r.src.tarFiles {
		n += int64(len(f.Data))
	}
	return n
}

// runTool runs a command, failing with its output.
func runTool(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, tail(string(out), 1000))
	}
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// checkCount verifies, straight from MinIO, that want objects whose key
// ends in suffix lie under prefix.
func (r *runner) checkCount(bucket, prefix, suffix string, want int) error {
	admin, err := r.admin(bucket)
	if err != nil {
		return err
	}
	n, token := 0, ""
	for {
		page, err := admin.List(r.ctx, prefix, "", token, 1000)
		if err != nil {
			return fmt.Errorf("listing %s: %w", prefix, err)
		}
		for _, o := range page.Objects {
			if strings.HasSuffix(o.Key, suffix) {
				n++
			}
		}
		if page.NextToken == "" {
			break
		}
		token = page.NextToken
	}
	if n != want {
		return fmt.Errorf("%d objects under %s after the workload, want %d", n, prefix, want)
	}
	return nil
}

// deletePrefix removes every object under prefix straight from MinIO.
func (r *runner) deletePrefix(bucket, prefix string) error {
	admin, err := r.admin(bucket)
	if err != nil {
		return err
	}
	for {
		page, err := admin.List(r.ctx, prefix, "", "", 1000)
		if err != nil {
			return fmt.Errorf("listing %s: %w", prefix, err)
		}
		if len(page.Objects) == 0 {
			return nil
		}
		keys := make([]string, len(page.Objects))
		for i, o := range page.Objects {
			keys[i] = o.Key
		}
		if err := admin.DeleteMany(r.ctx, keys); err != nil {
			return fmt.Errorf("deleting under %s: %w", prefix, err)
		}
	}
}
