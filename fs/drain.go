package fs

import (
	"context"
	"sort"
	"time"

	"github.com/sirupsen/logrus"
)

// Drain prepares a shutdown: opens for writing and creates answer EROFS
// from now on, and the files open for writing get until ctx ends to be
// closed (their last close commits them). Those still open then are
// detached: their uploads are aborted, nothing of them is published, and
// each is logged as not committed. Drain returns their keys.
func (s *Server) Drain(ctx context.Context) []string {
	b := s.b
	b.draining.Store(true)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for b.openWriters() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return s.detachWriters()
		}
	}
	return nil
}

// openWriters counts the files open for writing.
func (b *bucketFS) openWriters() int {
	b.writersMu.Lock()
	defer b.writersMu.Unlock()
	return len(b.writers)
}

// detachWriters detaches every file still open for writing at the shutdown
// deadline and returns their keys, sorted.
func (s *Server) detachWriters() []string {
	b := s.b
	b.writersMu.Lock()
	open := make(map[string]*fileNode, len(b.writers))
	for k, n := range b.writers {
		open[k] = n
	}
	b.writersMu.Unlock()
	keys := make([]string, 0, len(open))
	for k, n := range open {
		n.file.Abandon(context.Background())
		b.removeWriter(k, n)
		b.log.WithFields(logrus.Fields{"op": "shutdown", "key": k}).Error("the file was still open for writing at the shutdown deadline: its upload was aborted and it was not committed")
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
