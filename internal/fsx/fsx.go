// Package fsx is a randomized file exerciser in the spirit of fsx: one
// file, two or three open descriptors on it, and a random sequence of
// pwrite, pread, append (O_APPEND), ftruncate up and down, fsync, close
// and reopen, and reads and writes through a shared mapping (mmap, msync),
// each checked against an in-memory model of the file's bytes.
//
// It knows nothing of bucketfs: it drives an FS, which the tests implement
// over a plain directory (proving the exerciser itself right), over a
// bucketfs mount, and over the kernel-free core with a fake S3. An FS that
// reports its commits (Committer) is also checked for what each commit
// holds, and may fail on purpose (Config.Faults): the exerciser then knows
// which bytes the file must hold after a failure.
package fsx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"strings"
)

// FS is the file system the exerciser drives.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
}

// File is one open descriptor.
type File interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Write writes at the descriptor's offset: at the end, for O_APPEND.
	Write(p []byte) (int, error)
	Truncate(size int64) error
	Sync() error
	// Size is the file's size as fstat sees it.
	Size() (int64, error)
	// Mmap maps length bytes from off with MAP_SHARED (writable: also
	// PROT_WRITE, which needs an O_RDWR descriptor).
	Mmap(off int64, length int, writable bool) (Mapping, error)
	Close() error
}

// Mapping is a shared mapping of part of a file.
type Mapping interface {
	// Bytes are the mapped bytes of the range asked for.
	Bytes() []byte
	// Sync writes the changed pages back (msync MS_SYNC).
	Sync() error
	Unmap() error
}

// Config is one run of the exerciser.
type Config struct {
	Seed    uint64
	Ops     int
	Name    string // the file's name in the FS
	MaxSize int64  // the file never grows past it
	MaxLen  int    // longest single write, read or append
	// FullCheckEvery reads the whole file back every so many operations
	// (and after every close of all descriptors).
	FullCheckEvery int
	// Logf, when set, receives a summary at the end.
	Logf func(format string, args ...any)
	// Faults accepts the failures an FS injects on purpose, marked with
	// ErrTransient or ErrLost; it needs an FS that is a Committer. Any
	// other error fails the run, as without Faults.
	Faults bool
}

// Committer is an FS that reports its commits: each time the file's
// content became durable (what it holds after a remount, or after a
// failure loses what came since), with that content. The exerciser checks
// that
//   - a commit reported when a call returns holds the file as it was when
//     the call was made (one made while writing holds what was there
//     before the write: the write itself is committed later),
//   - a successful fsync or close of a writable descriptor leaves the
//     model's bytes committed (bucketfs's commit rule), and
//   - after a change is lost (ErrLost), nothing is committed until every
//     descriptor is closed, and the file then holds its last commit.
type Committer interface {
	// Commits returns the contents committed since the last call, oldest first.
	Commits() [][]byte
}

// The errors an FS marks its injected failures with (wrapped, with
// fmt.Errorf's %w, around the error the call answered); Config.Faults
// accepts them.
var (
	// ErrTransient is a call that failed and changed nothing.
	ErrTransient = errors.New("injected failure, nothing changed")
	// ErrLost is a failure that lost every change since the file's last
	// commit: each descriptor's calls may fail until every descriptor is
	// closed; the file then holds its last commit.
	ErrLost = errors.New("injected failure, changes since the last commit lost")
)

// errInjected ends a step that met an injected failure, once the run
// caught up with it.
var errInjected = errors.New("the step ended on an injected failure")

// Defaults are the sizes of make test's runs: a file up to 24 MiB, so that
// an object holds several multipart parts of more than 5 MiB, and writes
// up to 3 MiB.
func Defaults(seed uint64, ops int) Config {
	return Config{Seed: seed, Ops: ops, Name: "fsx.bin", MaxSize: 24 << 20, MaxLen: 3 << 20, FullCheckEvery: 50}
}

// descriptor is an open descriptor of the exercised file.
type descriptor struct {
	id   int // the order it was opened in, for the log
	f    File
	flag int
}

func (d *descriptor) writable() bool { return d.flag&(os.O_WRONLY|os.O_RDWR) != 0 }
func (d *descriptor) readable() bool { return d.flag&os.O_WRONLY == 0 }
func (d *descriptor) appends() bool  { return d.flag&os.O_APPEND != 0 }

func (d *descriptor) String() string {
	mode := "rdonly"
	switch {
	case d.flag&os.O_RDWR != 0:
		mode = "rdwr"
	case d.flag&os.O_WRONLY != 0:
		mode = "wronly"
	}
	if d.appends() {
		mode += "|append"
	}
	return fmt.Sprintf("fd#%d(%s)", d.id, mode)
}

// run is the state of one run.
type run struct {
	cfg       Config
	fs        FS
	committer Committer // fs, when it reports its commits; else nil
	r         *rand.Rand
	data      *rand.ChaCha8 // the bytes written
	model     []byte        // what the file must hold
	committed []byte        // what its last commit held (with a Committer)
	commits   int           // how many commits there were
	recheck   bool          // a change was lost: the next step reads the file back whole
	fds       []*descriptor
	opened    int      // descriptors opened so far
	history   []string // the operations so far, for a failure's report
	counts    map[string]int
	buf       []byte // reused by reads
	wbuf      []byte // reused by writes
}

// scratch returns a buffer of n bytes, reused from one read to the next.
func (x *run) scratch(n int) []byte {
	if cap(x.buf) < n {
		x.buf = make([]byte, n)
	}
	return x.buf[:n]
}

// Run runs the exerciser on fs and returns the file's final bytes, or an
// error naming the seed, the operation that went wrong and the ones before
// it. Every descriptor is closed when it returns.
func Run(fs FS, cfg Config) (final []byte, err error) {
	x := &run{cfg: cfg, fs: fs, r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x6a09e667f3bcc909)), counts: map[string]int{}}
	x.committer, _ = fs.(Committer)
	if cfg.Faults && x.committer == nil {
		return nil, errors.New("fsx: Config.Faults needs an FS that is a Committer")
	}
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], cfg.Seed)
	x.data = rand.NewChaCha8(key)
	// A mapping whose page the file system cannot supply faults (SIGBUS):
	// a panic here, turned into this run's error, not a crash of the test.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		for _, d := range x.fds {
			_ = d.f.Close()
		}
		x.fds = nil
		if err != nil {
			err = x.report(err)
		}
	}()
	if err := x.retry(x.create); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.Ops; i++ {
		if err := x.step(i); err != nil && !errors.Is(err, errInjected) {
			return nil, err
		}
	}
	if err := x.retry(x.finish); err != nil {
		return nil, err
	}
	if cfg.Logf != nil {
		cfg.Logf("seed %d: %d operations %v; final size %d", cfg.Seed, cfg.Ops, x.counts, len(x.model))
	}
	return x.model, nil
}

// retry runs f again while an injected failure ends it, a few times.
func (x *run) retry(f func() error) error {
	for tries := 1; ; tries++ {
		err := f()
		if !errors.Is(err, errInjected) || tries == 10 {
			return err
		}
	}
}

// finish closes every descriptor, reads the file back whole through a new
// one, and closes it.
func (x *run) finish() error {
	if err := x.closeAll(); err != nil {
		return err
	}
	if err := x.reopenAndCheck(); err != nil {
		return err
	}
	return x.closeAll()
}

// report adds the seed and the last operations to err.
func (x *run) report(err error) error {
	h := x.history
	if len(h) > 40 {
		h = h[len(h)-40:]
	}
	return fmt.Errorf("fsx seed %d (rerun with BUCKETFS_FSX_SEED=%d): %w\nlast operations (of %d):\n  %s",
		x.cfg.Seed, x.cfg.Seed, err, len(x.history), strings.Join(h, "\n  "))
}

func (x *run) log(format string, args ...any) {
	x.history = append(x.history, fmt.Sprintf("%d: ", len(x.history))+fmt.Sprintf(format, args...))
}

// create writes the file's first version front to back and closes it, so
// that the run changes an existing object; or, one time in two, keeps its
// descriptor open, so that the run changes a file still being written.
func (x *run) create() error {
	size := x.r.Int64N(x.cfg.MaxSize / 2)
	if x.r.IntN(4) == 0 {
		size = x.r.Int64N(64 << 10)
	}
	keep := x.r.IntN(2) == 0
	x.recheck = false // what a lost change left is created again here
	if keep {
		x.log("create, %d bytes written front to back, the descriptor kept open", size)
	} else {
		x.log("create, %d bytes written front to back", size)
	}
	x.opened++
	d := &descriptor{id: x.opened, flag: os.O_CREATE | os.O_TRUNC | os.O_WRONLY}
	f, err := x.fs.OpenFile(x.cfg.Name, d.flag, 0o644)
	if err := x.outcome("create: open", err); err != nil {
		return err
	}
	d.f = f
	x.fds = append(x.fds, d)
	x.model = nil
	data := x.bytes(int(size))
	for off := 0; off < len(data); off += 1 << 20 {
		piece := data[off:min(off+1<<20, len(data))]
		n, err := f.Write(piece)
		if err := x.outcome(fmt.Sprintf("create: write at %d", off), err); err != nil {
			return err
		}
		if n != len(piece) {
			return fmt.Errorf("create: write at %d: wrote %d of %d bytes", off, n, len(piece))
		}
		x.apply(int64(off), piece)
	}
	if keep {
		return nil
	}
	x.fds = x.fds[:len(x.fds)-1]
	if err := x.outcome("create: close", f.Close()); err != nil {
		return err
	}
	if err := x.durable("create: close"); err != nil {
		return err
	}
	return x.open()
}

// bytes returns n random bytes, in a buffer the next call reuses (the FS
// must not keep what it is given to write).
func (x *run) bytes(n int) []byte {
	if cap(x.wbuf) < n {
		x.wbuf = make([]byte, n)
	}
	b := x.wbuf[:n]
	_, _ = x.data.Read(b)
	return b
}

// open opens one more descriptor, of a random kind.
func (x *run) open() error {
	flag := []int{os.O_RDWR, os.O_RDWR, os.O_RDWR | os.O_APPEND, os.O_RDONLY, os.O_WRONLY}[x.r.IntN(5)]
	return x.openFlag(flag)
}

func (x *run) openFlag(flag int) error {
	x.opened++
	d := &descriptor{id: x.opened, flag: flag}
	x.log("open %s", d)
	f, err := x.fs.OpenFile(x.cfg.Name, flag, 0o644)
	if err := x.outcome(fmt.Sprintf("open %s", d), err); err != nil {
		return err
	}
	d.f = f
	x.fds = append(x.fds, d)
	return x.checkSize(d)
}

// pick returns a random open descriptor that ok accepts, opening one with
// flag when there is none.
func (x *run) pick(ok func(*descriptor) bool, flag int) (*descriptor, error) {
	var fit []*descriptor
	for _, d := range x.fds {
		if ok(d) {
			fit = append(fit, d)
		}
	}
	if len(fit) > 0 {
		return fit[x.r.IntN(len(fit))], nil
	}
	if len(x.fds) >= 3 {
		if err := x.closeOne(x.fds[x.r.IntN(len(x.fds))]); err != nil {
			return nil, err
		}
	}
	if err := x.openFlag(flag); err != nil {
		return nil, err
	}
	return x.fds[len(x.fds)-1], nil
}

// checker returns the descriptor the touched range is read back through:
// another one than used when there is another readable one.
func (x *run) checker(used *descriptor) (*descriptor, error) {
	var other []*descriptor
	for _, d := range x.fds {
		if d != used && d.readable() {
			other = append(other, d)
		}
	}
	if len(other) > 0 {
		return other[x.r.IntN(len(other))], nil
	}
	return x.pick(func(d *descriptor) bool { return d.readable() }, os.O_RDONLY)
}

// offset picks where an operation starts: anywhere in the file, at its
// end or a little past it, often at a page or a part boundary.
func (x *run) offset(length int) int64 {
	size := int64(len(x.model))
	limit := max(x.cfg.MaxSize-int64(length), 0)
	var off int64
	switch x.r.IntN(6) {
	case 0: // at or near a multiple of 5 or 8 MiB, where parts may end
		unit := []int64{5 << 20, 8 << 20}[x.r.IntN(2)]
		off = unit*x.r.Int64N(4) + x.r.Int64N(9) - 4
	case 1: // page-aligned
		off = x.r.Int64N(size+1) &^ 4095
	case 2: // past the end: a hole
		off = size + x.r.Int64N(2<<20)
	case 3: // at the end: a write goes on where the last one ended, as a log's
		off = size
	default:
		off = x.r.Int64N(size + 1)
	}
	return min(max(off, 0), limit)
}

// length picks an operation's length: mostly small, sometimes up to MaxLen.
func (x *run) length() int {
	switch x.r.IntN(8) {
	case 0, 1, 2:
		return 1 + x.r.IntN(4096)
	case 3, 4, 5:
		return 1 + x.r.IntN(256<<10)
	}
	return 1 + x.r.IntN(x.cfg.MaxLen)
}

// step does one random operation and checks its result.
func (x *run) step(i int) error {
	if x.recheck {
		x.recheck = false
		if x.commits == 0 {
			return x.create() // the file was lost before its first commit
		}
		return x.reopenAndCheck()
	}
	switch n := x.r.IntN(100); {
	case n < 20:
		return x.write()
	case n < 33:
		return x.read()
	case n < 41:
		return x.append()
	case n < 49:
		return x.truncate()
	case n < 53:
		return x.fsync()
	case n < 59:
		return x.closeAndReopen()
	case n < 64:
		if len(x.fds) < 3 {
			x.counts["open"]++
			return x.open()
		}
		return x.read()
	case n < 72:
		return x.mmapRead()
	case n < 80:
		return x.mmapWrite()
	case n < 82:
		return x.checkAll()
	default:
		return x.write()
	}
}

func (x *run) write() error {
	d, err := x.pick(func(d *descriptor) bool { return d.writable() && !d.appends() }, os.O_RDWR)
	if err != nil {
		return err
	}
	length := x.length()
	off := x.offset(length)
	length = int(min(int64(length), x.cfg.MaxSize-off))
	if length <= 0 {
		return x.truncate()
	}
	data := x.bytes(length)
	x.counts["write"]++
	x.log("%s pwrite %d bytes at %d (size %d)", d, length, off, len(x.model))
	n, err := d.f.WriteAt(data, off)
	if err := x.outcome(fmt.Sprintf("%s pwrite %d bytes at %d", d, length, off), err); err != nil {
		return err
	}
	if n != length {
		return fmt.Errorf("%s pwrite %d bytes at %d: wrote %d", d, length, off, n)
	}
	x.apply(off, data)
	return x.checkRange(d, off, length)
}

func (x *run) append() error {
	d, err := x.pick(func(d *descriptor) bool { return d.appends() }, os.O_RDWR|os.O_APPEND)
	if err != nil {
		return err
	}
	size := int64(len(x.model))
	length := int(min(int64(x.length()), x.cfg.MaxSize-size))
	if length <= 0 {
		return x.truncate()
	}
	data := x.bytes(length)
	x.counts["append"]++
	x.log("%s append %d bytes (size %d)", d, length, size)
	n, err := d.f.Write(data)
	if err := x.outcome(fmt.Sprintf("%s append %d bytes", d, length), err); err != nil {
		return err
	}
	if n != length {
		return fmt.Errorf("%s append %d bytes: wrote %d", d, length, n)
	}
	x.apply(size, data)
	return x.checkRange(d, size, length)
}

func (x *run) truncate() error {
	d, err := x.pick(func(d *descriptor) bool { return d.writable() }, os.O_RDWR)
	if err != nil {
		return err
	}
	size := int64(len(x.model))
	var to int64
	switch x.r.IntN(5) {
	case 0:
		to = 0
	case 1, 2: // down
		to = x.r.Int64N(size + 1)
	default: // up, a little or a lot
		to = min(size+1+x.r.Int64N(max(x.cfg.MaxSize-size, 1)), x.cfg.MaxSize)
		if x.r.IntN(2) == 0 {
			to = min(size+1+x.r.Int64N(64<<10), x.cfg.MaxSize)
		}
	}
	x.counts["truncate"]++
	x.log("%s ftruncate %d -> %d", d, size, to)
	if err := x.outcome(fmt.Sprintf("%s ftruncate %d -> %d", d, size, to), d.f.Truncate(to)); err != nil {
		return err
	}
	x.resize(to)
	// Around the old end: zeros past it when the file grew.
	from := max(min(size, to)-4096, 0)
	return x.checkRange(d, from, int(min(max(size, to)-from, 1<<20)))
}

func (x *run) read() error {
	d, err := x.pick(func(d *descriptor) bool { return d.readable() }, os.O_RDONLY)
	if err != nil {
		return err
	}
	length := x.length()
	off := x.offset(length)
	x.counts["read"]++
	x.log("%s pread %d bytes at %d (size %d)", d, length, off, len(x.model))
	return x.checkRangeWith(d, off, length)
}

func (x *run) fsync() error {
	d, err := x.pick(func(d *descriptor) bool { return true }, os.O_RDWR)
	if err != nil {
		return err
	}
	x.counts["fsync"]++
	x.log("%s fsync", d)
	if err := x.outcome(fmt.Sprintf("%s fsync", d), d.f.Sync()); err != nil {
		return err
	}
	if d.writable() {
		if err := x.durable(fmt.Sprintf("%s fsync", d)); err != nil {
			return err
		}
	}
	return x.checkSize(d)
}

// closeAndReopen closes one descriptor, or every one (the last close
// commits the file), and opens a new one.
func (x *run) closeAndReopen() error {
	x.counts["close"]++
	if x.r.IntN(3) == 0 {
		if err := x.closeAll(); err != nil {
			return err
		}
		return x.reopenAndCheck()
	}
	if len(x.fds) > 0 {
		if err := x.closeOne(x.fds[x.r.IntN(len(x.fds))]); err != nil {
			return err
		}
	}
	return x.open()
}

func (x *run) closeOne(d *descriptor) error {
	x.log("%s close", d)
	for i, o := range x.fds {
		if o == d {
			x.fds = append(x.fds[:i], x.fds[i+1:]...)
			break
		}
	}
	if err := x.outcome(fmt.Sprintf("%s close", d), d.f.Close()); err != nil {
		return err
	}
	if d.writable() {
		return x.durable(fmt.Sprintf("%s close", d))
	}
	return nil
}

func (x *run) closeAll() error {
	x.log("close every descriptor")
	for len(x.fds) > 0 {
		if err := x.closeOne(x.fds[0]); err != nil {
			return err
		}
	}
	return nil
}

// reopenAndCheck opens a descriptor on the closed file and reads it whole.
func (x *run) reopenAndCheck() error {
	if err := x.open(); err != nil {
		return err
	}
	return x.checkAll()
}

func (x *run) mmapRead() error {
	size := int64(len(x.model))
	if size == 0 {
		return x.write()
	}
	d, err := x.pick(func(d *descriptor) bool { return d.readable() }, os.O_RDONLY)
	if err != nil {
		return err
	}
	off := x.r.Int64N(size)
	length := int(min(int64(x.length()), size-off))
	x.counts["mmap-read"]++
	x.log("%s mmap read %d bytes at %d (size %d)", d, length, off, size)
	what := fmt.Sprintf("%s mmap read %d bytes at %d", d, length, off)
	m, err := d.f.Mmap(off, length, false)
	if err := x.outcome(what, err); err != nil {
		return err
	}
	got := x.scratch(length)
	ferr := copyFaulting(got, m.Bytes())
	if err := x.outcome(what+": munmap", m.Unmap()); err != nil {
		return err
	}
	if ferr != nil {
		return fmt.Errorf("%s: %w", what, ferr)
	}
	return x.compare(fmt.Sprintf("%s mmap read", d), off, got, x.model[off:off+int64(length)])
}

func (x *run) mmapWrite() error {
	size := int64(len(x.model))
	if size == 0 {
		return x.write()
	}
	d, err := x.pick(func(d *descriptor) bool { return d.flag&os.O_RDWR != 0 && !d.appends() }, os.O_RDWR)
	if err != nil {
		return err
	}
	off := x.r.Int64N(size)
	length := int(min(int64(x.length()), size-off))
	data := x.bytes(length)
	x.counts["mmap-write"]++
	x.log("%s mmap write %d bytes at %d, msync (size %d)", d, length, off, size)
	what := fmt.Sprintf("%s mmap write %d bytes at %d", d, length, off)
	m, err := d.f.Mmap(off, length, true)
	if err := x.outcome(what, err); err != nil {
		return err
	}
	if err := copyFaulting(m.Bytes(), data); err != nil {
		_ = m.Unmap()
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := x.outcome(what+": msync", m.Sync()); err != nil {
		_ = m.Unmap() // after a failure: the mapping goes, its changes with it
		return err
	}
	if err := x.outcome(what+": munmap", m.Unmap()); err != nil {
		return err
	}
	x.apply(off, data)
	return x.checkRange(d, off, length)
}

// copyFaulting copies between a mapping and memory; a fault on the
// mapping (SIGBUS, with SetPanicOnFault) is an error.
func copyFaulting(dst, src []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("memory fault on the mapping: %v", r)
		}
	}()
	copy(dst, src)
	return nil
}

// apply writes data at off into the model, zero-filling a hole before it.
func (x *run) apply(off int64, data []byte) {
	if end := off + int64(len(data)); end > int64(len(x.model)) {
		x.resize(end)
	}
	copy(x.model[off:], data)
}

func (x *run) resize(size int64) {
	if size <= int64(len(x.model)) {
		x.model = x.model[:size]
		return
	}
	x.model = append(x.model, make([]byte, size-int64(len(x.model)))...)
}

// checkRange checks the size, then reads [off, off+length) back through
// another descriptor than used when there is one.
func (x *run) checkRange(used *descriptor, off int64, length int) error {
	if err := x.checkSize(used); err != nil {
		return err
	}
	d, err := x.checker(used)
	if err != nil {
		return err
	}
	if err := x.checkRangeWith(d, off, length); err != nil {
		return err
	}
	if x.cfg.FullCheckEvery > 0 && len(x.history)%x.cfg.FullCheckEvery == 0 {
		return x.checkAll()
	}
	return nil
}

// checkRangeWith reads [off, off+length) through d: the bytes the model
// holds there, and a short read exactly at the end of the file.
func (x *run) checkRangeWith(d *descriptor, off int64, length int) error {
	got := x.scratch(length)
	n, err := d.f.ReadAt(got, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	if err := x.outcome(fmt.Sprintf("%s pread %d bytes at %d", d, length, off), err); err != nil {
		return err
	}
	size := int64(len(x.model))
	want := x.model[min(off, size):min(off+int64(length), size)]
	return x.compare(fmt.Sprintf("%s pread %d bytes at %d", d, length, off), off, got[:n], want)
}

func (x *run) checkSize(d *descriptor) error {
	size, err := d.f.Size()
	if err := x.outcome(fmt.Sprintf("%s fstat", d), err); err != nil {
		return err
	}
	if size != int64(len(x.model)) {
		return fmt.Errorf("%s fstat: size %d, want %d", d, size, len(x.model))
	}
	return nil
}

// checkAll reads the whole file back through a random readable descriptor.
func (x *run) checkAll() error {
	d, err := x.pick(func(d *descriptor) bool { return d.readable() }, os.O_RDONLY)
	if err != nil {
		return err
	}
	x.counts["check-all"]++
	x.log("%s read the whole file (%d bytes)", d, len(x.model))
	if err := x.checkSize(d); err != nil {
		return err
	}
	return x.checkRangeWith(d, 0, len(x.model)+1)
}

// compare reports the first byte where got differs from want.
func (x *run) compare(what string, off int64, got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d bytes, want %d (file size %d in the model)", what, len(got), len(want), len(x.model))
	}
	i := 0
	for got[i] == want[i] {
		i++
	}
	j := min(i+16, len(got))
	return fmt.Errorf("%s: first difference at file offset %d: got % x, want % x", what, off+int64(i), got[i:j], want[i:j])
}

// outcome takes the answer of a call on the FS: its error, and the commits
// made meanwhile, which must hold the model as it was when the call was
// made (the caller applies the call's own change after outcome). With
// Config.Faults, an injected failure ends the step (errInjected), once
// the run caught up with it (lose).
func (x *run) outcome(what string, err error) error {
	if x.committer != nil {
		for _, c := range x.committer.Commits() {
			if cerr := x.compare("a commit during "+what, 0, c, x.model); cerr != nil {
				return cerr
			}
			x.committed = c
			x.commits++
		}
	}
	switch {
	case err == nil:
		return nil
	case x.cfg.Faults && errors.Is(err, ErrTransient):
		x.counts["transient"]++
		x.log("%s failed, nothing changed: %v", what, err)
		return errInjected
	case x.cfg.Faults && errors.Is(err, ErrLost):
		x.counts["lost"]++
		x.log("%s failed, changes since the last commit lost: %v", what, err)
		if err := x.lose(); err != nil {
			return err
		}
		return errInjected
	}
	return fmt.Errorf("%s: %w", what, err)
}

// lose catches up with a lost change: every descriptor is closed (their
// closes may fail too), nothing may be committed meanwhile, and the model
// goes back to the last commit, which the next step reads back whole (or
// creates the file again, when there was none).
func (x *run) lose() error {
	for len(x.fds) > 0 {
		d := x.fds[0]
		x.fds = x.fds[1:]
		x.log("%s close after the loss", d)
		if err := d.f.Close(); err != nil && !errors.Is(err, ErrLost) && !errors.Is(err, ErrTransient) {
			return fmt.Errorf("%s close after a lost change: %w", d, err)
		}
	}
	if c := x.committer.Commits(); len(c) > 0 {
		return fmt.Errorf("%d commits (the last of %d bytes) after a lost change: a failed file must publish nothing", len(c), len(c[len(c)-1]))
	}
	x.model = bytes.Clone(x.committed)
	x.recheck = true
	return nil
}

// durable checks, with a Committer, that a successful fsync or close of a
// writable descriptor left the model's bytes committed.
func (x *run) durable(what string) error {
	if x.committer == nil {
		return nil
	}
	return x.compare(what+" succeeded, but the last commit", 0, x.committed, x.model)
}
