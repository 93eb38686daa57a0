package main

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// logFile is the --log-file the logger writes to. Reopen (on SIGHUP) opens
// the path again, so that after logrotate renamed the file away new lines
// go to a new file at the original path.
type logFile struct {
	path string
	// stderr also points descriptor 2 at the file (a background daemon):
	// what the Go runtime prints there, a panic's trace, lands in the log.
	stderr bool

	mu sync.Mutex // guards f; held across each write, so Reopen never closes a file mid-line
	f  *os.File
}

// openLogFile opens path for appending, creating it 0600: logs name keys
// and buckets, which other users need not read.
func openLogFile(path string, stderr bool) (*logFile, error) {
	l := &logFile{path: path, stderr: stderr}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen switches to a fresh open of the path. On failure the current
// file stays in use.
func (l *logFile) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening the log file: %w", err)
	}
	if l.stderr {
		if err := unix.Dup2(int(f.Fd()), 2); err != nil {
			f.Close()
			return fmt.Errorf("pointing stderr at the log file: %w", err)
		}
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Close closes the file.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
