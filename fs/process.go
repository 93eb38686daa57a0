package fs

import (
	"bytes"
	"os"
	"strconv"
)

// processOf returns the process (thread group) of a thread. FUSE tells the
// calling thread's ID, and a multi-threaded program writes and closes from
// different threads: the flush rule in write.go compares processes. When
// the thread is gone, its ID is returned.
func processOf(tid uint32) uint32 {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return tid
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("Tgid:")); ok {
			if n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 32); err == nil {
				return uint32(n)
			}
		}
	}
	return tid
}
