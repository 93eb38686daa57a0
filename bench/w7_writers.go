package main

import (
	"fmt"
	"os"
	"sync"
)

// runW7 measures Writers concurrent `dd bs=1M` writers of WriterSize each
// into one mount, against as many concurrent SDK multipart uploads sharing
// the mount's upload concurrency. Every object is checked and deleted.
func (r *runner) runW7(p *profile) ([]*result, error) {
	c := r.cfg
	res := &result{
		Workload: "W7", Name: fmt.Sprintf("%d writers x %s", c.Writers, sizeFlag(c.WriterSize)), Profile: p.Name, Metric: metricMBps,
		Budget: c.UploadMemory + memoryOverhead,
	}
	want := r.src.etag(c.WriterSize, c.PartSize)
	total := int64(c.Writers) * c.WriterSize
	for round := 1; round <= c.Rounds; round++ {
		keys := func(side string) []string {
			var ks []string
			for i := 0; i < c.Writers; i++ {
				ks = append(ks, fmt.Sprintf("w7-%s-r%d-%s-%d", p.Name, round, side, i))
			}
			return ks
		}
		mountKeys, directKeys := keys("mount"), keys("direct")
		s, err := r.mountRun(p, bucketWrite, "", fmt.Sprintf("w7-%s-r%d", p.Name, round), nil, func(m *mount) (int64, int, error) {
			return total, c.Writers, parallel(mountKeys, func(k string) error {
				return ddWrite(r.ctx, r.src.SeqPath, m.Path(k), c.WriterSize)
			})
		})
		if err != nil {
			return []*result{res}, err
		}
		for _, k := range mountKeys {
			if err := r.checkObject(bucketWrite, k, c.WriterSize, want); err != nil {
				return []*result{res}, err
			}
		}
		s.Round = round
		res.Mount = append(res.Mount, s)
		r.progress.printf("  round %d mount: %s", round, formatValue(res.Metric, value(res.Metric, s)))

		d, err := r.directRun(p, func() (int64, int, error) {
			f, err := os.Open(r.src.SeqPath)
			if err != nil {
				return 0, 0, fmt.Errorf("opening the source: %w", err)
			}
			defer f.Close()
			slots := p.direct.newPartSlots()
			return total, c.Writers, parallel(directKeys, func(k string) error {
				etag, err := p.direct.upload(r.ctx, slots, bucketWrite, k, f, c.WriterSize)
				if err == nil && etag != want {
					err = fmt.Errorf("direct upload %s has ETag %s, want %s", k, etag, want)
				}
				return err
			})
		})
		if err != nil {
			return []*result{res}, err
		}
		d.Round = round
		res.Direct = append(res.Direct, d)
		r.progress.printf("  round %d direct: %s", round, formatValue(res.Metric, value(res.Metric, d)))
		if err := r.deleteKeys(bucketWrite, append(mountKeys, directKeys...)...); err != nil {
			return []*result{res}, err
		}
	}
	return []*result{res}, nil
}

// parallel runs fn on every item at once and returns the first error.
func parallel(items []string, fn func(string) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(items))
	for _, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(it); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
