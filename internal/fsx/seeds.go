package fsx

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Plan returns the seeds of a test's runs and the operations of each:
// fixed and defOps by default; BUCKETFS_FSX_SEED=S runs seed S,
// BUCKETFS_FSX_SEEDS=N runs N new seeds, BUCKETFS_FSX_OPS=N sets the
// operations.
func Plan(fixed []uint64, defOps int) (seeds []uint64, ops int, err error) {
	seeds, ops = fixed, defOps
	if s := os.Getenv("BUCKETFS_FSX_OPS"); s != "" {
		if ops, err = strconv.Atoi(s); err != nil || ops < 1 {
			return nil, 0, fmt.Errorf("BUCKETFS_FSX_OPS=%q: want a positive count", s)
		}
	}
	if s := os.Getenv("BUCKETFS_FSX_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("BUCKETFS_FSX_SEED=%q: %w", s, err)
		}
		return []uint64{seed}, ops, nil
	}
	if s := os.Getenv("BUCKETFS_FSX_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, 0, fmt.Errorf("BUCKETFS_FSX_SEEDS=%q: want a positive count", s)
		}
		base := uint64(time.Now().UnixNano())
		seeds = make([]uint64, n)
		for i := range seeds {
			seeds[i] = base + uint64(i)
		}
	}
	return seeds, ops, nil
}
