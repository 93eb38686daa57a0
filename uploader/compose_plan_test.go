package uploader

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// data and cp are a plan's parts, for tables.
func data(off, end int64) composePart { return composePart{off, end, false} }
func cp(off, end int64) composePart   { return composePart{off, end, true} }

// based returns a layout of size bytes sharing the same ranges with a base
// of baseSize bytes.
func based(size, baseSize int64, same ...Range) Layout {
	return Layout{Size: size, Base: Base{Key: "old", ETag: `"e"`, Size: baseSize}, Same: same}
}

func (p composePart) String() string {
	kind := "data"
	if p.copied {
		kind = "copy"
	}
	return fmt.Sprintf("%s[%d,%d)", kind, p.off, p.end)
}

// sentBytes returns the bytes a plan reads from Data.
func sentBytes(parts []composePart) int64 {
	var n int64
	for _, p := range parts {
		if !p.copied {
			n += p.size()
		}
	}
	return n
}

// TestPlanExamples: the plans of typical edits, part by part.
func TestPlanExamples(t *testing.T) {
	for _, tc := range []struct {
		name     string
		l        Layout
		partSize int64
		want     []composePart
	}{{
		name: "append 1 MiB to 1 GiB: the base is copied, only the new MiB is sent",
		l:    based(gib+mib, gib, Range{0, gib}),
		want: []composePart{cp(0, gib), data(gib, gib+mib)},
	}, {
		name: "4 KiB overwritten at 10 MiB of 20 MiB: the data part borrows up to 5 MiB from the run after it",
		l:    based(20*mib, 20*mib, Range{0, 10 * mib}, Range{10*mib + 4*kib, 20 * mib}),
		want: []composePart{cp(0, 10*mib), data(10*mib, 15*mib), cp(15*mib, 20*mib)},
	}, {
		name: "under 5 MiB: one PutObject, whatever is shared",
		l:    based(5*mib-1, 10*mib, Range{0, 5*mib - 1}),
		want: []composePart{data(0, 5*mib-1)},
	}, {
		name: "empty",
		l:    Layout{},
		want: []composePart{data(0, 0)},
	}, {
		name: "no base, up to one data part: one PutObject",
		l:    Layout{Size: 10 * mib},
		want: []composePart{data(0, 10*mib)},
	}, {
		name:     "no base, larger: data parts of at most max(PartSize, 10 MiB), equal",
		l:        Layout{Size: 100*mib + 1},
		partSize: 8 * mib,
		want: func() []composePart {
			var ps []composePart
			for i := range int64(11) {
				ps = append(ps, data((100*mib+1)*i/11, (100*mib+1)*(i+1)/11))
			}
			return ps
		}(),
	}, {
		name:     "no base, a larger PartSize",
		l:        Layout{Size: 64 * mib},
		partSize: 32 * mib,
		want:     []composePart{data(0, 32*mib), data(32*mib, 64*mib)},
	}, {
		name: "truncated: one copied part",
		l:    based(12*mib, 20*mib, Range{0, 12 * mib}),
		want: []composePart{cp(0, 12*mib)},
	}, {
		name: "truncated to under 5 MiB: a PutObject",
		l:    based(3*mib, 20*mib, Range{0, 3 * mib}),
		want: []composePart{data(0, 3*mib)},
	}, {
		name: "the last part may be short: a short run that ends the object is copied",
		l:    based(12*mib, 12*mib, Range{0, 6 * mib}, Range{6*mib + 4*kib, 12 * mib}),
		want: []composePart{cp(0, 6*mib), data(6*mib, 11*mib), cp(11*mib, 12*mib)},
	}, {
		name: "a run that ends the object but is all borrowed joins the last data part",
		l:    based(11*mib, 11*mib, Range{0, 6 * mib}, Range{6*mib + 4*kib, 11 * mib}),
		want: []composePart{cp(0, 6*mib), data(6*mib, 11*mib)},
	}, {
		name: "a run that ends the object after a long stretch is copied, however short",
		l:    based(8*mib, 8*mib, Range{8*mib - 1, 8 * mib}),
		want: []composePart{data(0, 8*mib-1), cp(8*mib-1, 8*mib)},
	}, {
		name: "what is left of a run after borrowing is under 5 MiB: the run joins the data",
		l: based(40*mib, 40*mib, Range{0, 10 * mib}, Range{10*mib + 4*kib, 19 * mib},
			Range{19*mib + 4*kib, 40 * mib}),
		want: []composePart{cp(0, 10*mib), data(10*mib, 19*mib+4*kib), cp(19*mib+4*kib, 40*mib)},
	}, {
		name: "a run under 5 MiB joins the data around it",
		l:    based(30*mib, 30*mib, Range{0, 10 * mib}, Range{15 * mib, 19 * mib}, Range{20 * mib, 30 * mib}),
		want: []composePart{cp(0, 10*mib), data(10*mib, 20*mib), cp(20*mib, 30*mib)},
	}, {
		name: "new bytes at the start borrow from the first run",
		l:    based(20*mib, 20*mib, Range{4 * kib, 20 * mib}),
		want: []composePart{data(0, 5*mib), cp(5*mib, 20*mib)},
	}, {
		name: "a stretch of 5 MiB or more needs no borrowing",
		l:    based(30*mib, 30*mib, Range{0, 10 * mib}, Range{16 * mib, 30 * mib}),
		want: []composePart{cp(0, 10*mib), data(10*mib, 16*mib), cp(16*mib, 30*mib)},
	}, {
		name: "adjacent ranges are one run",
		l:    based(12*mib, 12*mib, Range{0, 3 * mib}, Range{3 * mib, 6 * mib}, Range{6 * mib, 12 * mib}),
		want: []composePart{cp(0, 12*mib)},
	}, {
		name: "nothing can be copied: one PutObject",
		l:    based(9*mib, 9*mib, Range{mib, 2 * mib}, Range{3 * mib, 7 * mib}),
		want: []composePart{data(0, 9*mib)},
	}, {
		name: "copies are cut at 5 GiB, into equal parts",
		l:    based(12*gib+mib, 12*gib, Range{0, 12 * gib}),
		want: []composePart{cp(0, 4*gib), cp(4*gib, 8*gib), cp(8*gib, 12*gib), data(12*gib, 12*gib+mib)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			partSize := tc.partSize
			if partSize == 0 {
				partSize = DefaultPartSize
			}
			plan, err := planCompose(tc.l, partSize)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(plan.parts, tc.want) {
				t.Fatalf("plan %v\nwant %v", plan.parts, tc.want)
			}
			checkPlan(t, tc.l, partSize, plan)
		})
	}
}

// TestPlanAppendSends: appending 1 MiB to 1 GiB reads 1 MiB from Data and
// copies the rest; likewise to 100 GiB (20 copied parts) and up to 5 TiB
// (1,024).
func TestPlanAppendSends(t *testing.T) {
	for _, base := range []int64{gib, 100 * gib, MaxObjectSize - mib} {
		plan, err := planCompose(based(base+mib, base, Range{0, base}), DefaultPartSize)
		if err != nil {
			t.Fatal(err)
		}
		if s := sentBytes(plan.parts); s != mib {
			t.Fatalf("base %d: %d bytes sent, want 1 MiB", base, s)
		}
		if n := len(plan.parts); n != int(ceilDiv(base, MaxPartSize))+1 {
			t.Fatalf("base %d: %d parts", base, n)
		}
		checkPlan(t, based(base+mib, base, Range{0, base}), DefaultPartSize, plan)
	}
}

// TestPlanGreedyJoins shows where the greedy walk reads more than needed:
// a 4 KiB write followed by a 9 MiB run (too short to give 5 MiB and keep
// 5 MiB) and a 4 MiB write. The walk joins the run (13 MiB read, in two
// parts); taking the first stretch's missing bytes from the end of the
// run before it would read 5 MiB + 5 MiB. planCompose's comment admits it.
func TestPlanGreedyJoins(t *testing.T) {
	l := based(100*mib, 100*mib, Range{0, 40 * mib}, Range{40*mib + 4*kib, 49*mib + 4*kib},
		Range{53*mib + 4*kib, 100 * mib})
	plan, err := planCompose(l, DefaultPartSize)
	if err != nil {
		t.Fatal(err)
	}
	half := 40*mib + (13*mib+4*kib)/2
	want := []composePart{cp(0, 40*mib), data(40*mib, half), data(half, 53*mib+4*kib), cp(53*mib+4*kib, 100*mib)}
	if !slices.Equal(plan.parts, want) {
		t.Fatalf("plan %v\nwant %v", plan.parts, want)
	}
}

// TestPlanManyRunsFallBack: a layout whose 5 MiB parts would exceed 10,000
// (runs of 6 MiB between 4 KiB writes over 117 GiB) is planned again with
// larger parts and fits.
func TestPlanManyRunsFallBack(t *testing.T) {
	var same []Range
	off := int64(0)
	for range 20000 {
		same = append(same, Range{off, off + 6*mib})
		off += 6*mib + 4*kib
	}
	l := based(off, off, same...)
	if n := len(walkRuns(l.Size, same, MinPartSize, 10*mib).parts); n <= MaxParts {
		t.Fatalf("5 MiB parts: %d, the test wants more than %d", n, MaxParts)
	}
	plan, err := planCompose(l, DefaultPartSize)
	if err != nil {
		t.Fatal(err)
	}
	if plan.minPart != ceilDiv(l.Size, MaxParts-1) || len(plan.parts) > MaxParts {
		t.Fatalf("fallback: minPart %d, %d parts", plan.minPart, len(plan.parts))
	}
	checkPlan(t, l, DefaultPartSize, plan)
}

// TestPlanRefusesBadLayouts: a layout that breaks its contract is an
// error, not a guess.
func TestPlanRefusesBadLayouts(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Layout
	}{
		{"negative size", Layout{Size: -1}},
		{"over 5 TiB", Layout{Size: MaxObjectSize + 1}},
		{"ranges without a base", Layout{Size: 10 * mib, Same: []Range{{0, mib}}}},
		{"a base without an ETag", Layout{Size: 10 * mib, Base: Base{Key: "old", Size: 10 * mib}, Same: []Range{{0, mib}}}},
		{"an empty range", based(10*mib, 10*mib, Range{mib, mib})},
		{"a reversed range", based(10*mib, 10*mib, Range{2 * mib, mib})},
		{"a negative offset", based(10*mib, 10*mib, Range{-1, mib})},
		{"out of order", based(10*mib, 10*mib, Range{2 * mib, 3 * mib}, Range{0, mib})},
		{"overlapping", based(10*mib, 10*mib, Range{0, 2 * mib}, Range{mib, 3 * mib})},
		{"past the base", based(10*mib, 5*mib, Range{0, 6 * mib})},
		{"past the object", based(5*mib, 10*mib, Range{0, 6 * mib})},
	} {
		if _, err := planCompose(tc.l, DefaultPartSize); !errors.Is(err, errLayout) {
			t.Errorf("%s: %v, want errLayout", tc.name, err)
		}
	}
}

// TestPlanProperties plans random layouts, at the edges of the part
// limits and far from them, and checks every plan with planError.
func TestPlanProperties(t *testing.T) {
	var fallbacks, puts, withCopies, maxParts int
	for seed := uint64(1); seed <= 2000; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x636f6d706f7365))
		l, partSize := randomLayout(r)
		plan, err := planCompose(l, partSize)
		if err != nil {
			t.Fatalf("seed %d: %v (layout size %d, base %d, %d ranges)", seed, err, l.Size, l.Base.Size, len(l.Same))
		}
		if err := planError(l, partSize, plan); err != nil {
			t.Fatalf("seed %d: %v\nsize %d, base %d, %d ranges, part size %d", seed, err, l.Size, l.Base.Size, len(l.Same), partSize)
		}
		switch {
		case plan.minPart > MinPartSize:
			fallbacks++
		case plan.put():
			puts++
		}
		for _, p := range plan.parts {
			if p.copied {
				withCopies++
				break
			}
		}
		maxParts = max(maxParts, len(plan.parts))
	}
	t.Logf("%d plans: %d PutObjects, %d with copies, %d replanned, at most %d parts", 2000, puts, withCopies, fallbacks, maxParts)
	if fallbacks == 0 || puts == 0 || withCopies == 0 {
		t.Fatal("the random layouts miss a kind of plan")
	}
}

// randomLayout returns a layout and a part size: a run of segments,
// alternately new bytes and bytes equal to the base, of lengths drawn
// near the thresholds the planner decides on, or at the scale of large
// objects, or many small runs that overflow 10,000 parts of 5 MiB.
func randomLayout(r *rand.Rand) (Layout, int64) {
	partSize := []int64{MinPartSize, DefaultPartSize, 16 * mib, 100 * mib}[r.IntN(4)]
	edges := []int64{1, 4 * kib, mib, 5*mib - 1, 5 * mib, 5*mib + 1, 7 * mib, 10*mib - 4*kib, 10*mib - 1, 10 * mib, 10*mib + 1, 12 * mib}
	var length func() int64
	segments := 1 + r.IntN(12)
	switch r.IntN(5) {
	case 0, 1: // around the 5 MiB thresholds
		length = func() int64 {
			if r.IntN(3) == 0 {
				return 1 + r.Int64N(30*mib)
			}
			return edges[r.IntN(len(edges))]
		}
	case 2: // large objects, up to 5 TiB
		length = func() int64 {
			switch r.IntN(3) {
			case 0:
				return edges[r.IntN(len(edges))]
			case 1:
				return 1 + r.Int64N(12*gib)
			}
			return 1 + r.Int64N(MaxObjectSize/int64(segments))
		}
	case 3: // many short runs: 5 MiB parts would exceed 10,000
		segments = 2 * (5000 + r.IntN(20000))
		length = func() int64 { return 1 + r.Int64N(12*mib) }
	default: // anything
		length = func() int64 { return 1 + r.Int64N(64*mib) }
	}
	l := Layout{Base: Base{Key: "old", ETag: `"e"`}}
	same := r.IntN(2) == 0
	for range segments {
		n := length()
		if l.Size+n > MaxObjectSize {
			break
		}
		if same {
			if r.IntN(4) == 0 && n > 1 { // adjacent ranges, merged by the planner
				mid := l.Size + 1 + r.Int64N(n-1)
				l.Same = append(l.Same, Range{l.Size, mid}, Range{mid, l.Size + n})
			} else {
				l.Same = append(l.Same, Range{l.Size, l.Size + n})
			}
		}
		l.Size += n
		same = !same
	}
	// The base may be longer (a truncation) or end with the last run
	// (an append after it).
	l.Base.Size = l.Size
	if k := len(l.Same); k > 0 && r.IntN(2) == 0 {
		l.Base.Size = l.Same[k-1].End
	}
	if r.IntN(3) == 0 {
		l.Base.Size += r.Int64N(20 * mib)
	}
	return l, partSize
}

// checkPlan fails the test if planError finds fault with the plan.
func checkPlan(t *testing.T, l Layout, partSize int64, plan composePlan) {
	t.Helper()
	if err := planError(l, partSize, plan); err != nil {
		t.Fatalf("%v\nplan %v", err, plan.parts)
	}
}

// planError checks the plan of l against everything planCompose promises:
// the parts cover the object in order within S3's limits, copies lie in
// Same runs, data parts are as few and as equal as maxData allows, and
// every byte of a run read from Data was read for a reason the greedy
// walk gives (see planCompose), no more.
func planError(l Layout, partSize int64, plan composePlan) error {
	parts := plan.parts
	if l.Size < MinPartSize {
		if len(parts) != 1 || parts[0] != data(0, l.Size) {
			return fmt.Errorf("an object under 5 MiB: %v, want one PutObject", parts)
		}
		return nil
	}
	// The limits: minPart is 5 MiB unless that overflowed 10,000 parts.
	runs := mergeRuns(l.Same)
	maxData := min(MaxPartSize, max(partSize, 2*MinPartSize, ceilDiv(l.Size, 9000)))
	switch first := walkRuns(l.Size, runs, MinPartSize, maxData); {
	case plan.minPart == MinPartSize && plan.maxData == maxData:
		if len(first.parts) > MaxParts {
			return fmt.Errorf("%d parts", len(first.parts))
		}
	case plan.minPart == ceilDiv(l.Size, MaxParts-1) && plan.maxData == max(maxData, 2*plan.minPart):
		if len(first.parts) <= MaxParts {
			return fmt.Errorf("replanned with %d-byte parts though 5 MiB parts fit (%d)", plan.minPart, len(first.parts))
		}
	default:
		return fmt.Errorf("minPart %d, maxData %d for size %d, part size %d", plan.minPart, plan.maxData, l.Size, partSize)
	}
	if plan.maxData > MaxPartSize || plan.maxData < 2*plan.minPart {
		return fmt.Errorf("maxData %d, minPart %d", plan.maxData, plan.minPart)
	}

	// Cover, in order, within S3's limits.
	if len(parts) == 0 || len(parts) > MaxParts {
		return fmt.Errorf("%d parts", len(parts))
	}
	pos := int64(0)
	for i, p := range parts {
		switch {
		case p.off != pos || p.end <= p.off:
			return fmt.Errorf("part %d %v after byte %d", i+1, p, pos)
		case p.size() > MaxPartSize:
			return fmt.Errorf("part %d %v is over 5 GiB", i+1, p)
		case i < len(parts)-1 && (p.size() < MinPartSize || p.size() < plan.minPart):
			return fmt.Errorf("part %d of %d %v is under %d bytes", i+1, len(parts), p, plan.minPart)
		case !p.copied && p.size() > plan.maxData:
			return fmt.Errorf("data part %d %v is over %d bytes", i+1, p, plan.maxData)
		}
		pos = p.end
	}
	if pos != l.Size {
		return fmt.Errorf("parts end at %d, the object at %d", pos, l.Size)
	}
	if plan.put() && l.Size > plan.maxData {
		return fmt.Errorf("one PutObject of %d bytes", l.Size)
	}

	// Every stretch of consecutive parts of one kind: data stretches are
	// cut into the fewest parts maxData allows, copies into the fewest
	// 5 GiB allows, all equal within a byte; a copy stretch lies in one run.
	for i := 0; i < len(parts); {
		j := i + 1
		for j < len(parts) && parts[j].copied == parts[i].copied {
			j++
		}
		off, end := parts[i].off, parts[j-1].end
		limit := plan.maxData
		if parts[i].copied {
			limit = MaxPartSize
			k, found := slices.BinarySearchFunc(runs, off, func(r Range, off int64) int {
				if r.End <= off {
					return -1
				}
				if r.Off > off {
					return 1
				}
				return 0
			})
			if !found || end > runs[k].End {
				return fmt.Errorf("copied parts %v to %v are not inside one Same run", parts[i], parts[j-1])
			}
		}
		if n := int64(j - i); n != ceilDiv(end-off, limit) {
			return fmt.Errorf("[%d, %d) is cut into %d parts, want %d", off, end, n, ceilDiv(end-off, limit))
		}
		for _, p := range parts[i:j] {
			if d := p.size() - (end-off)/int64(j-i); d < 0 || d > 1 {
				return fmt.Errorf("[%d, %d): part %v is not an equal share", off, end, p)
			}
		}
		i = j
	}

	// The greedy walk's decisions, run by run.
	m := plan.minPart
	copyEnd := int64(0) // end of the last copied part before the run
	k := 0              // parts[k] is the first part ending after the run's start
	for _, r := range runs {
		for k < len(parts) && parts[k].end <= r.Off {
			if parts[k].copied {
				copyEnd = parts[k].end
			}
			k++
		}
		copied, from := int64(0), r.End // bytes of the run copied; where the first copy starts
		for q := k; q < len(parts) && parts[q].off < r.End; q++ {
			if parts[q].copied {
				copied += parts[q].size()
				from = min(from, parts[q].off)
			}
		}
		stretch, n, last := r.Off-copyEnd, r.End-r.Off, r.End == l.Size
		var want int64 // bytes of the run to copy
		switch {
		case stretch == 0 || stretch >= m:
			if n >= m || last {
				want = n
			}
		default:
			if rest := n - (m - stretch); rest >= m || (last && rest > 0) {
				want = rest
			}
		}
		// The copies lie in the run (checked above): starting where the
		// borrowed bytes end, they cover the rest of it.
		if copied != want || from != r.End-want {
			return fmt.Errorf("run [%d, %d) after a %d-byte stretch: %d bytes copied from %d, want the last %d",
				r.Off, r.End, stretch, copied, from, want)
		}
	}
	return nil
}

// TestPlanCheckCatchesBadPlans: planError is not vacuous.
func TestPlanCheckCatchesBadPlans(t *testing.T) {
	l := based(20*mib, 20*mib, Range{0, 10 * mib}, Range{10*mib + 4*kib, 20 * mib})
	good, err := planCompose(l, DefaultPartSize)
	if err != nil {
		t.Fatal(err)
	}
	for name, parts := range map[string][]composePart{
		"a gap":                  {cp(0, 10*mib), data(10*mib+1, 15*mib), cp(15*mib, 20*mib)},
		"a short middle part":    {cp(0, 10*mib), data(10*mib, 14*mib), cp(14*mib, 20*mib)},
		"a copy of new bytes":    {cp(0, 11*mib), data(11*mib, 16*mib), cp(16*mib, 20*mib)},
		"needless data":          {cp(0, 10*mib), data(10*mib, 20*mib)},
		"a needless borrow":      {cp(0, 5*mib), data(5*mib, 15*mib), cp(15*mib, 20*mib)},
		"borrowed at the end":    {cp(0, 10*mib), data(10*mib, 10*mib+4*kib), cp(10*mib+4*kib, 15*mib), data(15*mib, 20*mib)},
		"unequal data parts":     {cp(0, 10*mib), data(10*mib, 15*mib-1), data(15*mib-1, 15*mib), cp(15*mib, 20*mib)},
		"two copies, one enough": {cp(0, 5*mib), cp(5*mib, 10*mib), data(10*mib, 15*mib), cp(15*mib, 20*mib)},
		"short of the end":       {cp(0, 10*mib), data(10*mib, 15*mib), cp(15*mib, 20*mib-1)},
	} {
		bad := good
		bad.parts = parts
		if planError(l, DefaultPartSize, bad) == nil {
			t.Errorf("%s: planError accepts %v", name, parts)
		}
	}
	if err := planError(l, DefaultPartSize, good); err != nil {
		t.Fatalf("the good plan: %v", err)
	}
}
