package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/bucketfs/bucketfs/bench/s3proxy"
)

// Metrics a result can be measured in.
const (
	metricMBps   = "MB/s"    // payload bytes / 10^6 / seconds; higher is better
	metricSecs   = "s"       // wall seconds; lower is better
	metricMsRead = "ms/read" // wall milliseconds per read; lower is better
)

// result is one row of the report: a workload (or one phase of it) at one
// latency profile, over every round.
type result struct {
	Workload string   `json:"workload"`
	Name     string   `json:"name"`
	Profile  string   `json:"latency"`
	Metric   string   `json:"metric"`
	Mount    []sample `json:"mount"`
	Direct   []sample `json:"direct,omitempty"`
	// Budget is the peak RSS the bucketfs process may reach in this workload.
	Budget int64 `json:"rss_budget_bytes,omitempty"`
	// Per names what Items counts ("file", "read", "object"), for requests per item.
	Per     string   `json:"per,omitempty"`
	Summary summary  `json:"summary"`
	Goals   []goal   `json:"goals,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	Err     string   `json:"error,omitempty"`

	checks []func(*result) goal // goals specific to the workload, evaluated by summarize
}

// summary condenses the rounds: medians of time and CPU, the largest
// request counts and peak RSS (the conservative figures for goals).
type summary struct {
	Mount           float64        `json:"mount"`            // median, in Metric
	Direct          float64        `json:"direct,omitempty"` // median, in Metric
	Ratio           float64        `json:"ratio,omitempty"`  // mount throughput / direct throughput
	MountSeconds    float64        `json:"mount_seconds"`
	DirectSeconds   float64        `json:"direct_seconds,omitempty"`
	Requests        s3proxy.Counts `json:"requests"` // per op, the most of any round
	DirectRequests  s3proxy.Counts `json:"direct_requests,omitempty"`
	RequestsPerItem float64        `json:"requests_per_item,omitempty"`
	PeakRSSMiB      float64        `json:"peak_rss_mib"`
	CPUSeconds      float64        `json:"cpu_seconds"` // median
}

// goal is one target the figures are held against.
type goal struct {
	Text   string `json:"goal"`
	Met    bool   `json:"met"`
	Actual string `json:"actual"`
}

// value is a sample's figure in metric.
func value(metric string, s sample) float64 {
	switch metric {
	case metricMBps:
		if s.Seconds == 0 {
			return 0
		}
		return float64(s.Bytes) / 1e6 / s.Seconds
	case metricMsRead:
		if s.Items == 0 {
			return 0
		}
		return s.Seconds * 1000 / float64(s.Items)
	}
	return s.Seconds
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// maxCounts is, per operation, the largest count of any sample.
func maxCounts(samples []sample) s3proxy.Counts {
	out := s3proxy.Counts{}
	for _, s := range samples {
		for op, v := range s.Requests {
			cur := out[op]
			cur.Requests = max(cur.Requests, v.Requests)
			cur.BytesUp = max(cur.BytesUp, v.BytesUp)
			cur.BytesDown = max(cur.BytesDown, v.BytesDown)
			out[op] = cur
		}
	}
	return out
}

// summarize computes the summary and evaluates the goals.
func (res *result) summarize(c benchConfig) {
	if len(res.Mount) == 0 {
		return
	}
	var vals, secs, cpus []float64
	var rss int64
	items := 0
	for _, s := range res.Mount {
		vals = append(vals, value(res.Metric, s))
		secs = append(secs, s.Seconds)
		cpus = append(cpus, s.CPU)
		rss = max(rss, s.PeakRSS)
		items = max(items, s.Items)
	}
	sm := summary{
		Mount:        median(vals),
		MountSeconds: median(secs),
		Requests:     maxCounts(res.Mount),
		PeakRSSMiB:   float64(rss) / mib,
		CPUSeconds:   median(cpus),
	}
	if items > 0 && res.Per != "" {
		sm.RequestsPerItem = float64(sm.Requests.Total().Requests) / float64(items)
	}
	if len(res.Direct) > 0 {
		var dv, ds []float64
		for _, s := range res.Direct {
			dv = append(dv, value(res.Metric, s))
			ds = append(ds, s.Seconds)
		}
		sm.Direct, sm.DirectSeconds = median(dv), median(ds)
		sm.DirectRequests = maxCounts(res.Direct)
		if sm.Mount > 0 && sm.Direct > 0 {
			if res.Metric == metricMBps {
				sm.Ratio = sm.Mount / sm.Direct
			} else {
				sm.Ratio = sm.Direct / sm.Mount
			}
		}
	}
	res.Summary = sm
	warnings := 0.0
	for _, s := range res.Mount {
		warnings = max(warnings, s.Extra["log_warnings"])
	}
	if warnings > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("bucketfs logged %.0f warning or error lines in a round (logs kept in bench-results/bucketfs-logs-*)", warnings))
	}
	res.Goals = nil
	for _, check := range res.checks {
		res.Goals = append(res.Goals, check(res))
	}
	if res.Budget > 0 && rss > 0 {
		res.Goals = append(res.Goals, goal{
			Text:   fmt.Sprintf("peak RSS ≤ %d MiB", res.Budget/mib),
			Met:    rss <= res.Budget,
			Actual: fmt.Sprintf("%.0f MiB", sm.PeakRSSMiB),
		})
	}
}

// ratioGoal holds the mount to at least min times the ceiling.
func ratioGoal(what string, min float64) func(*result) goal {
	return func(res *result) goal {
		return goal{Text: fmt.Sprintf("%s ≥ %.1f× direct", what, min), Met: res.Summary.Ratio >= min, Actual: fmt.Sprintf("%.2f×", res.Summary.Ratio)}
	}
}

// line is the one-line progress summary of a result.
func (res *result) line() string {
	if res.Err != "" && len(res.Mount) == 0 {
		return fmt.Sprintf("%s %s: error: %s", res.Workload, res.Profile, res.Err)
	}
	s := res.Summary
	b := fmt.Sprintf("%s %s %s: mount %s", res.Workload, res.Name, res.Profile, formatValue(res.Metric, s.Mount))
	if len(res.Direct) > 0 {
		b += fmt.Sprintf(", direct %s, ratio %.2f", formatValue(res.Metric, s.Direct), s.Ratio)
	}
	b += fmt.Sprintf("; %s; RSS %.0f MiB, CPU %.1fs", formatCounts(s.Requests), s.PeakRSSMiB, s.CPUSeconds)
	for _, g := range res.Goals {
		b += fmt.Sprintf("; %s: %s", g.Text, metText(g.Met))
	}
	if res.Err != "" {
		b += fmt.Sprintf("; failed after %d round(s): %s", len(res.Mount), res.Err)
	}
	return b
}

func metText(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}

func formatValue(metric string, v float64) string {
	switch metric {
	case metricMBps:
		return fmt.Sprintf("%.0f MB/s", v)
	case metricMsRead:
		return fmt.Sprintf("%.1f ms/read", v)
	}
	return fmt.Sprintf("%.2f s", v)
}

// shortOps abbreviates operation names in the table.
var shortOps = map[string]string{
	"GetObject": "GET", "HeadObject": "HEAD", "PutObject": "PUT", "ListObjectsV2": "LIST",
	"UploadPart": "PART", "CreateMultipartUpload": "CREATE", "CompleteMultipartUpload": "COMPLETE",
	"AbortMultipartUpload": "ABORT", "CopyObject": "COPY", "DeleteObject": "DELETE",
	"DeleteObjects": "DELETES", "UploadPartCopy": "PARTCOPY", "HeadBucket": "HEADBUCKET",
}

func formatCounts(c s3proxy.Counts) string {
	if len(c) == 0 {
		return "no requests"
	}
	var parts []string
	for _, op := range c.Ops() {
		name := shortOps[op]
		if name == "" {
			name = op
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, c[op].Requests))
	}
	return strings.Join(parts, ", ")
}

// report is the whole run.
type report struct {
	Config  benchConfig       `json:"config"`
	Host    map[string]string `json:"host"`
	Started time.Time         `json:"started"`
	Seconds float64           `json:"seconds"`
	Results []*result         `json:"results"`
}

func hostInfo(root string) map[string]string {
	h := map[string]string{"go": runtime.Version(), "cpus": fmt.Sprint(runtime.NumCPU())}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		h["kernel"] = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
		h["commit"] = strings.TrimSpace(string(out))
	}
	return h
}

func (rep *report) failures() int {
	n := 0
	for _, r := range rep.Results {
		if r.Err != "" {
			n++
		}
	}
	return n
}

// write saves the report as JSON and markdown in dir and returns the markdown.
func (rep *report) write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	stamp := rep.Started.UTC().Format("20060102-150405")
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encoding the results: %w", err)
	}
	jsonPath := filepath.Join(dir, "results-"+stamp+".json")
	if err := os.WriteFile(jsonPath, js, 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", jsonPath, err)
	}
	md := rep.markdown()
	mdPath := filepath.Join(dir, "results-"+stamp+".md")
	if err := os.WriteFile(mdPath, []byte(md), 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", mdPath, err)
	}
	return md + fmt.Sprintf("\nwritten to %s and %s\n", jsonPath, mdPath), nil
}

// oneLine makes an error fit a table cell.
func oneLine(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", "/")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func (rep *report) markdown() string {
	c := rep.Config
	var b strings.Builder
	mode := "full"
	if c.Quick {
		mode = "QUICK"
	}
	fmt.Fprintf(&b, "# bucketfs benchmark, %s\n\n", rep.Started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "%s run, %d round(s), %.0f s; host: %s CPUs, kernel %s, %s, commit %s.\n", mode, c.Rounds, rep.Seconds,
		rep.Host["cpus"], rep.Host["kernel"], rep.Host["go"], rep.Host["commit"])
	fmt.Fprintf(&b, "Mount and ceiling: part size %s, upload concurrency %d, upload memory %s, read-ahead %s in %s blocks.\n",
		sizeFlag(c.PartSize), c.UploadConcurrency, sizeFlag(c.UploadMemory), sizeFlag(c.ReadAhead), sizeFlag(c.ReadBlock))
	for _, p := range c.Profiles {
		bw := "no bandwidth cap"
		if p.BandwidthPerConn > 0 {
			bw = fmt.Sprintf("%s/s per connection each way", sizeFlag(p.BandwidthPerConn))
		}
		fmt.Fprintf(&b, "Latency %s: first-byte delay %v, %s.\n", p.Name, p.FirstByteDelay, bw)
	}
	b.WriteString("\n| workload | latency | mount | ceiling | ratio | requests (mount) | req/item | peak RSS MiB | CPU s | goals |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Results {
		if r.Err != "" && len(r.Mount) == 0 {
			fmt.Fprintf(&b, "| %s %s | %s | error: %s | | | | | | | |\n", r.Workload, r.Name, r.Profile, oneLine(r.Err))
			continue
		}
		s := r.Summary
		ceiling, ratio := "", ""
		if len(r.Direct) > 0 {
			ceiling = formatValue(r.Metric, s.Direct)
			ratio = fmt.Sprintf("%.2f", s.Ratio)
		}
		perItem := ""
		if s.RequestsPerItem > 0 {
			perItem = fmt.Sprintf("%.2f/%s", s.RequestsPerItem, r.Per)
		}
		var goals []string
		for _, g := range r.Goals {
			goals = append(goals, fmt.Sprintf("%s: **%s** (%s)", g.Text, metText(g.Met), g.Actual))
		}
		if r.Err != "" {
			goals = append(goals, fmt.Sprintf("**failed after %d round(s)**: %s", len(r.Mount), oneLine(r.Err)))
		}
		fmt.Fprintf(&b, "| %s %s | %s | %s | %s | %s | %s | %s | %.0f | %.1f | %s |\n",
			r.Workload, r.Name, r.Profile, formatValue(r.Metric, s.Mount), ceiling, ratio,
			formatCounts(s.Requests), perItem, s.PeakRSSMiB, s.CPUSeconds, strings.Join(goals, "; "))
	}
	b.WriteString("\n## Goals\n\n| workload | latency | goal | actual | met |\n|---|---|---|---|---|\n")
	met, total := 0, 0
	for _, r := range rep.Results {
		for _, g := range r.Goals {
			total++
			if g.Met {
				met++
			}
			fmt.Fprintf(&b, "| %s %s | %s | %s | %s | %s |\n", r.Workload, r.Name, r.Profile, g.Text, g.Actual, metText(g.Met))
		}
	}
	fmt.Fprintf(&b, "\n%d of %d goals met.\n", met, total)
	var notes []string
	for _, r := range rep.Results {
		for _, n := range r.Notes {
			notes = append(notes, fmt.Sprintf("- %s %s: %s", r.Workload, r.Profile, n))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n## Notes\n\n" + strings.Join(notes, "\n") + "\n")
	}
	return b.String()
}
