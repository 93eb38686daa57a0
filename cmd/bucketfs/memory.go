package main

import (
	"os"
	"runtime/debug"

	"github.com/sirupsen/logrus"
)

// memoryOverhead is what the daemon holds beyond its budgets
// (--read-memory, --upload-memory, --cache-memory): the Go runtime, the
// SDK, go-fuse's request and reply buffers, HTTP connections, the binary's
// code. README "Limits" states it and the memory tests hold the daemon to it.
const memoryOverhead = 96 << 20

// residentBesideHeap is the part of memoryOverhead that Go's collector does
// not count: the binary's code and data, resident from the start (about
// 16 MiB of the 21 MiB a fresh mount shows).
const residentBesideHeap = 16 << 20

// goMemoryLimit is the soft limit of Go's collector: the budgets and the
// overhead. Without it the collector lets garbage grow as large as the live
// heap before it runs (GOGC=100): the read budget's dropped buffers and
// go-fuse's pooled 1 MiB buffers, freed at every collection, came back as
// tens of MiB above the budgets with 32 readers, and with full budgets the
// heap could reach twice their sum. With it the collector runs more often
// as the heap nears the limit, and not at all more while it is far below.
func goMemoryLimit(o *options) int64 {
	return o.readMemory + o.uploadMemory + max(o.cacheMemory, 0) + memoryOverhead - residentBesideHeap
}

// setMemoryLimit gives the collector goMemoryLimit, unless GOMEMLIMIT
// already set one.
func setMemoryLimit(o *options, log *logrus.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		log.WithField("GOMEMLIMIT", os.Getenv("GOMEMLIMIT")).Info("Go memory limit from GOMEMLIMIT, not from the budgets")
		return
	}
	limit := goMemoryLimit(o)
	debug.SetMemoryLimit(limit)
	log.WithField("go_memory_limit", formatSize(limit)).Debug("Go memory limit: the budgets and the fixed overhead")
}
