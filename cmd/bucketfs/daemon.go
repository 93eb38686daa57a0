package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// readyFDEnv names the inherited descriptor on which a background
	// child reports "ok" or why it could not mount.
	readyFDEnv = "BUCKETFS_READY_FD"
	// sloppyEnv carries mount -s to the background child.
	sloppyEnv = "BUCKETFS_SLOPPY_OPTIONS"
	// daemonStartLimit bounds the wait for the child to mount.
	daemonStartLimit = 2 * time.Minute
)

// startDaemon runs this command again, detached, in the foreground mode,
// and waits until the child says the mount is live or why it is not. Until
// then the child's stderr comes to us: what fusermount3 and the Go runtime
// print there is the real reason of a failure the child can only report
// as an exit code.
func startDaemon(args []string, sloppy bool) error {
	ready, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer ready.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return err
	}
	defer errR.Close()
	self, err := os.Executable()
	if err != nil {
		readyW.Close()
		errW.Close()
		return err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		readyW.Close()
		errW.Close()
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(self, append([]string{"--foreground"}, args...)...)
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	if sloppy {
		cmd.Env = append(cmd.Env, sloppyEnv+"=1")
	}
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	readyW.Close()
	errW.Close()
	if err != nil {
		return fmt.Errorf("starting the background process: %w", err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()

	var stderrText tailBuffer
	stderrDone := make(chan struct{})
	go func() { _, _ = io.Copy(&stderrText, errR); close(stderrDone) }()
	msg := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(ready)
		msg <- strings.TrimSpace(string(b))
	}()
	select {
	case m := <-msg:
		if m == "ok" {
			return nil
		}
		// The child exits after a failure; its stderr then ends.
		select {
		case <-stderrDone:
		case <-time.After(2 * time.Second):
		}
		return daemonFailure(m, stderrText.String())
	case <-time.After(daemonStartLimit):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return fmt.Errorf("the background process did not mount within %s", daemonStartLimit)
	}
}

// daemonFailure is the reason a background child gave, made whole with
// what it printed on stderr: go-fuse reports a failed fusermount3 as
// "fusermount exited with code 256", and fusermount3 says why on stderr.
func daemonFailure(report, stderrText string) error {
	if report == "" {
		report = "the background process exited before mounting"
	}
	var lines, fusermount []string
	for _, l := range strings.Split(stderrText, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == "bucketfs: "+report {
			continue // the child's own copy of its report
		}
		lines = append(lines, l)
		if program, _, ok := strings.Cut(l, ": "); ok && strings.HasPrefix(filepath.Base(program), "fusermount") {
			fusermount = append(fusermount, l)
		}
	}
	if i := strings.Index(report, "fusermount exited with code"); i >= 0 && len(fusermount) > 0 {
		return errors.New(report[:i] + strings.Join(fusermount, "; "))
	}
	if len(lines) == 0 {
		return errors.New(report)
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return errors.New(report + "\n  " + strings.Join(lines, "\n  "))
}

// tailBuffer keeps the last 8 KiB written to it.
type tailBuffer struct {
	mu sync.Mutex // guards b
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - 8<<10; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
