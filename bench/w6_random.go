package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"time"
)

// runW6 measures random reads of the SeqSize object on a fresh mount:
// RandomReads reads of 4 KiB, then as many of 1 MiB, at random 4 KiB-aligned
// offsets with pread (os.File.ReadAt), each checked against the source.
// The ceiling is the same ranged GETs, one after the other, by the SDK.
func (r *runner) runW6(p *profile) ([]*result, error) {
	c := r.cfg
	sizes := []int64{4 * kib, mib}
	var results []*result
	for _, size := range sizes {
		// Through the page cache the kernel reads ahead after a large
		// read: up to one more GET.
		most := 1
		if size > 4*kib && !c.directIO() {
			most = 2
		}
		results = append(results, &result{
			Workload: "W6", Name: fmt.Sprintf("random %s reads", sizeFlagShort(size)), Profile: p.Name, Metric: metricMsRead,
			Budget: c.ReadAhead + memoryOverhead, Per: "read",
			checks: []func(*result) goal{getsPerReadGoal(most)},
		})
	}
	src, err := os.Open(r.src.SeqPath)
	if err != nil {
		return results, fmt.Errorf("opening the source: %w", err)
	}
	defer src.Close()
	for round := 1; round <= c.Rounds; round++ {
		offsets := make([][]int64, len(sizes))
		for i, size := range sizes {
			rng := rand.New(rand.NewPCG(uint64(round), uint64(size)+uint64(len(p.Name))))
			for j := 0; j < c.RandomReads; j++ {
				offsets[i] = append(offsets[i], rng.Int64N((c.SeqSize-size)/(4*kib))*4*kib)
			}
		}
		mounted, err := r.randomReadsMount(p, round, sizes, offsets, src)
		if err != nil {
			return results, err
		}
		for i := range sizes {
			mounted[i].Round = round
			results[i].Mount = append(results[i].Mount, mounted[i])
			r.progress.printf("  round %d mount %s: %s, GETs %d", round, results[i].Name, formatValue(metricMsRead, value(metricMsRead, mounted[i])), mounted[i].Requests.Requests("GetObject"))
		}
		for i, size := range sizes {
			buf, want := make([]byte, size), make([]byte, size)
			d, err := r.directRun(p, func() (int64, int, error) {
				for _, off := range offsets[i] {
					if err := p.direct.getRange(r.ctx, bucketRead, seqKey, off, buf); err != nil {
						return 0, 0, err
					}
					if _, err := src.ReadAt(want, off); err != nil || !bytes.Equal(buf, want) {
						return 0, 0, fmt.Errorf("direct read at %d differs from the source (%v)", off, err)
					}
				}
				return int64(len(offsets[i])) * size, len(offsets[i]), nil
			})
			if err != nil {
				return results, err
			}
			d.Round = round
			results[i].Direct = append(results[i].Direct, d)
		}
	}
	return results, nil
}

// randomReadsMount runs one round's reads on a fresh mount, one phase per
// size, each on a file opened for it and closed (stopping any read-ahead)
// before its requests are counted.
func (r *runner) randomReadsMount(p *profile, round int, sizes []int64, offsets [][]int64, src *os.File) (out []sample, err error) {
	m, err := r.startMount(p, bucketRead, "", fmt.Sprintf("w6-%s-r%d", p.Name, round))
	if err != nil {
		return nil, err
	}
	defer func() {
		if uerr := m.stop(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	for i, size := range sizes {
		buf, want := make([]byte, size), make([]byte, size)
		f, err := os.Open(m.Path(seqKey))
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", seqKey, err)
		}
		ph := r.begin(p, m)
		for _, off := range offsets[i] {
			if r.ctx.Err() != nil {
				f.Close()
				return nil, r.ctx.Err()
			}
			if _, err := f.ReadAt(buf, off); err != nil {
				f.Close()
				return nil, fmt.Errorf("reading %s at %d through the mount: %w", seqKey, off, err)
			}
			if _, err := src.ReadAt(want, off); err != nil || !bytes.Equal(buf, want) {
				f.Close()
				return nil, fmt.Errorf("read at %d through the mount differs from the source (%v)", off, err)
			}
		}
		ph.stop()
		f.Close()
		// Let the release reach bucketfs and any prefetch it started be
		// counted in this phase, not the next.
		time.Sleep(500 * time.Millisecond)
		out = append(out, ph.sample(round, int64(len(offsets[i]))*size, len(offsets[i])))
	}
	return out, nil
}

// getsPerReadGoal: a random read costs at most most GETs.
func getsPerReadGoal(most int) func(*result) goal {
	return func(res *result) goal {
		gets := res.Summary.Requests.Requests("GetObject")
		items := 0
		for _, s := range res.Mount {
			items = max(items, s.Items)
		}
		per := float64(gets) / float64(max(items, 1))
		text := "1 GET per random read"
		if most > 1 {
			text = fmt.Sprintf("at most %d GETs per random read", most)
		}
		return goal{Text: text, Met: per <= float64(most), Actual: fmt.Sprintf("%d GETs for %d reads, %.0f KiB fetched/read", gets, items, float64(res.Summary.Requests["GetObject"].BytesDown)/float64(max(items, 1))/kib)}
	}
}

// sizeFlagShort formats 4096 as 4KiB and 1048576 as 1MiB.
func sizeFlagShort(n int64) string {
	if n%mib == 0 {
		return fmt.Sprintf("%dMiB", n/mib)
	}
	return fmt.Sprintf("%dKiB", n/kib)
}
