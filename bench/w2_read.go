package main

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// runW2 measures a cold sequential read of the SeqSize object: a fresh
// mount each round (no cached data), read in 1 MiB reads as dd bs=1M does
// and checked block by block against the source's CRC32C; against a
// parallel ranged-GET download by the SDK with bucketfs's block size and
// read-ahead concurrency.
func (r *runner) runW2(p *profile) ([]*result, error) {
	c := r.cfg
	res := &result{
		Workload: "W2", Name: fmt.Sprintf("cold read %s", sizeFlag(c.SeqSize)), Profile: p.Name, Metric: metricMBps,
		Budget: c.ReadAhead + memoryOverhead,
		checks: []func(*result) goal{ratioGoal("read", 0.9)},
	}
	for round := 1; round <= c.Rounds; round++ {
		name := fmt.Sprintf("w2-%s-r%d", p.Name, round)
		s, err := r.mountRun(p, bucketRead, "", name, nil, func(m *mount) (int64, int, error) {
			n, err := readAndCheck(r.ctx, m.Path(seqKey), c.ReadBlock, r.src.blockCRC)
			return n, 1, err
		})
		if err != nil {
			return []*result{res}, err
		}
		s.Round = round
		res.Mount = append(res.Mount, s)
		r.progress.printf("  round %d mount: %s", round, formatValue(res.Metric, value(res.Metric, s)))

		d, err := r.directRun(p, func() (int64, int, error) {
			n, err := p.direct.download(r.ctx, bucketRead, seqKey, c.SeqSize)
			if err == nil && n != c.SeqSize {
				err = fmt.Errorf("downloaded %d bytes, want %d", n, c.SeqSize)
			}
			return n, 1, err
		})
		if err != nil {
			return []*result{res}, err
		}
		d.Round = round
		res.Direct = append(res.Direct, d)
		r.progress.printf("  round %d direct: %s", round, formatValue(res.Metric, value(res.Metric, d)))
	}
	return []*result{res}, nil
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
