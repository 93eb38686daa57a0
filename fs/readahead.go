package fs

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// kernelReadAhead is the read-ahead the kernel is asked to use on a mount's
// page cache, in KiB: 1 MiB, the largest FUSE read (MaxWrite). The kernel
// starts every FUSE mount at 128 KiB and the INIT reply can only lower it,
// so a read() through the page cache would reach us as 128 KiB reads, the
// kernel's own read-ahead arriving out of order among them; a random 1 MiB
// read would then look like several short runs and cost several GETs.
// At 1 MiB, reads arrive as they do with direct I/O.
const kernelReadAhead = 1024

// setKernelReadAhead sets the read-ahead of the mount at mountpoint (its
// backing device's read_ahead_kb in sysfs, which only root may write).
func setKernelReadAhead(mountpoint string, kb int) error {
	dev, err := mountDevice(mountpoint)
	if err != nil {
		return err
	}
	path := "/sys/class/bdi/" + dev + "/read_ahead_kb"
	if err := os.WriteFile(path, []byte(strconv.Itoa(kb)), 0); err != nil {
		return fmt.Errorf("setting the kernel's read-ahead: %w", err)
	}
	return nil
}

// mountDevice returns the major:minor of the mount at path, from
// /proc/self/mountinfo (a stat would be a request to the mount itself).
func mountDevice(path string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	dev := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountPath(fields[4]) == path {
			dev = fields[2] // the last mount on path is the one seen there
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading the mount table: %w", err)
	}
	if dev == "" {
		return "", fmt.Errorf("%s is not a mountpoint", path)
	}
	return dev, nil
}
