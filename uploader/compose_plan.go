package uploader

import (
	"errors"
	"fmt"
)

// composePart is one part of a composed object: bytes [off, end) of the
// new object, copied on the server from the base at the same offsets
// (copied) or read from the layout's Data and uploaded.
type composePart struct {
	off, end int64
	copied   bool
}

func (p composePart) size() int64 { return p.end - p.off }

// composePlan is how an object is composed: its parts in order. A plan of
// one part that is not copied is written with one PutObject.
type composePlan struct {
	parts []composePart
	// minPart is the size every part but the last reaches: MinPartSize,
	// or more when 5 MiB parts would need more than MaxParts.
	minPart int64
	// maxData is the size no data part exceeds.
	maxData int64
}

// put says the plan is one PutObject of the whole object.
func (p composePlan) put() bool { return len(p.parts) == 1 && !p.parts[0].copied }

// errLayout marks a Layout that breaks its own contract (the caller's bug).
var errLayout = errors.New("invalid layout")

// checkLayout checks what Layout's comment promises about Same and Base.
func checkLayout(l Layout) error {
	switch {
	case l.Size < 0 || l.Size > MaxObjectSize:
		return fmt.Errorf("%w: size %d is outside 0 to 5 TiB", errLayout, l.Size)
	case len(l.Same) == 0:
		return nil
	case l.Base.Key == "" || l.Base.ETag == "":
		// Without the ETag the copies would take whatever the key holds
		// when they run: an outside change would be merged, not refused.
		return fmt.Errorf("%w: ranges equal to a base that has no key or no ETag (%q, %q)", errLayout, l.Base.Key, l.Base.ETag)
	}
	limit := min(l.Size, l.Base.Size)
	var prev int64
	for i, r := range l.Same {
		if r.Off < prev || r.End <= r.Off || r.End > limit {
			return fmt.Errorf("%w: same range %d [%d, %d) is empty, out of order, overlapping, or past %d (size %d, base size %d)",
				errLayout, i, r.Off, r.End, limit, l.Size, l.Base.Size)
		}
		prev = r.End
	}
	return nil
}

// planCompose cuts the object l describes into the parts of its upload,
// first to last. partSize is Config.PartSize, the data parts' usual size.
//
// An object under MinPartSize is one PutObject. Otherwise the plan walks
// the Same runs (adjacent ranges merged) greedily, keeping a pending
// stretch of data: the bytes since the end of the last copied part.
//   - A run of at least minPart is copied whole (in parts of at most
//     5 GiB) after the pending data, when that stretch is empty or at
//     least minPart long.
//   - A pending stretch shorter than minPart cannot be a part of its own:
//     it borrows from the run that follows (reading those bytes from
//     Data) just what it lacks, and the rest of the run is copied if it
//     still reaches minPart. Otherwise the whole run joins the stretch,
//     as does any run shorter than minPart: such bytes are read.
//   - The last part may be of any size, so a run that ends the object is
//     copied whatever is left of it once the stretch before it is long
//     enough.
//
// A pending stretch becomes data parts of at most maxData bytes, of equal
// size; maxData is at least twice minPart, so each is at least minPart.
// maxData grows with the object: max(partSize, 10 MiB, Size/9000), at
// most 5 GiB. Every part but the last reaches minPart, which is
// MinPartSize unless that plan has more than MaxParts parts; then it is
// replanned with minPart = Size/9999 (rounded up), which caps the parts
// at 10,000 whatever the layout (a few hundred MiB at 5 TiB).
//
// The walk is greedy and never looks back: taking a short stretch's
// missing bytes from the end of the run before it, rather than joining
// the run that follows, would at times read less (never more than that
// joined run, which is shorter than 2*minPart; TestPlanGreedyJoins shows
// one). It reads the least possible in the common cases: an append, a
// truncation, writes at least 2*minPart apart.
func planCompose(l Layout, partSize int64) (composePlan, error) {
	if err := checkLayout(l); err != nil {
		return composePlan{}, err
	}
	if l.Size < MinPartSize {
		return composePlan{parts: []composePart{{0, l.Size, false}}, minPart: MinPartSize, maxData: MinPartSize}, nil
	}
	runs := mergeRuns(l.Same)
	maxData := min(MaxPartSize, max(partSize, 2*MinPartSize, ceilDiv(l.Size, MaxParts-1000)))
	plan := walkRuns(l.Size, runs, MinPartSize, maxData)
	if len(plan.parts) > MaxParts {
		m := max(MinPartSize, ceilDiv(l.Size, MaxParts-1))
		plan = walkRuns(l.Size, runs, m, max(maxData, 2*m))
	}
	return plan, nil
}

// walkRuns is planCompose's greedy walk for an object of size bytes with
// the merged Same runs, parts of at least minPart (but the last) and data
// parts of at most maxData.
func walkRuns(size int64, runs []Range, minPart, maxData int64) composePlan {
	plan := composePlan{minPart: minPart, maxData: maxData}
	pending := int64(0) // start of the pending data stretch [pending, r.Off)
	for _, r := range runs {
		stretch, n := r.Off-pending, r.End-r.Off
		last := r.End == size
		copyFrom := int64(-1) // where the run's copied part starts; -1: none
		switch {
		case stretch == 0 || stretch >= minPart:
			if n >= minPart || last {
				copyFrom = r.Off
			}
		default:
			lacks := minPart - stretch
			if rest := n - lacks; rest >= minPart || (last && rest > 0) {
				copyFrom = r.Off + lacks
			}
		}
		if copyFrom < 0 {
			continue // the run joins the pending stretch
		}
		plan.cutData(pending, copyFrom)
		plan.cutCopy(copyFrom, r.End)
		pending = r.End
	}
	plan.cutData(pending, size)
	return plan
}

// cutData appends the data parts of [off, end): as few as maxData allows,
// of equal size (within a byte).
func (p *composePlan) cutData(off, end int64) {
	p.cut(off, end, p.maxData, false)
}

// cutCopy appends the copied parts of [off, end): as few as S3 allows
// (5 GiB each), of equal size, like baseRanges.
func (p *composePlan) cutCopy(off, end int64) {
	p.cut(off, end, MaxPartSize, true)
}

// cut appends [off, end) as the fewest parts of at most limit bytes, of
// equal size within a byte. (Sizes stay below 2^43 and counts below 2^14:
// n*i does not overflow.)
func (p *composePlan) cut(off, end, limit int64, copied bool) {
	n := end - off
	if n <= 0 {
		return
	}
	k := ceilDiv(n, limit)
	for i := range k {
		p.parts = append(p.parts, composePart{off + n*i/k, off + n*(i+1)/k, copied})
	}
}

// mergeRuns returns same with adjacent ranges joined: bytes equal to the
// base on both sides of a boundary are one run to copy.
func mergeRuns(same []Range) []Range {
	var runs []Range
	for _, r := range same {
		if k := len(runs); k > 0 && runs[k-1].End == r.Off {
			runs[k-1].End = r.End
			continue
		}
		runs = append(runs, r)
	}
	return runs
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
