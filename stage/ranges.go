package stage

// Range is the byte range [Off, End) of a file.
type Range struct{ Off, End int64 }

// Len is the range's length.
func (r Range) Len() int64 { return r.End - r.Off }

// ranges is a set of bytes: ascending, disjoint, non-adjacent, non-empty ranges.
type ranges []Range

// add returns rs with [off, end) included.
func (rs ranges) add(off, end int64) ranges {
	if off >= end {
		return rs
	}
	out := make(ranges, 0, len(rs)+1)
	i := 0
	for ; i < len(rs) && rs[i].End < off; i++ {
		out = append(out, rs[i])
	}
	for ; i < len(rs) && rs[i].Off <= end; i++ {
		off, end = min(off, rs[i].Off), max(end, rs[i].End)
	}
	out = append(out, Range{off, end})
	return append(out, rs[i:]...)
}

// cut returns rs without the bytes from off on.
func (rs ranges) cut(off int64) ranges {
	out := rs[:0:0]
	for _, r := range rs {
		if r.Off >= off {
			break
		}
		out = append(out, Range{r.Off, min(r.End, off)})
	}
	return out
}

// missing returns the parts of [off, end) not in rs.
func (rs ranges) missing(off, end int64) ranges {
	var out ranges
	for _, r := range rs {
		if r.End <= off {
			continue
		}
		if r.Off >= end {
			break
		}
		if r.Off > off {
			out = append(out, Range{off, r.Off})
		}
		off = max(off, r.End)
	}
	if off < end {
		out = append(out, Range{off, end})
	}
	return out
}

// total is the number of bytes in rs.
func (rs ranges) total() int64 {
	var n int64
	for _, r := range rs {
		n += r.Len()
	}
	return n
}
