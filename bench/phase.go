package main

import (
	"fmt"
	"time"

	"github.com/bucketfs/bucketfs/bench/s3proxy"
)

// sample is one measured run of one side (the mount or the direct SDK) of
// a workload in one round.
type sample struct {
	Round   int     `json:"round"`
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes"` // payload moved, for MB/s
	Items   int     `json:"items"` // files, objects or reads, for per-item figures
	// Requests are the S3 requests the proxy saw from the start of the phase
	// until the mount was unmounted (so writes bucketfs defers are counted).
	Requests s3proxy.Counts `json:"requests"`
	// PeakRSS and CPU are the bucketfs process's, during the phase (mount only).
	PeakRSS int64   `json:"peak_rss_bytes,omitempty"`
	CPU     float64 `json:"cpu_seconds,omitempty"`
	// Extra holds workload-specific figures (e.g. the rerun's itemized lines).
	Extra map[string]float64 `json:"extra,omitempty"`
}

// phase measures one sample: wall time from begin to stop, the bucketfs
// process's CPU time and peak RSS over the same span, and the proxy's
// request counts from begin to whenever the sample is taken.
type phase struct {
	p       *profile
	m       *mount // nil for a direct run
	start   time.Time
	elapsed time.Duration
	counts  s3proxy.Counts
	cpu0    time.Duration
	proc    procSample // at stop (or a later capture)
	procErr error
}

// begin starts a phase on the profile's proxy, for mount m (nil: direct).
func (r *runner) begin(p *profile, m *mount) *phase {
	ph := &phase{p: p, m: m}
	if m != nil {
		// Without clear_refs the peak covers the process's life, which
		// is close: every measured run has a fresh mount.
		_ = resetPeakRSS(m.PID())
		s, err := readProc(m.PID())
		if err != nil {
			ph.procErr = err
		}
		ph.cpu0 = s.CPU
	}
	ph.counts = p.proxy.Snapshot()
	ph.start = time.Now()
	return ph
}

// stop ends the timed span and samples the process.
func (ph *phase) stop() {
	ph.elapsed = time.Since(ph.start)
	ph.capture()
}

// capture samples the process again (before unmounting, so that CPU spent
// finishing the workload's requests counts).
func (ph *phase) capture() {
	if ph.m == nil {
		return
	}
	s, err := readProc(ph.m.PID())
	if err != nil {
		if ph.procErr == nil {
			ph.procErr = err
		}
		return
	}
	ph.proc = s
}

// sample builds the figures; the request counts run until now.
func (ph *phase) sample(round int, bytes int64, items int) sample {
	s := sample{
		Round:    round,
		Seconds:  ph.elapsed.Seconds(),
		Bytes:    bytes,
		Items:    items,
		Requests: ph.p.proxy.Snapshot().Sub(ph.counts),
	}
	if ph.m != nil && ph.procErr == nil {
		s.PeakRSS = ph.proc.PeakRSS
		s.CPU = (ph.proc.CPU - ph.cpu0).Seconds()
	}
	return s
}

// mountRun mounts bucket (under prefix) through p, runs prep (not
// measured), measures fn, unmounts, and returns the sample. The requests
// are counted until bucketfs has exited, so writes it defers (attribute
// changes, uploads finished at release) are included; the time is fn's.
func (r *runner) mountRun(p *profile, bucket, prefix, name string, prep func(*mount) error, fn func(*mount) (bytes int64, items int, err error)) (sample, error) {
	return r.mountRunWith(p, bucket, prefix, name, nil, prep, fn)
}

// mountRunWith is mountRun with extra bucketfs flags.
func (r *runner) mountRunWith(p *profile, bucket, prefix, name string, extra []string, prep func(*mount) error, fn func(*mount) (bytes int64, items int, err error)) (sample, error) {
	m, err := r.startMount(p, bucket, prefix, name, extra...)
	if err != nil {
		return sample{}, err
	}
	if prep != nil {
		if err := prep(m); err != nil {
			_ = m.stop()
			return sample{}, fmt.Errorf("%s: preparing: %w", name, err)
		}
	}
	ph := r.begin(p, m)
	n, items, err := fn(m)
	ph.stop()
	uerr := m.stop()
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", name, err)
	}
	if uerr != nil {
		return sample{}, fmt.Errorf("%s: %w", name, uerr)
	}
	s := ph.sample(0, n, items)
	if w := m.warnings(); w > 0 {
		s.Extra = map[string]float64{"log_warnings": float64(w)}
	}
	return s, nil
}

// directRun measures fn, a run of the ceiling through p's proxy.
func (r *runner) directRun(p *profile, fn func() (bytes int64, items int, err error)) (sample, error) {
	ph := r.begin(p, nil)
	n, items, err := fn()
	ph.stop()
	if err != nil {
		return sample{}, fmt.Errorf("direct: %w", err)
	}
	return ph.sample(0, n, items), nil
}
