package main

import (
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// rerunPause separates W5's two runs: longer than bucketfs's 2 s delay
// before it writes attribute changes, so those are counted with the first
// run, not the rerun.
const rerunPause = 3 * time.Second

// runW5 measures `rsync -a` of RsyncFiles mixed files into a fresh mount,
// then, on the same mount, the no-op rerun with --itemize-changes, whose
// requests are reported separately and whose output must show no transfer.
// There is no ceiling: the figures of interest are requests per file.
func (r *runner) runW5(p *profile) ([]*result, error) {
	c := r.cfg
	first := &result{
		Workload: "W5", Name: fmt.Sprintf("rsync -a %d files", c.RsyncFiles), Profile: p.Name, Metric: metricSecs,
		Budget: c.UploadMemory + memoryOverhead, Per: "file",
		checks: []func(*result) goal{func(res *result) goal {
			per := res.Summary.RequestsPerItem
			return goal{Text: "≤ 4 requests per file", Met: per <= 4, Actual: fmt.Sprintf("%.2f per file", per)}
		}},
	}
	rerun := &result{
		Workload: "W5", Name: "rsync -a no-op rerun", Profile: p.Name, Metric: metricSecs,
		Budget: c.UploadMemory + memoryOverhead, Per: "file",
		checks: []func(*result) goal{func(res *result) goal {
			q := res.Summary.Requests
			writes := q.Requests("PutObject") + q.Requests("UploadPart") + q.Requests("CreateMultipartUpload") + q.Requests("CopyObject")
			transfers := 0.0
			for _, s := range res.Mount {
				transfers = max(transfers, s.Extra["itemized_transfers"])
			}
			return goal{
				Text:   "rerun: no GET or PUT, nothing transferred",
				Met:    q.Requests("GetObject") == 0 && writes == 0 && transfers == 0,
				Actual: fmt.Sprintf("%d GET, %d PUT/PART/COPY, %.0f files transferred", q.Requests("GetObject"), writes, transfers),
			}
		}},
	}
	results := []*result{first, rerun}
	for round := 1; round <= c.Rounds; round++ {
		s1, s2, err := r.rsyncRound(p, round)
		if err != nil {
			return results, err
		}
		if err := r.deletePrefix(bucketRsync, fmt.Sprintf("w5-%s-r%d/", p.Name, round)); err != nil {
			return results, err
		}
		first.Mount = append(first.Mount, s1)
		rerun.Mount = append(rerun.Mount, s2)
		r.progress.printf("  round %d: rsync %s (%s), rerun %s (%s)", round,
			formatValue(metricSecs, s1.Seconds), formatCounts(s1.Requests), formatValue(metricSecs, s2.Seconds), formatCounts(s2.Requests))
	}
	return results, nil
}

// rsyncRound runs both rsyncs on one fresh mount.
func (r *runner) rsyncRound(p *profile, round int) (first, rerun sample, err error) {
	c := r.cfg
	target := fmt.Sprintf("w5-%s-r%d", p.Name, round)
	m, err := r.startMount(p, bucketRsync, "", target)
	if err != nil {
		return first, rerun, err
	}
	defer func() {
		if uerr := m.stop(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	dst := m.Path(target) + "/"
	ph := r.begin(p, m)
	if err := runTool(r.ctx, "rsync", "-a", r.src.RsyncDir+"/", dst); err != nil {
		return first, rerun, err
	}
	ph.stop()
	time.Sleep(rerunPause)
	ph.capture()
	first = ph.sample(round, r.src.RsyncBytes, c.RsyncFiles)
	if err := r.checkCount(bucketRsync, target+"/", ".bin", c.RsyncFiles); err != nil {
		return first, rerun, err
	}

	ph = r.begin(p, m)
	out, err := exec.CommandContext(r.ctx, "rsync", "-a", "--itemize-changes", r.src.RsyncDir+"/", dst).CombinedOutput()
	if err != nil {
		return first, rerun, fmt.Errorf("rsync rerun: %v: %s", err, tail(string(out), 1000))
	}
	ph.stop()
	lines, transfers := 0, 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" {
			continue
		}
		lines++
		// ">f" sends a file; "c" creates an entry: either is a transfer.
		if strings.HasPrefix(l, ">") || strings.HasPrefix(l, "c") || strings.HasPrefix(l, "<") {
			transfers++
		}
	}
	// The rerun's requests run until the unmount, done by the deferred stop;
	// stop now instead so they can be counted.
	if uerr := m.stop(); uerr != nil {
		return first, rerun, uerr
	}
	rerun = ph.sample(round, 0, c.RsyncFiles)
	rerun.Extra = map[string]float64{"itemized_lines": float64(lines), "itemized_transfers": float64(transfers)}
	if w := m.warnings(); w > 0 {
		rerun.Extra["log_warnings"] = float64(w)
	}
	return first, rerun, nil
}
