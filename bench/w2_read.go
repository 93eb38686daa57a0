package main

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"
)

// runW2 measures a cold sequential read of the SeqSize object: a fresh
// mount each round (no cached data), read in 1 MiB reads as dd bs=1M does
// and checked block by block against the source's CRC32C; against a
// parallel ranged-GET download by the SDK with bucketfs's block size and
// read-ahead concurrency. Then, on the same mount, a warm re-read of the
// same file opened again: what a second cat, a build or git status pays
// (its ceiling is the same download, which has no cache).
func (r *runner) runW2(p *profile) ([]*result, error) {
	c := r.cfg
	cold := &result{
		Workload: "W2", Name: fmt.Sprintf("cold read %s", sizeFlag(c.SeqSize)), Profile: p.Name, Metric: metricMBps,
		Budget: c.ReadAhead + memoryOverhead,
		checks: []func(*result) goal{ratioGoal("read", 0.9)},
	}
	warm := &result{
		Workload: "W2", Name: fmt.Sprintf("warm re-read %s", sizeFlag(c.SeqSize)), Profile: p.Name, Metric: metricMBps,
		Budget: c.ReadAhead + memoryOverhead,
		checks: []func(*result) goal{noGetGoal},
	}
	results := []*result{cold, warm}
	for round := 1; round <= c.Rounds; round++ {
		s, w, err := r.coldAndWarm(p, round)
		if err != nil {
			return results, err
		}
		cold.Mount = append(cold.Mount, s)
		warm.Mount = append(warm.Mount, w)
		r.progress.printf("  round %d mount: cold %s, warm %s (%d GETs)", round, formatValue(metricMBps, value(metricMBps, s)),
			formatValue(metricMBps, value(metricMBps, w)), w.Requests.Requests("GetObject"))

		d, err := r.directRun(p, func() (int64, int, error) {
			n, err := p.direct.download(r.ctx, bucketRead, seqKey, c.SeqSize)
			if err == nil && n != c.SeqSize {
				err = fmt.Errorf("downloaded %d bytes, want %d", n, c.SeqSize)
			}
			return n, 1, err
		})
		if err != nil {
			return results, err
		}
		d.Round = round
		cold.Direct = append(cold.Direct, d)
		warm.Direct = append(warm.Direct, d)
		r.progress.printf("  round %d direct: %s", round, formatValue(metricMBps, value(metricMBps, d)))
	}
	return results, nil
}

// coldAndWarm reads the object twice on one fresh mount, each time opened
// anew, and returns the two samples; each counts the requests of its read.
func (r *runner) coldAndWarm(p *profile, round int) (cold, warm sample, err error) {
	c := r.cfg
	m, err := r.startMount(p, bucketRead, "", fmt.Sprintf("w2-%s-r%d", p.Name, round))
	if err != nil {
		return cold, warm, err
	}
	defer func() {
		if uerr := m.stop(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	for i, out := range []*sample{&cold, &warm} {
		ph := r.begin(p, m)
		n, err := readAndCheck(r.ctx, m.Path(seqKey), c.ReadBlock, r.src.blockCRC)
		ph.stop()
		if err != nil {
			return cold, warm, fmt.Errorf("w2 read %d: %w", i+1, err)
		}
		// Let the release reach bucketfs and any read-ahead still in
		// flight be counted in this phase.
		time.Sleep(500 * time.Millisecond)
		*out = ph.sample(round, n, 1)
	}
	if w := m.warnings(); w > 0 {
		cold.Extra = map[string]float64{"log_warnings": float64(w)}
	}
	return cold, warm, nil
}

// noGetGoal: re-reading an unchanged file costs no GET.
func noGetGoal(res *result) goal {
	gets := res.Summary.Requests.Requests("GetObject")
	return goal{Text: "no GET on a re-read", Met: gets == 0, Actual: fmt.Sprintf("%d GETs", gets)}
}

// readAndCheck reads path to its end in 1 MiB reads and checks each block
// of blockSize against its CRC32C; it returns the bytes read.
func readAndCheck(ctx context.Context, path string, blockSize int64, crcs []uint32) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, mib)
	var total int64
	var crc uint32
	for {
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
		n, err := f.Read(buf)
		for done := 0; done < n; {
			// Feed the CRC up to the end of the current block.
			room := int(blockSize - total%blockSize)
			k := min(n-done, room)
			crc = crc32.Update(crc, castagnoli, buf[done:done+k])
			done += k
			total += int64(k)
			if total%blockSize == 0 {
				i := int(total/blockSize) - 1
				if i >= len(crcs) || crc != crcs[i] {
					return total, fmt.Errorf("%s: block %d read through the mount differs from the source", path, i)
				}
				crc = 0
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return total, fmt.Errorf("reading %s at %d: %w", path, total, err)
		}
	}
	if total != int64(len(crcs))*blockSize {
		return total, fmt.Errorf("%s: read %d bytes, want %d", path, total, int64(len(crcs))*blockSize)
	}
	return total, nil
}
