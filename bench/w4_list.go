package main

import (
	"fmt"
	"os/exec"
	"strings"
)

// runW4 measures listing ListObjects objects on a fresh mount each time:
// `ls -l` of one directory holding them all (the mount's root, with
// --prefix flat/, so no lookup of the directory itself is counted), and
// `find` over a tree of 100 objects per directory (--prefix tree/). The
// ceiling is the SDK paging through ListObjectsV2 of the same prefix
// (delimited for ls, recursive for find).
func (r *runner) runW4(p *profile) ([]*result, error) {
	c := r.cfg
	maxLists := int64((c.ListObjects+999)/1000 + 1)
	ls := &result{
		Workload: "W4", Name: fmt.Sprintf("ls -l %d objects", c.ListObjects), Profile: p.Name, Metric: metricSecs,
		Budget: memoryOverhead, Per: "object",
		checks: []func(*result) goal{func(res *result) goal {
			lists, heads := res.Summary.Requests.Requests("ListObjectsV2"), res.Summary.Requests.Requests("HeadObject")
			return goal{
				Text:   fmt.Sprintf("≤ %d LIST and 0 HEAD", maxLists),
				Met:    lists <= maxLists && heads == 0,
				Actual: fmt.Sprintf("%d LIST, %d HEAD, %d in all", lists, heads, res.Summary.Requests.Total().Requests),
			}
		}},
	}
	find := &result{
		Workload: "W4", Name: fmt.Sprintf("find %d objects", c.ListObjects), Profile: p.Name, Metric: metricSecs,
		Budget: memoryOverhead, Per: "object",
		checks: []func(*result) goal{func(res *result) goal {
			heads := res.Summary.Requests.Requests("HeadObject")
			return goal{Text: "0 HEAD", Met: heads == 0, Actual: fmt.Sprintf("%d HEAD", heads)}
		}},
	}
	results := []*result{ls, find}
	type variant struct {
		res       *result
		prefix    string
		delimiter string
		cmd       func(dir string) *exec.Cmd
		lines     int // output lines wanted
	}
	variants := []variant{
		{ls, "flat/", "/", func(dir string) *exec.Cmd { return exec.CommandContext(r.ctx, "ls", "-l", dir) }, c.ListObjects + 1},
		{find, "tree/", "", func(dir string) *exec.Cmd { return exec.CommandContext(r.ctx, "find", dir, "-type", "f") }, c.ListObjects},
	}
	for round := 1; round <= c.Rounds; round++ {
		for _, v := range variants {
			name := fmt.Sprintf("w4-%s-%s-r%d", strings.TrimSuffix(v.prefix, "/"), p.Name, round)
			s, err := r.mountRun(p, bucketList, v.prefix, name, nil, func(m *mount) (int64, int, error) {
				out, err := v.cmd(m.Dir).Output()
				if err != nil {
					return 0, 0, fmt.Errorf("listing %s: %w", m.Dir, err)
				}
				if n := strings.Count(string(out), "\n"); n != v.lines {
					return 0, 0, fmt.Errorf("listing %s printed %d lines, want %d", m.Dir, n, v.lines)
				}
				return 0, c.ListObjects, nil
			})
			if err != nil {
				return results, err
			}
			s.Round = round
			v.res.Mount = append(v.res.Mount, s)
			r.progress.printf("  round %d mount %s: %s, %s", round, v.res.Name, formatValue(metricSecs, s.Seconds), formatCounts(s.Requests))
			d, err := r.directRun(p, func() (int64, int, error) {
				n, err := p.direct.list(r.ctx, bucketList, v.prefix, v.delimiter)
				if err == nil && n < c.ListObjects {
					err = fmt.Errorf("direct listing of %s found %d entries, want at least %d", v.prefix, n, c.ListObjects)
				}
				return 0, c.ListObjects, err
			})
			if err != nil {
				return results, err
			}
			d.Round = round
			v.res.Direct = append(v.res.Direct, d)
		}
	}
	return results, nil
}
