package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bfs "github.com/bucketfs/bucketfs/fs"
)

// mount is a bucketfs process this harness started in the foreground, and
// the mountpoint it serves. The harness unmounts only what it mounted and
// signals only this process, by its PID.
type mount struct {
	Dir     string // the mountpoint
	LogPath string // bucketfs's log
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // the process's exit status, set before done closes
}

// startMount runs bin/bucketfs -f for bucket (optionally under prefix)
// through the profile's proxy, with the run's upload and read settings and
// any extra flags, and returns once the kernel shows the mount.
func (r *runner) startMount(p *profile, bucket, prefix, name string, extra ...string) (*mount, error) {
	dir := filepath.Join(r.work, "mnt", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating mountpoint: %w", err)
	}
	m := &mount{Dir: dir, LogPath: filepath.Join(r.work, "logs", name+".log"), done: make(chan struct{})}
	if err := os.MkdirAll(filepath.Dir(m.LogPath), 0o755); err != nil {
		return nil, fmt.Errorf("creating log directory: %w", err)
	}
	c := r.cfg
	args := []string{
		"-f", "--endpoint-url", p.proxy.URL, "--force-path-style",
		"--log-level", "warn", "--log-file", m.LogPath,
		"--part-size", sizeFlag(c.PartSize),
		"--upload-memory", sizeFlag(c.UploadMemory),
		"--upload-concurrency", fmt.Sprint(c.UploadConcurrency),
		"--read-ahead", sizeFlag(c.ReadAhead),
		"--metadata-ttl", c.MetadataTTL.String(),
	}
	if prefix != "" {
		args = append(args, "--prefix", prefix)
	}
	args = append(args, c.MountFlags...)
	args = append(args, extra...)
	m.cmd = exec.Command(c.Bucketfs, append(args, bucket, dir)...)
	m.cmd.Env = append(os.Environ(), r.minio.Env()...)
	out, err := os.OpenFile(m.LogPath+".out", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the output file of bucketfs: %w", err)
	}
	defer out.Close()
	m.cmd.Stdout, m.cmd.Stderr = out, out
	// Its own process group keeps a terminal's Ctrl-C from reaching it before
	// the harness unmounts; Pdeathsig unmounts it (SIGTERM) if the harness dies.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting bucketfs: %w", err)
	}
	go func() {
		m.waitErr = m.cmd.Wait()
		close(m.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := bfs.IsMountpoint(dir)
		if err != nil {
			m.stop()
			return nil, err
		}
		if ok {
			return m, nil
		}
		select {
		case <-m.done:
			return nil, fmt.Errorf("bucketfs exited before mounting %s (%v): %s", dir, m.waitErr, m.logTail())
		case <-r.ctx.Done():
			m.stop()
			return nil, r.ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.stop()
			return nil, fmt.Errorf("bucketfs did not mount %s within 30s: %s", dir, m.logTail())
		}
	}
}

// PID is the bucketfs process's ID.
func (m *mount) PID() int { return m.cmd.Process.Pid }

// Path is a path inside the mount.
func (m *mount) Path(name string) string { return filepath.Join(m.Dir, name) }

// stop unmounts (bucketfs then writes what is pending and exits) and waits
// for the process; if it does not end, it is killed by its PID. It may be
// called more than once.
func (m *mount) stop() error {
	var errs []string
	for attempt := 0; ; attempt++ {
		ok, err := bfs.IsMountpoint(m.Dir)
		if err != nil || !ok {
			break
		}
		out, err := exec.Command("umount", m.Dir).CombinedOutput()
		if err == nil {
			break
		}
		if attempt == 20 {
			errs = append(errs, fmt.Sprintf("umount %s: %v: %s", m.Dir, err, strings.TrimSpace(string(out))))
			_ = exec.Command("umount", "-l", m.Dir).Run()
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	select {
	case <-m.done:
	case <-time.After(2 * time.Minute):
		errs = append(errs, fmt.Sprintf("bucketfs (pid %d) did not exit after unmounting; killed", m.PID()))
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	if m.waitErr != nil {
		errs = append(errs, fmt.Sprintf("bucketfs exited with %v: %s", m.waitErr, m.logTail()))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// logTail returns the end of bucketfs's log, for error messages.
func (m *mount) logTail() string {
	var b []byte
	for _, p := range []string{m.LogPath, m.LogPath + ".out"} {
		data, _ := os.ReadFile(p)
		b = append(b, data...)
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// warnings counts the warn and error lines of bucketfs's log.
func (m *mount) warnings() int {
	f, err := os.Open(m.LogPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "level=warn") || strings.Contains(l, "level=error") {
			n++
		}
	}
	return n
}
