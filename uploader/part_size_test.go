package uploader

import "testing"

// TestPartSizeScheduleReaches5TiB: from any allowed first size, 10,000 parts
// hold 5 TiB, and every part is within S3's bounds.
func TestPartSizeScheduleReaches5TiB(t *testing.T) {
	for _, first := range []int64{MinPartSize, 8 << 20, 16 << 20, 100 << 20, 1 << 30, MaxPartSize} {
		var total int64
		parts := 0
		for n := 1; n <= MaxParts && total < MaxObjectSize; n++ {
			s := partSize(first, n)
			if s < MinPartSize || s > MaxPartSize {
				t.Fatalf("first %d: part %d has size %d, outside [5 MiB, 5 GiB]", first, n, s)
			}
			if n > 1 && s < partSize(first, n-1) {
				t.Fatalf("first %d: part %d shrinks", first, n)
			}
			total += s
			parts++
		}
		if total < MaxObjectSize {
			t.Fatalf("first %d: 10,000 parts hold only %d bytes", first, total)
		}
		t.Logf("first part %d MiB: 5 TiB in %d parts, largest %d MiB", first>>20, parts, partSize(first, parts)>>20)
	}
	if got := partSize(8<<20, 900); got != 8<<20 {
		t.Fatalf("part 900 at 8 MiB first = %d: small files must keep small parts", got)
	}
}
