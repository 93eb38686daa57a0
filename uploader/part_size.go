package uploader

// S3's multipart limits.
const (
	MinPartSize   = 5 << 20 // every part but the last
	MaxPartSize   = 5 << 30 // any part
	MaxParts      = 10000   // parts of one upload
	MaxObjectSize = 5 << 40 // one object
	partsPerStep  = 900     // parts of one size before the size doubles
)

// partSize returns the size of part number n (1-based) of an upload whose
// first parts are first bytes. The size doubles every 900 parts, capped at
// 5 GiB: small files keep small parts (the first 900 parts cover 7 GiB at
// the default 8 MiB), and 5 TiB fits in 10,000 parts from any first size
// S3 allows (part_size_test.go proves it).
func partSize(first int64, n int) int64 {
	size := first
	for step := (n - 1) / partsPerStep; step > 0 && size < MaxPartSize; step-- {
		size *= 2
	}
	if size > MaxPartSize {
		size = MaxPartSize
	}
	return size
}
