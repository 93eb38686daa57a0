package core_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/core"
	"github.com/bucketfs/bucketfs/s3client"
	"github.com/bucketfs/bucketfs/s3client/s3fake"
	"github.com/bucketfs/bucketfs/uploader"
)

var (
	modelSeedsFlag = flag.Int("model.seeds", 0, "TestModel: run this many fresh random seeds instead of the fixed ones (env BUCKETFS_CORE_MODEL_SEEDS)")
	modelSeedFlag  = flag.String("model.seed", "", "TestModel: replay this one seed (env BUCKETFS_CORE_MODEL_SEED)")
	modelStepsFlag = flag.Int("model.steps", 0, "TestModel: steps per seed (env BUCKETFS_CORE_MODEL_STEPS; default 300)")
)

// modelFixedSeeds are the seeds of the default run.
// 12572248037748805326 once found a failed rename that left the upload aimed
// at the destination.
var modelFixedSeeds = []uint64{1, 2, 3, 5, 8, 13, 21, 34, 12572248037748805326}

const (
	modelDefaultSteps = 300
	// modelDeadline bounds every call into the core; injected delays stay
	// far below it, so a call that takes longer hangs.
	modelDeadline = 5 * time.Second
	// modelStatLimit bounds File.Writing while a commit waits on S3.
	modelStatLimit = 50 * time.Millisecond
	modelWait      = 50 * time.Millisecond // WriterWait and OutOfOrderWait
	modelMaxOpen   = 6                     // write sessions open at once, so memory never runs out
	modelMaxProcs  = 8
	modelMaxSize   = 20 << 20 // a file stops growing fast here
	modelPoolSize  = 16 << 20
	modelPartSize  = 5 << 20
)

// modelOps are the S3 operations whose failure fails a write session.
var modelOps = []string{
	s3fake.OpUploadPart, s3fake.OpPutObject, s3fake.OpCreateMultipartUpload, s3fake.OpCompleteMultipartUpload,
	s3fake.OpUploadPartCopy, s3fake.OpGetObject, s3fake.OpCopyObject,
}

// modelPool is the random bytes that writes take their data from (at a
// random offset, so that a misplaced range shows).
var modelPool = sync.OnceValue(func() []byte {
	r := rand.New(rand.NewPCG(0x6275636b, 0x657466))
	b := make([]byte, modelPoolSize)
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
})

// modelScribble overwrites a write's buffer once the call returned, as the
// kernel reuses it: bytes the core did not copy show up as 0xA5.
var modelScribble = sync.OnceValue(func() []byte { return bytes.Repeat([]byte{0xA5}, 8<<20) })

var modelCtx = context.Background()

// TestModel drives the core as the kernel does (processes with descriptor
// tables, open, write, dup, dup2, fork, close, exit, fsync, rename and
// unlink of files being written, pid 0 callers) against s3fake with slow
// and failing requests, and checks after every step, against a plain model
// of what every open file description wrote and what the bucket must hold,
// that nothing was lost, nothing hangs and nothing else appeared.
//
// The default run (make test) plays a fixed list of seeds. More:
//
//	BUCKETFS_CORE_MODEL_SEEDS=1000 go test -race -count=1 ./core/ -run TestModel
//	go test ./core/ -run TestModel -model.seeds=1000
//
// and a failure, which names its seed, replays with
//
//	BUCKETFS_CORE_MODEL_SEED=S go test -race -count=1 ./core/ -run TestModel
func TestModel(t *testing.T) {
	seeds, steps := modelPlan(t)
	var total atomic.Int64
	start := time.Now()
	t.Run("seed", func(t *testing.T) {
		for _, seed := range seeds {
			t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
				t.Parallel()
				w := newModelWorld(t, seed)
				defer func() { total.Add(int64(w.done)) }()
				w.play(steps)
			})
		}
	})
	t.Logf("%d seeds, %d steps in %v", len(seeds), total.Load(), time.Since(start).Round(time.Millisecond))
}

// modelPlan returns the seeds to play and the steps of each.
func modelPlan(t *testing.T) ([]uint64, int) {
	steps := modelDefaultSteps
	if testing.Short() {
		steps = 100
	}
	if v := os.Getenv("BUCKETFS_CORE_MODEL_STEPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("BUCKETFS_CORE_MODEL_STEPS=%q", v)
		}
		steps = n
	}
	if *modelStepsFlag > 0 {
		steps = *modelStepsFlag
	}
	one := os.Getenv("BUCKETFS_CORE_MODEL_SEED")
	if *modelSeedFlag != "" {
		one = *modelSeedFlag
	}
	if one != "" {
		s, err := strconv.ParseUint(one, 10, 64)
		if err != nil {
			t.Fatalf("seed %q: %v", one, err)
		}
		return []uint64{s}, steps
	}
	n := *modelSeedsFlag
	if v := os.Getenv("BUCKETFS_CORE_MODEL_SEEDS"); v != "" && n == 0 {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("BUCKETFS_CORE_MODEL_SEEDS=%q", v)
		}
	}
	if n <= 0 {
		return modelFixedSeeds, steps
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = rand.Uint64()
	}
	t.Logf("%d fresh seeds of %d steps; replay one with BUCKETFS_CORE_MODEL_SEED=S", n, steps)
	return seeds, steps
}

// modelWorld is one seed's mount: the core over a fake bucket, the
// processes using it, and the model they are checked against. Everything
// but the fault rules is owned by the test goroutine.
type modelWorld struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	fake  *s3fake.Fake
	up    *uploader.Uploader
	core  *core.Core
	rules *modelRules

	step int    // the step being played
	done int    // steps played
	op   string // the step's operation

	names   map[string]*modelFile // the file of each name, as the filesystem keeps a node per name
	files   []*modelFile          // every file ever made
	procs   []*modelProc          // live processes, oldest first
	objects map[string][]byte     // what the bucket holds
	alts    map[string][]modelAlt // keys that hold one of several contents (a lost answer)
	version map[string]int        // bumped at every change of objects[key]
	seen    map[string]modelSeen  // the last content fetched and checked of each key

	sessionsEver []*modelSession // every session opened, for hints
	nextPid      uint32
	nextName     int
	nextSession  int
	recent       []string
	stats        map[string]int
}

// modelAlt is one content a key may hold.
type modelAlt struct {
	exists bool
	data   []byte
}

// modelSeen is a key's content as last checked.
type modelSeen struct {
	etag    string
	data    []byte
	version int
}

// modelFile is one core.File: a node of the filesystem layer.
type modelFile struct {
	id    int
	f     *core.File
	name  string   // its name; "" once unlinked or replaced
	names []string // every name it had
	sess  *modelSession
	hist  []string

	mu       sync.Mutex // guards commits and failures: the core's hooks append to them
	commits  []core.Version
	failures []string
}

// modelSession is one open file description for writing: one core.Handle
// and what was written through it.
type modelSession struct {
	id     int
	file   *modelFile
	h      *core.Handle
	opener uint32 // the pid the core was told at open
	refs   int    // descriptors referring to it
	offset int64  // the description's offset
	data   []byte // every byte written, in order
	clean  int    // len(data) at the last commit
	key    string
	keys   []string // every key it had

	published bool // a commit of this session is at key
	owesEmpty bool // a commit is owed even with nothing written (a new file, a truncation)
	replacing bool // key holds an object the session did not write
	exclusive bool // O_EXCL, until the first commit

	orphaned bool // unlinked or replaced: writes go nowhere
	failed   bool // the core answered EIO: the session is failed for good
	hit      bool // an injected failure hit one of its requests
	lost     bool // a lost answer of PutObject or CompleteMultipartUpload: the key may hold the data
	ended    bool // released
}

func (s *modelSession) String() string { return fmt.Sprintf("h%d", s.id) }

func (s *modelSession) growth() bool { return len(s.data) > s.clean }

// dirty says whether the core holds something S3 does not have yet.
func (s *modelSession) dirty() bool {
	return !s.failed && !s.orphaned && (s.growth() || s.owesEmpty)
}

// modelProc is a process: a descriptor table.
type modelProc struct {
	id  uint32 // its real pid
	pid uint32 // the pid the daemon sees: 0 for a process it cannot see
	fds map[int]*modelSession
}

func (p *modelProc) String() string {
	if p.pid == 0 {
		return fmt.Sprintf("p%d(pid 0)", p.id)
	}
	return fmt.Sprintf("p%d", p.id)
}

// sortedFds returns p's descriptors in ascending order.
func (p *modelProc) sortedFds() []int {
	fds := make([]int, 0, len(p.fds))
	for fd := range p.fds {
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	return fds
}

// lowestFree returns the lowest free descriptor from 3, as open and dup do.
func (p *modelProc) lowestFree() int {
	fd := 3
	for p.fds[fd] != nil {
		fd++
	}
	return fd
}

func newModelWorld(t *testing.T, seed uint64) *modelWorld {
	fake := s3fake.New()
	// MemoryWait is short so that writers waiting for each other's memory
	// would answer ENOBUFS within a step rather than hang it.
	up, err := uploader.New(fake, uploader.Config{PartSize: modelPartSize, MemoryLimit: 64 << 20, MemoryWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := &modelWorld{
		t:       t,
		seed:    seed,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		fake:    fake,
		up:      up,
		rules:   &modelRules{delays: map[string]modelDelay{}},
		names:   map[string]*modelFile{},
		objects: map[string][]byte{},
		alts:    map[string][]modelAlt{},
		version: map[string]int{},
		seen:    map[string]modelSeen{},
		nextPid: 1000,
		stats:   map[string]int{},
	}
	fake.SetHook(w.rules.hook)
	w.core = core.New(core.Config{Client: fake, Uploader: up, WriterWait: modelWait, OutOfOrderWait: modelWait})
	// Objects that were there before the mount: to overwrite with and
	// without O_TRUNC, empty ones among them.
	for i, size := range []int{100, 0, 6 << 20, 3000} {
		if w.rng.IntN(4) == 0 {
			continue
		}
		name := fmt.Sprintf("f%d", i)
		data := w.content(size)
		fake.SetObject(name, data, nil)
		w.setObject(name, data)
	}
	return w
}

// play runs steps steps, then ends every process and checks what is left.
func (w *modelWorld) play(steps int) {
	for w.step = 1; w.step <= steps; w.step++ {
		w.rules.prune(w.step)
		w.oneStep()
		w.collectHits()
		w.check()
		w.done++
	}
	w.op = "end"
	for len(w.procs) > 0 {
		w.exit(w.procs[0])
	}
	w.rules.clear()
	w.collectHits()
	w.check()
	for _, mf := range w.files {
		if _, _, ok := mf.f.Writing(); ok {
			w.failf([]*modelFile{mf}, "a write session is open after every process exited")
		}
	}
	if ups := w.fake.Uploads(); len(ups) != 0 {
		w.failf(nil, "multipart uploads left in progress: %v", ups)
	}
	if err := w.up.Close(); err != nil {
		w.failf(nil, "uploader: %v", err)
	}
	counts := w.fake.Counts()
	var ops []string
	for op, n := range counts {
		ops = append(ops, fmt.Sprintf("%s=%d", op, n))
	}
	slices.Sort(ops)
	var kinds []string
	for k, n := range w.stats {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	slices.Sort(kinds)
	w.t.Logf("seed %d: %d steps; %s; requests %s", w.seed, w.done, strings.Join(kinds, " "), strings.Join(ops, " "))
}

// modelChoice is one kind of step; do reports whether it could be played.
type modelChoice struct {
	weight int
	name   string
	do     func() bool
}

func (w *modelWorld) oneStep() {
	choices := []modelChoice{
		{14, "open", w.stepOpen},
		{22, "write", w.stepWrite},
		{5, "dup", w.stepDup},
		{3, "dup2", w.stepDup2},
		{4, "fork", w.stepFork},
		{10, "close", w.stepClose},
		{5, "exit", w.stepExit},
		{4, "fsync", w.stepFsync},
		{5, "rename-writing", w.stepRenameWriting},
		{2, "rename", w.stepRenameIdle},
		{3, "unlink-writing", w.stepUnlinkWriting},
		{1, "unlink", w.stepUnlinkIdle},
		{3, "delay", w.stepDelay},
		{6, "fail", w.stepFail},
		{2, "exec-echo", w.stepExecEcho},
		{2, "logrotate", w.stepLogrotate},
		{2, "for-loop", w.stepForLoop},
		{2, "stat-during-commit", w.stepStatDuringCommit},
		{5, "concurrent", w.stepConcurrent},
		{1, "open-busy", w.stepOpenBusy},
		{2, "open-race", w.stepOpenRace},
		{1, "foreign-create", w.stepForeignCreate},
	}
	total := 0
	for _, c := range choices {
		total += c.weight
	}
	for range 30 {
		r := w.rng.IntN(total)
		for _, c := range choices {
			if r -= c.weight; r < 0 {
				w.op = c.name
				if c.do() {
					w.stats[c.name]++
					return
				}
				break
			}
		}
	}
	w.op = "exit"
	if len(w.procs) > 0 {
		w.exit(w.procs[w.rng.IntN(len(w.procs))])
	}
}

// ---- the steps ----

func (w *modelWorld) stepOpen() bool {
	if w.openCount() >= modelMaxOpen {
		return false
	}
	name, ok := w.writableName()
	if !ok {
		return false
	}
	p := w.someProc()
	_, exists := w.objects[name]
	trunc := !exists || w.rng.IntN(6) != 0 // without O_TRUNC: ENOTSUP, or appending to an empty object
	excl := w.names[name] == nil && !exists && w.rng.IntN(4) == 0
	w.open(p, name, trunc, excl)
	return true
}

func (w *modelWorld) stepWrite() bool {
	p, fd, ok := w.someFd(nil)
	if !ok {
		return false
	}
	s := p.fds[fd]
	w.do(w.writeAction(p, fd, w.content(w.writeSize(s))))
	return true
}

func (w *modelWorld) stepDup() bool {
	p, fd, ok := w.someFd(nil)
	if !ok {
		return false
	}
	w.dup(p, fd)
	return true
}

func (w *modelWorld) stepDup2() bool {
	p, fd, ok := w.someFd(nil)
	if !ok {
		return false
	}
	// Onto another of its descriptors (which is closed first), or a free one.
	fds := p.sortedFds()
	to := fds[w.rng.IntN(len(fds))]
	if to == fd || w.rng.IntN(3) == 0 {
		to = p.lowestFree() + w.rng.IntN(2)
	}
	w.dup2(p, fd, to)
	return true
}

func (w *modelWorld) stepFork() bool {
	if len(w.procs) >= modelMaxProcs {
		return false
	}
	p, _, ok := w.someFd(nil)
	if !ok {
		return false
	}
	w.fork(p)
	return true
}

func (w *modelWorld) stepClose() bool {
	p, fd, ok := w.someFd(nil)
	if !ok {
		return false
	}
	w.closeFd(p, fd)
	return true
}

func (w *modelWorld) stepExit() bool {
	if len(w.procs) == 0 {
		return false
	}
	w.exit(w.procs[w.rng.IntN(len(w.procs))])
	return true
}

func (w *modelWorld) stepFsync() bool {
	p, fd, ok := w.someFd(nil)
	if !ok {
		return false
	}
	w.do(w.fsyncAction(p, fd))
	return true
}

func (w *modelWorld) stepRenameWriting() bool {
	var srcs []string
	for _, name := range w.sortedNames() {
		if w.names[name].sess != nil {
			srcs = append(srcs, name)
		}
	}
	if len(srcs) == 0 {
		return false
	}
	src := srcs[w.rng.IntN(len(srcs))]
	w.rename(src, w.renameTarget(src))
	return true
}

func (w *modelWorld) stepRenameIdle() bool {
	var srcs []string
	for _, name := range w.allNames() {
		if mf := w.names[name]; (mf == nil || mf.sess == nil) && w.hasObject(name) {
			srcs = append(srcs, name)
		}
	}
	if len(srcs) == 0 {
		return false
	}
	src := srcs[w.rng.IntN(len(srcs))]
	w.rename(src, w.renameTarget(src))
	return true
}

func (w *modelWorld) stepUnlinkWriting() bool {
	var names []string
	for _, name := range w.sortedNames() {
		if w.names[name].sess != nil {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return false
	}
	w.unlink(names[w.rng.IntN(len(names))])
	return true
}

func (w *modelWorld) stepUnlinkIdle() bool {
	var names []string
	for _, name := range w.allNames() {
		if mf := w.names[name]; (mf == nil || mf.sess == nil) && w.hasObject(name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return false
	}
	w.unlink(names[w.rng.IntN(len(names))])
	return true
}

// stepDelay slows one kind of request down for a few steps.
func (w *modelWorld) stepDelay() bool {
	ops := append(slices.Clone(modelOps), s3fake.OpAbortMultipartUpload, s3fake.OpDeleteObject)
	op := ops[w.rng.IntN(len(ops))]
	d := time.Duration(1+w.rng.IntN(25)) * time.Millisecond
	until := w.step + 3 + w.rng.IntN(12)
	w.rules.mu.Lock()
	w.rules.delays[op] = modelDelay{d: d, until: until}
	w.rules.mu.Unlock()
	w.note(nil, fmt.Sprintf("delay %s by %v until step %d", op, d, until))
	return true
}

// stepFail arms a failure of the next request of one kind of a session.
func (w *modelWorld) stepFail() bool {
	var cands []*modelSession
	for _, s := range w.sessions() {
		if !s.orphaned && !s.failed && !s.hit && w.unshared(s) && !w.rules.charged(s) {
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		return false
	}
	s := cands[w.rng.IntN(len(cands))]
	// The first of the requests it is likely to make next, or of one kind.
	ops := []string{modelOps[w.rng.IntN(len(modelOps))]}
	if likely := w.likelyOps(s); w.rng.IntN(3) != 0 {
		ops = likely
	}
	r := &modelRule{kind: modelFail, ops: ops, keys: []string{s.key}, sess: s, left: 1, expires: w.step + 30}
	codes := []struct {
		code   string
		status int
	}{{"InternalError", 500}, {"SlowDown", 503}, {"AccessDenied", 403}}
	c := codes[w.rng.IntN(len(codes))]
	r.code, r.status = c.code, c.status
	what := c.code
	if !slices.ContainsFunc(ops, func(op string) bool {
		return op != s3fake.OpPutObject && op != s3fake.OpCompleteMultipartUpload
	}) && w.rng.IntN(3) == 0 {
		// A commit applied whose answer is lost: the key may hold the data.
		r.kind, what = modelLose, "a lost answer"
	}
	w.rules.add(r)
	w.note(s.file, fmt.Sprintf("arm: the next of %s by %s on %q fails with %s", strings.Join(ops, ", "), s, s.key, what))
	// Mostly, make the session reach S3 now: a write (which may reopen or
	// send a part), then often an fsync.
	if w.rng.IntN(3) != 0 {
		p, fd, _ := w.someFd(func(x *modelSession) bool { return x == s })
		w.do(w.writeAction(p, fd, w.content(w.writeSize(s))))
		if w.rng.IntN(3) != 0 {
			w.do(w.fsyncAction(p, fd))
		}
	}
	return true
}

// likelyOps returns the requests s makes next: a reopen's, a part's, a
// commit's.
func (w *modelWorld) likelyOps(s *modelSession) []string {
	var ops []string
	switch {
	case s.published && !s.growth() && s.clean >= modelPartSize:
		ops = append(ops, s3fake.OpUploadPartCopy, s3fake.OpCreateMultipartUpload)
	case s.published && !s.growth() && s.clean > 0:
		ops = append(ops, s3fake.OpGetObject)
	}
	if len(s.data) >= modelPartSize/2 {
		ops = append(ops, s3fake.OpUploadPart, s3fake.OpCreateMultipartUpload, s3fake.OpCompleteMultipartUpload)
	} else {
		ops = append(ops, s3fake.OpPutObject)
	}
	return ops
}

// stepLogrotate plays logrotate's rename of a file being written followed
// by the creation of a new file under the old name, written and closed
// while the old writer still writes.
func (w *modelWorld) stepLogrotate() bool {
	if w.openCount() >= modelMaxOpen || len(w.procs) >= modelMaxProcs {
		return false
	}
	var names []string
	for _, name := range w.sortedNames() {
		if s := w.names[name].sess; s != nil && !s.failed {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return false
	}
	name := names[w.rng.IntN(len(names))]
	w.nextName++
	w.rename(name, fmt.Sprintf("r%d", w.nextName))
	if w.names[name] != nil {
		return true // the rename failed
	}
	p := w.newProc(w.rng.IntN(5) == 0)
	fd, ok := w.open(p, name, true, false)
	if !ok {
		w.exit(p)
		return true
	}
	w.do(w.writeAction(p, fd, w.content(1+w.rng.IntN(8192))))
	if w.rng.IntN(2) == 0 {
		w.exit(p)
	}
	return true
}

// stepExecEcho plays `exec 3>f; echo first >&3; echo second >&3`: the
// shell's builtin echo dup2s 3 onto 1, writes, and restores 1, closing it:
// a flush by the opener between writes.
func (w *modelWorld) stepExecEcho() bool {
	if w.openCount() >= modelMaxOpen || len(w.procs) >= modelMaxProcs {
		return false
	}
	name, ok := w.writableName()
	if !ok {
		return false
	}
	p := w.newProc(w.rng.IntN(4) == 0)
	fd, ok := w.open(p, name, true, false)
	if !ok {
		return true
	}
	for _, word := range []string{"first\n", "second\n"} {
		w.dup2(p, fd, 1)
		w.do(w.writeAction(p, 1, []byte(word)))
		w.closeFd(p, 1)
	}
	return true // fd 3 stays open, as after exec 3>f
}

// stepForLoop plays `for i in 1 2 3; do /bin/echo $i; done > f`: the shell
// opens f, each forked child writes and exits (its close is not the
// opener's), and the shell's close commits.
func (w *modelWorld) stepForLoop() bool {
	if w.openCount() >= modelMaxOpen || len(w.procs) >= modelMaxProcs {
		return false
	}
	name, ok := w.writableName()
	if !ok {
		return false
	}
	p := w.newProc(w.rng.IntN(3) == 0)
	fd, ok := w.open(p, name, true, false)
	if !ok {
		w.exit(p)
		return true
	}
	for i := 1; i <= 3; i++ {
		c := w.fork(p)
		w.do(w.writeAction(c, fd, []byte(strconv.Itoa(i)+"\n")))
		w.exit(c)
	}
	w.exit(p)
	return true
}

// stepStatDuringCommit holds a commit at S3's PutObject or
// CompleteMultipartUpload and checks that File.Writing answers meanwhile.
func (w *modelWorld) stepStatDuringCommit() bool {
	var cands []*modelSession
	for _, s := range w.sessions() {
		if s.dirty() && !s.hit && w.unshared(s) && !w.rules.charged(s) && s.refs > 0 {
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		return false
	}
	s := cands[w.rng.IntN(len(cands))]
	var p *modelProc
	fd := -1
	for _, q := range w.procs {
		for _, d := range q.sortedFds() {
			if q.fds[d] == s && fd < 0 {
				p, fd = q, d
			}
		}
	}
	if fd < 0 {
		w.failf([]*modelFile{s.file}, "%s has %d references but no descriptor", s, s.refs)
	}
	gate := &modelRule{kind: modelGate, ops: []string{s3fake.OpPutObject, s3fake.OpCompleteMultipartUpload},
		keys: slices.Clone(s.keys), left: 1, expires: w.step, gate: make(chan struct{}), reached: make(chan struct{})}
	w.rules.add(gate)
	a := w.fsyncAction(p, fd)
	w.note(s.file, "gate PutObject and CompleteMultipartUpload; "+a.desc)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		a.exec()
	}()
	timer := time.NewTimer(modelDeadline)
	defer timer.Stop()
	select {
	case <-gate.reached:
	case <-finished:
		w.collectHits()
		w.failf([]*modelFile{s.file}, "fsync of %s, which holds bytes S3 does not have, returned (%s) without a PutObject or CompleteMultipartUpload", s, a.result())
	case <-timer.C:
		w.hung("fsync waiting for its commit to reach S3")
	}
	files := w.liveFiles()
	type stat struct {
		slowest time.Duration
		size    int64
		ok      bool
	}
	var st stat
	w.call("File.Writing while a commit waits on S3", func() {
		for range 5 {
			for _, mf := range files {
				t0 := time.Now()
				size, _, ok := mf.f.Writing()
				mf.f.Dirty()
				if d := time.Since(t0); d > st.slowest {
					st.slowest = d
				}
				if mf == s.file {
					st.size, st.ok = size, ok
				}
			}
			time.Sleep(time.Millisecond)
		}
	})
	close(gate.gate)
	select {
	case <-finished:
	case <-timer.C:
		w.hung(a.desc)
	}
	w.rules.remove(gate)
	w.collectHits()
	w.finishAction(a)
	if st.slowest > modelStatLimit {
		w.failf([]*modelFile{s.file}, "File.Writing took %v while a commit waited on S3 (limit %v)", st.slowest, modelStatLimit)
	}
	if !st.ok || st.size != s.offset {
		w.failf([]*modelFile{s.file}, "File.Writing during the commit: size %d, open %v; want %d, true", st.size, st.ok, s.offset)
	}
	return true
}

// stepConcurrent runs two processes' calls on two files at once, with a
// stat loop beside them.
func (w *modelWorld) stepConcurrent() bool {
	type pick struct {
		p  *modelProc
		fd int
	}
	var picks []pick
	for _, p := range w.procs {
		for _, fd := range p.sortedFds() {
			if s := p.fds[fd]; !w.rules.charged(s) {
				picks = append(picks, pick{p, fd})
			}
		}
	}
	if len(picks) < 2 {
		return false
	}
	a := picks[w.rng.IntN(len(picks))]
	var others []pick
	for _, b := range picks {
		sa, sb := a.p.fds[a.fd], b.p.fds[b.fd]
		if b.p != a.p && sa.file != sb.file && !slices.ContainsFunc(sa.keys, func(k string) bool { return slices.Contains(sb.keys, k) }) {
			others = append(others, b)
		}
	}
	if len(others) == 0 {
		return false
	}
	b := others[w.rng.IntN(len(others))]
	var chains [][]*modelAction
	for _, x := range []pick{a, b} {
		s := x.p.fds[x.fd]
		switch r := w.rng.IntN(100); {
		case r < 60:
			chains = append(chains, []*modelAction{w.writeAction(x.p, x.fd, w.content(w.writeSize(s)))})
		case r < 75:
			chains = append(chains, []*modelAction{w.fsyncAction(x.p, x.fd)})
		default:
			chains = append(chains, w.closeActions(x.p, x.fd))
		}
	}
	w.doConcurrently(chains)
	return true
}

// stepOpenRace closes the last descriptor of a file's session while
// another process opens the file: the open waits for the release (up to
// WriterWait) and sees what the release committed.
func (w *modelWorld) stepOpenRace() bool {
	if len(w.procs) >= modelMaxProcs {
		return false
	}
	var cands []*modelSession
	for _, s := range w.sessions() {
		if s.refs == 1 && !s.orphaned && !w.rules.charged(s) && w.names[s.key] == s.file {
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		return false
	}
	s := cands[w.rng.IntN(len(cands))]
	p, fd, _ := w.someFd(func(x *modelSession) bool { return x == s })
	q := w.newProc(w.rng.IntN(5) == 0)
	open, _ := w.openAction(q, s.key, true, false, true)
	w.doConcurrently([][]*modelAction{w.closeActions(p, fd), {open}})
	return true
}

// stepOpenBusy opens a file that has a write session open: EBUSY once
// WriterWait passed.
func (w *modelWorld) stepOpenBusy() bool {
	var busy []string
	for _, name := range w.sortedNames() {
		if w.names[name].sess != nil {
			busy = append(busy, name)
		}
	}
	if len(busy) == 0 {
		return false
	}
	name := busy[w.rng.IntN(len(busy))]
	mf := w.names[name]
	p := w.someProc()
	var err error
	w.do(&modelAction{
		desc:  fmt.Sprintf("%s open %q O_TRUNC while %s writes it", p, name, mf.sess),
		files: []*modelFile{mf},
		exec: func() {
			_, err = mf.f.OpenWrite(modelCtx, p.pid, name, core.OpenMode{Truncate: true}, w.existing(name))
		},
		result: func() string { return modelErr(err) },
		apply: func() {
			if err != syscall.EBUSY {
				w.failf([]*modelFile{mf}, "a second open for writing answered %v, want EBUSY", err)
			}
		},
	})
	return true
}

// stepForeignCreate has another client create the key of an O_EXCL file
// before its first commit, which must then fail.
func (w *modelWorld) stepForeignCreate() bool {
	var cands []*modelSession
	for _, s := range w.sessions() {
		if s.exclusive && !s.published && !s.orphaned && !s.failed && !s.hit && !w.hasObject(s.key) && w.unshared(s) {
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		return false
	}
	s := cands[w.rng.IntN(len(cands))]
	data := []byte(fmt.Sprintf("another client, step %d\n", w.step))
	w.fake.SetObject(s.key, data, nil)
	w.setObject(s.key, data)
	w.note(s.file, fmt.Sprintf("another client creates %q (%d bytes) under the O_EXCL %s", s.key, len(data), s))
	return true
}

// ---- what the kernel does ----

// open opens name for writing in p, as create (a name that does not
// exist) or as open (with or without O_TRUNC), and returns the descriptor.
func (w *modelWorld) open(p *modelProc, name string, trunc, excl bool) (int, bool) {
	a, fd := w.openAction(p, name, trunc, excl, false)
	w.do(a)
	return *fd, *fd >= 0
}

// openAction is an open of name in p; the descriptor it makes is in *fd
// once it is applied (-1: none). mayBeBusy accepts EBUSY: the open races
// with the release of the file's session.
func (w *modelWorld) openAction(p *modelProc, name string, trunc, excl, mayBeBusy bool) (*modelAction, *int) {
	mf := w.names[name]
	obj, exists := w.objects[name]
	create := mf == nil && !exists
	if mf == nil {
		mf = w.newFile(name)
	}
	mode := core.OpenMode{Create: create, Truncate: trunc || create, Exclusive: excl && create}
	// The filesystem answers from what its node knows, which the Committed
	// hook keeps current: the fake's content at the time of the call.
	var asked *core.Existing
	var existing func(bool) core.Existing
	if !create {
		existing = func(bool) core.Existing {
			data, _, ok := w.fake.Object(name)
			asked = &core.Existing{Exists: ok, Size: int64(len(data))}
			return *asked
		}
	}
	w.rules.disarm(name)
	flags := "O_WRONLY"
	switch {
	case mode.Create:
		flags += "|O_CREAT|O_TRUNC"
		if mode.Exclusive {
			flags += "|O_EXCL"
		}
	case mode.Truncate:
		flags += "|O_TRUNC"
	}
	var h *core.Handle
	var err error
	fd := -1
	return &modelAction{
		desc:   fmt.Sprintf("%s open %q %s (object: %s)", p, name, flags, modelDescribe(obj, exists)),
		files:  []*modelFile{mf},
		exec:   func() { h, err = mf.f.OpenWrite(modelCtx, p.pid, name, mode, existing) },
		result: func() string { return modelErr(err) },
		apply: func() {
			// What name holds now, after what ran before this open.
			obj, exists := w.objects[name]
			if err == syscall.EBUSY && mayBeBusy {
				w.stats["open-race-busy"]++
				return
			}
			if asked != nil && (asked.Exists != exists || asked.Size != int64(len(obj))) {
				w.failf([]*modelFile{mf}, "the open asked what %q holds before the release committed: %+v; it holds %s", name, *asked, modelDescribe(obj, exists))
			}
			if !mode.Truncate && exists && len(obj) > 0 {
				if err != syscall.ENOTSUP {
					w.failf([]*modelFile{mf}, "an open without O_TRUNC of a non-empty object answered %v, want ENOTSUP", err)
				}
				if h != nil {
					w.failf([]*modelFile{mf}, "an open that failed returned a handle")
				}
				w.names[name] = mf // the lookup made the node
				return
			}
			if err != nil || h == nil {
				w.failf([]*modelFile{mf}, "open: %v", err)
			}
			w.nextSession++
			s := &modelSession{
				id: w.nextSession, file: mf, h: h, opener: p.pid, refs: 1, key: name, keys: []string{name},
				owesEmpty: create || !exists || len(obj) > 0,
				replacing: exists && !create,
				exclusive: mode.Exclusive,
			}
			mf.sess = s
			w.sessionsEver = append(w.sessionsEver, s)
			w.names[name] = mf
			fd = p.lowestFree()
			p.fds[fd] = s
			mf.log(w.step, fmt.Sprintf("    %s is fd%d of %s", s, fd, p))
		},
	}, &fd
}

// existing answers the core's question of what S3 holds at name, from the model.
func (w *modelWorld) existing(name string) func(bool) core.Existing {
	obj, ok := w.objects[name]
	ex := core.Existing{Exists: ok, Size: int64(len(obj))}
	return func(bool) core.Existing { return ex }
}

func (w *modelWorld) dup(p *modelProc, fd int) int {
	s := p.fds[fd]
	nfd := p.lowestFree()
	p.fds[nfd] = s
	s.refs++
	w.note(s.file, fmt.Sprintf("%s dup fd%d [%s] → fd%d", p, fd, s, nfd))
	return nfd
}

// dup2 makes to refer to from's description, closing to first.
func (w *modelWorld) dup2(p *modelProc, from, to int) {
	s := p.fds[from]
	if from == to {
		return
	}
	if p.fds[to] != nil {
		w.closeFd(p, to)
	}
	p.fds[to] = s
	s.refs++
	w.note(s.file, fmt.Sprintf("%s dup2 fd%d [%s] → fd%d", p, from, s, to))
}

// fork makes a child of p holding copies of all its descriptors.
func (w *modelWorld) fork(p *modelProc) *modelProc {
	c := w.newProc(p.pid == 0)
	var files []*modelFile
	for _, fd := range p.sortedFds() {
		s := p.fds[fd]
		c.fds[fd] = s
		s.refs++
		if !slices.Contains(files, s.file) {
			files = append(files, s.file)
		}
	}
	for _, mf := range files {
		mf.log(w.step, fmt.Sprintf("%s fork → %s", p, c))
	}
	w.noteRecent(fmt.Sprintf("%s fork → %s", p, c))
	return c
}

func (w *modelWorld) closeFd(p *modelProc, fd int) {
	for _, a := range w.closeActions(p, fd) {
		w.do(a)
	}
}

// exit closes all of p's descriptors, in order.
func (w *modelWorld) exit(p *modelProc) {
	w.noteRecent(fmt.Sprintf("%s exits", p))
	for _, fd := range p.sortedFds() {
		w.closeFd(p, fd)
	}
	w.procs = slices.DeleteFunc(w.procs, func(q *modelProc) bool { return q == p })
}

// rename renames src to dst as the filesystem layer does.
func (w *modelWorld) rename(src, dst string) {
	srcF, dstF := w.names[src], w.names[dst]
	w.rules.disarm(src, dst)
	w.noteRecent(fmt.Sprintf("rename %q → %q", src, dst))
	// A writer of the name being replaced is detached first: its later
	// closes must not bring its data back.
	if dstF != nil && dstF.sess != nil {
		w.detach(dstF)
	}
	if srcF != nil {
		s := srcF.sess
		wantHandled := s != nil && !s.failed
		// An upload that reached S3 under src (a full part, or a reopen's
		// server-side copy) cannot move: the rename completes it first, so
		// that a later close never writes src again.
		commitFirst := wantHandled && !s.orphaned && (!s.published || s.growth()) && len(s.data) >= modelPartSize
		var failCopy *modelRule
		if wantHandled && (s.published || commitFirst) && w.rng.IntN(8) == 0 {
			failCopy = &modelRule{kind: modelFail, ops: []string{s3fake.OpCopyObject}, keys: []string{dst}, left: 1,
				expires: w.step, code: "InternalError", status: 500}
			w.rules.add(failCopy)
		}
		var handled bool
		var moved *core.Version
		var err error
		var commits []core.Version
		desc := fmt.Sprintf("rename %q → %q: File.Rename", src, dst)
		if commitFirst {
			desc += " (completes the upload under way first)"
		}
		if failCopy != nil {
			desc += " (its CopyObject fails)"
		}
		var settled bool // the core handled the rename, or it failed
		w.do(&modelAction{
			desc:  desc,
			files: w.filesOf(srcF, dstF),
			exec: func() {
				handled, moved, err = srcF.f.Rename(modelCtx, dst, s3client.CopyOptions{})
				commits = srcF.takeCommits()
			},
			result: func() string { return fmt.Sprintf("handled %v, moved %v, %s", handled, moved, modelErr(err)) },
			apply: func() {
				copyFailed := failCopy != nil && w.rules.remove(failCopy) > 0
				if handled != wantHandled {
					w.failf(w.filesOf(srcF, dstF), "File.Rename handled %v, want %v", handled, wantHandled)
				}
				if !handled {
					if err != nil {
						w.failf(w.filesOf(srcF, dstF), "File.Rename not handled, with an error: %v", err)
					}
					return
				}
				if commitFirst {
					if s.hit || s.exclusive && w.hasObject(s.key) {
						// The completion fails: so does the rename, and the session.
						w.wantErr(s, "a rename whose completion of the upload fails", err, syscall.EIO)
						w.wantCommits(s, "a rename whose completion of the upload fails", commits, 0)
						w.failSession(s)
						settled = true
						return
					}
					w.commit(s, "the rename's completion of the upload under way", nil, commits, false)
				} else {
					w.wantCommits(s, "a rename", commits, 0)
				}
				switch {
				case copyFailed:
					if err == nil {
						w.failf(w.filesOf(srcF, dstF), "File.Rename succeeded although its CopyObject failed")
					}
					settled = true // the rename failed; nothing moved
					return
				case err != nil:
					w.failf(w.filesOf(srcF, dstF), "File.Rename: %v without an injected failure", err)
				}
				old := s.key
				if s.published != (moved != nil) || moved != nil && (moved.Key != dst || moved.Size != int64(s.clean)) {
					w.failf(w.filesOf(srcF, dstF), "File.Rename reported the move of %v; %s published %d bytes (published %v)", moved, s, s.clean, s.published)
				}
				switch {
				case s.published:
					w.setObject(dst, w.objects[old])
					w.deleteObject(old)
				case s.replacing:
					w.deleteObject(old)
					s.owesEmpty = true
				}
				s.key = dst
				s.keys = append(s.keys, dst)
				s.replacing = true
				s.exclusive = false // O_EXCL was about the old name
				w.moveName(srcF, src, dst)
				settled = true
			},
		})
		if settled {
			return
		}
	}
	// Not being written: the filesystem copies and deletes the object.
	obj, ok := w.objects[src]
	if !ok {
		w.note(srcF, fmt.Sprintf("rename %q → %q: no object, ENOENT", src, dst))
		return
	}
	var err error
	w.do(&modelAction{
		desc:  fmt.Sprintf("rename %q → %q: CopyObject and DeleteObject", src, dst),
		files: w.filesOf(srcF, w.names[dst]),
		exec: func() {
			if _, err = w.fake.Copy(modelCtx, src, dst, s3client.CopyOptions{}); err == nil {
				err = w.fake.Delete(modelCtx, src)
			}
		},
		result: func() string { return modelErr(err) },
		apply: func() {
			if err != nil {
				w.failf(w.filesOf(srcF), "moving %q: %v", src, err)
			}
			w.setObject(dst, obj)
			w.deleteObject(src)
			if srcF != nil {
				w.moveName(srcF, src, dst)
			} else if old := w.names[dst]; old != nil {
				old.name = ""
				delete(w.names, dst)
			}
		},
	})
}

// moveName moves mf from the name src to dst, replacing dst's file.
func (w *modelWorld) moveName(mf *modelFile, src, dst string) {
	delete(w.names, src)
	if old := w.names[dst]; old != nil && old != mf {
		old.name = ""
	}
	w.names[dst] = mf
	mf.name = dst
	mf.names = append(mf.names, dst)
}

// unlink removes name as the filesystem layer does: a writer is detached
// first, then the key is deleted.
func (w *modelWorld) unlink(name string) {
	mf := w.names[name]
	w.rules.disarm(name)
	if mf != nil && mf.sess != nil {
		w.detach(mf)
	}
	var err error
	w.do(&modelAction{
		desc:   fmt.Sprintf("unlink %q: DeleteObject", name),
		files:  w.filesOf(mf),
		exec:   func() { err = w.fake.Delete(modelCtx, name) },
		result: func() string { return modelErr(err) },
		apply: func() {
			if err != nil {
				w.failf(w.filesOf(mf), "delete: %v", err)
			}
			w.deleteObject(name)
			if mf != nil && mf.name == name {
				mf.name = ""
				delete(w.names, name)
			}
		},
	})
}

// detach orphans the session of mf, whose name is unlinked or replaced.
func (w *modelWorld) detach(mf *modelFile) {
	s := mf.sess
	var ok bool
	w.do(&modelAction{
		desc:   fmt.Sprintf("detach %q [%s]", mf.name, s),
		files:  []*modelFile{mf},
		exec:   func() { ok = mf.f.Detach(modelCtx) },
		result: func() string { return fmt.Sprint(ok) },
		apply: func() {
			if !ok {
				w.failf([]*modelFile{mf}, "Detach of a file with an open session reported none")
			}
			s.orphaned = true
			s.lost = false
			delete(w.names, mf.name)
			mf.name = ""
		},
	})
}

// ---- the calls into the core, and what the model says of them ----

// modelAction is one call (or a close's flush and release) into the core:
// exec makes it, on any goroutine; apply checks its outcome against the
// model and updates the model, on the test goroutine.
type modelAction struct {
	desc   string
	files  []*modelFile
	exec   func()
	result func() string
	apply  func()
}

func (w *modelWorld) writeAction(p *modelProc, fd int, data []byte) *modelAction {
	s := p.fds[fd]
	off := s.offset
	buf := slices.Clone(data)
	var n int
	var err error
	return &modelAction{
		desc:  fmt.Sprintf("%s write fd%d [%s] off %d len %d", p, fd, s, off, len(data)),
		files: []*modelFile{s.file},
		exec: func() {
			n, err = s.h.Write(modelCtx, off, buf)
			copy(buf, modelScribble())
		},
		result: func() string { return fmt.Sprintf("%d, %s", n, modelErr(err)) },
		apply: func() {
			switch {
			case s.failed:
				if err != syscall.EIO || n != 0 {
					w.failf(w.filesOf(s.file), "a write after a failure: %d, %v; want EIO", n, err)
				}
			case s.orphaned:
				if err != nil || n != len(data) {
					w.failf(w.filesOf(s.file), "a write into an unlinked or replaced file: %d, %v; want %d, nil", n, err, len(data))
				}
				s.offset += int64(n)
			case err == nil:
				if n != len(data) {
					w.failf(w.filesOf(s.file), "a write took %d of %d bytes without an error", n, len(data))
				}
				s.data = append(s.data, data...)
				s.offset += int64(n)
			case err == syscall.EIO && s.hit:
				w.failSession(s)
			case err == syscall.ENOBUFS && n == 0:
				w.stats["ENOBUFS"]++
			default:
				w.failf(w.filesOf(s.file), "write: %d, %v without an injected failure", n, err)
			}
		},
	}
}

func (w *modelWorld) fsyncAction(p *modelProc, fd int) *modelAction {
	s := p.fds[fd]
	var err error
	var commits []core.Version
	return &modelAction{
		desc:  fmt.Sprintf("%s fsync fd%d [%s]", p, fd, s),
		files: []*modelFile{s.file},
		exec: func() {
			err = s.h.Fsync(modelCtx)
			commits = s.file.takeCommits()
		},
		result: func() string { return modelErr(err) },
		apply: func() {
			switch {
			case s.failed:
				w.wantErr(s, "fsync after a failure", err, syscall.EIO)
				w.wantCommits(s, "fsync after a failure", commits, 0)
			case s.orphaned:
				w.wantErr(s, "fsync of an unlinked or replaced file", err, nil)
				w.wantCommits(s, "fsync of an unlinked or replaced file", commits, 0)
			case s.hit:
				w.wantErr(s, "fsync after an injected failure", err, syscall.EIO)
				w.failSession(s)
			case s.dirty():
				w.commit(s, "fsync", err, commits, true)
			default:
				w.wantErr(s, "fsync with nothing to commit", err, nil)
				w.wantCommits(s, "fsync with nothing to commit", commits, 0)
			}
		},
	}
}

// closeActions are one close(): a flush, and the release when it was the
// last descriptor of its description.
func (w *modelWorld) closeActions(p *modelProc, fd int) []*modelAction {
	s := p.fds[fd]
	var err error
	var commits []core.Version
	acts := []*modelAction{{
		desc:  fmt.Sprintf("%s close fd%d [%s]: flush", p, fd, s),
		files: []*modelFile{s.file},
		exec: func() {
			err = s.h.Flush(modelCtx, p.pid)
			commits = s.file.takeCommits()
		},
		result: func() string { return modelErr(err) },
		apply: func() {
			delete(p.fds, fd)
			s.refs--
			w.afterFlush(s, p.pid, err, commits)
		},
	}}
	if s.refs == 1 {
		var released []core.Version
		acts = append(acts, &modelAction{
			desc:  fmt.Sprintf("release [%s]", s),
			files: []*modelFile{s.file},
			exec: func() {
				s.h.Release(modelCtx)
				released = s.file.takeCommits()
			},
			result: func() string { return "" },
			apply:  func() { w.afterRelease(s, released) },
		})
	}
	return acts
}

// afterFlush checks a flush by pid of s.
func (w *modelWorld) afterFlush(s *modelSession, pid uint32, err error, commits []core.Version) {
	switch {
	case s.failed:
		w.wantErr(s, "a flush after a failure", err, syscall.EIO)
		w.wantCommits(s, "a flush after a failure", commits, 0)
	case s.orphaned:
		w.wantErr(s, "a flush of an unlinked or replaced file", err, nil)
		w.wantCommits(s, "a flush of an unlinked or replaced file", commits, 0)
	case s.hit && pid == s.opener:
		w.wantErr(s, "the opener's flush after an injected failure", err, syscall.EIO)
		w.failSession(s)
	case s.hit:
		if err != nil && err != syscall.EIO {
			w.failf(w.filesOf(s.file), "a flush answered %v", err)
		}
		if err != nil {
			w.failSession(s)
		}
	case pid != s.opener:
		w.wantErr(s, "a flush by another process than the opener", err, nil)
		w.wantCommits(s, "a flush by another process than the opener", commits, 0)
	case s.growth():
		// A flush never publishes an empty file (doc.go): fsync or the
		// release does.
		w.commit(s, "the opener's flush", err, commits, true)
	default:
		w.wantErr(s, "the opener's flush with nothing new", err, nil)
		w.wantCommits(s, "the opener's flush with nothing new", commits, 0)
	}
}

// afterRelease checks the release of s: what was not committed is
// committed, unless the session failed or was orphaned.
func (w *modelWorld) afterRelease(s *modelSession, commits []core.Version) {
	switch {
	case s.failed, s.orphaned:
		w.wantCommits(s, "a release after a failure, unlink or replacement", commits, 0)
	case s.hit:
		w.failSession(s)
	case s.dirty():
		w.commit(s, "the release", nil, commits, false)
	default:
		w.wantCommits(s, "a release with nothing to commit", commits, 0)
	}
	s.ended = true
	s.file.sess = nil
	if !s.failed && !s.orphaned {
		// The last close of a session nothing failed: every byte is there.
		got, ok := w.fetch(s.key)
		if !ok || !bytes.Equal(got, s.data) {
			w.failf(w.filesOf(s.file), "released without a failure, %q holds %s; the session wrote %d bytes (%s)",
				s.key, modelDescribe(got, ok), len(s.data), modelDiff(got, s.data))
		}
	}
}

// commit checks a commit of s the model expects (by a flush, an fsync or
// the release; reported says whether the call returns its outcome).
func (w *modelWorld) commit(s *modelSession, what string, err error, commits []core.Version, reported bool) {
	if s.exclusive && w.hasObject(s.key) {
		// O_EXCL, and another client created the key: the commit fails.
		if reported {
			w.wantErr(s, what+" of an O_EXCL file created meanwhile by another client", err, syscall.EIO)
		}
		w.wantCommits(s, what+" of an O_EXCL file created meanwhile by another client", commits, 0)
		w.failSession(s)
		return
	}
	if reported && err != nil {
		w.failf(w.filesOf(s.file), "%s must commit %d bytes to %q: %v", what, len(s.data), s.key, err)
	}
	if len(commits) != 1 || commits[0].Key != s.key || commits[0].Size != int64(len(s.data)) {
		w.failf(w.filesOf(s.file), "%s must report one commit of %d bytes to %q; the Committed hook saw %v", what, len(s.data), s.key, commits)
	}
	w.setObject(s.key, s.data[:len(s.data):len(s.data)])
	s.clean = len(s.data)
	s.published = true
	s.owesEmpty, s.replacing, s.exclusive = false, false, false
}

// failSession records that the core failed s. After a lost answer of its
// commit, the key may hold the bytes of that commit.
func (w *modelWorld) failSession(s *modelSession) {
	if s.lost && !s.orphaned {
		old, ok := w.objects[s.key]
		w.alts[s.key] = []modelAlt{{exists: ok, data: old}, {exists: true, data: s.data[:len(s.data):len(s.data)]}}
	}
	s.lost = false
	s.failed = true
	s.file.log(w.step, fmt.Sprintf("    %s is failed", s))
}

func (w *modelWorld) wantErr(s *modelSession, what string, err, want error) {
	if err != want {
		w.failf(w.filesOf(s.file), "%s answered %v, want %v", what, modelErr(err), modelErr(want))
	}
}

func (w *modelWorld) wantCommits(s *modelSession, what string, commits []core.Version, n int) {
	if len(commits) != n {
		w.failf(w.filesOf(s.file), "%s: the Committed hook saw %v, want %d commits", what, commits, n)
	}
}

// do runs a, checks it and records it in the histories.
func (w *modelWorld) do(a *modelAction) {
	w.call(a.desc, a.exec)
	w.collectHits()
	w.finishAction(a)
}

func (w *modelWorld) finishAction(a *modelAction) {
	line := a.desc
	if r := a.result(); r != "" {
		line += " → " + r
	}
	for _, mf := range a.files {
		mf.log(w.step, line)
		for _, f := range mf.takeFailures() {
			mf.log(w.step, "    the Failed hook: "+f)
		}
	}
	w.noteRecent(line)
	a.apply()
}

// doConcurrently runs chains of actions, each chain on a goroutine of its
// own, with a stat loop beside them; then checks them in order.
func (w *modelWorld) doConcurrently(chains [][]*modelAction) {
	var files []*core.File
	for _, mf := range w.liveFiles() {
		files = append(files, mf.f)
	}
	stop := make(chan struct{})
	slowest := make(chan time.Duration, 1)
	go func() {
		var max time.Duration
		defer func() { slowest <- max }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, f := range files {
				t0 := time.Now()
				f.Writing()
				f.Dirty()
				if d := time.Since(t0); d > max {
					max = d
				}
			}
			runtime.Gosched()
		}
	}()
	var descs []string
	var wg sync.WaitGroup
	for _, chain := range chains {
		for _, a := range chain {
			descs = append(descs, a.desc)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, a := range chain {
				a.exec()
			}
		}()
	}
	w.call("concurrently: "+strings.Join(descs, " | "), wg.Wait)
	close(stop)
	max := <-slowest
	w.collectHits()
	for _, chain := range chains {
		for _, a := range chain {
			w.finishAction(a)
		}
	}
	if max > time.Second {
		w.failf(nil, "File.Writing took %v beside %s", max, strings.Join(descs, " | "))
	}
}

// call runs fn on a goroutine of its own and fails the seed, with every
// goroutine's stack, when it does not return within modelDeadline.
func (w *modelWorld) call(what string, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	timer := time.NewTimer(modelDeadline)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		w.hung(what)
	}
}

func (w *modelWorld) hung(what string) {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	w.failf(nil, "%s did not return within %v\n\ngoroutines:\n%s", what, modelDeadline, buf)
}

// ---- fault injection ----

type modelRuleKind int

const (
	modelFail modelRuleKind = iota // the request fails unapplied
	modelLose                      // the request is applied and its answer lost
	modelGate                      // the request waits for gate
)

// modelRule injects a fault into the next left requests of one of ops on
// one of keys.
type modelRule struct {
	kind    modelRuleKind
	ops     []string
	keys    []string
	sess    *modelSession // the session its hits are charged to; nil: none
	code    string
	status  int
	left    int
	hits    int
	expires int // the last step it stays armed
	gate    chan struct{}
	reached chan struct{} // closed when a request waits at gate
}

type modelHit struct {
	rule    *modelRule
	op, key string
}

type modelDelay struct {
	d     time.Duration
	until int
}

// modelRules is the fake's hook: it runs on the core's and the uploader's
// goroutines.
type modelRules struct {
	mu     sync.Mutex // guards everything below
	rules  []*modelRule
	delays map[string]modelDelay
	hits   []modelHit
}

func (r *modelRules) hook(op, key string) s3fake.Fault {
	r.mu.Lock()
	defer r.mu.Unlock()
	var f s3fake.Fault
	if d, ok := r.delays[op]; ok {
		f.Delay = d.d
	}
	for _, rule := range r.rules {
		if rule.left == 0 || !slices.Contains(rule.ops, op) || !slices.Contains(rule.keys, key) {
			continue
		}
		rule.left--
		rule.hits++
		r.hits = append(r.hits, modelHit{rule: rule, op: op, key: key})
		switch rule.kind {
		case modelFail:
			f.Err = s3fake.APIError(op, key, rule.code, rule.status)
		case modelLose:
			f.LoseAnswer = true
		case modelGate:
			f.Gate = rule.gate
			close(rule.reached)
		}
		break
	}
	return f
}

func (r *modelRules) add(rule *modelRule) {
	r.mu.Lock()
	r.rules = append(r.rules, rule)
	r.mu.Unlock()
}

// remove disarms rule and returns how many requests it hit.
func (r *modelRules) remove(rule *modelRule) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules = slices.DeleteFunc(r.rules, func(x *modelRule) bool { return x == rule })
	return rule.hits
}

// disarm removes the rules on any of keys: a new session on a key must
// not be charged with another's faults.
func (r *modelRules) disarm(keys ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules = slices.DeleteFunc(r.rules, func(x *modelRule) bool {
		return slices.ContainsFunc(x.keys, func(k string) bool { return slices.Contains(keys, k) })
	})
}

// charged says whether a rule charges its hits to s.
func (r *modelRules) charged(s *modelSession) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.rules, func(x *modelRule) bool { return x.sess == s })
}

// prune drops the rules that are spent or expired, or whose session ended,
// failed, was orphaned or moved, and the delays that expired.
func (r *modelRules) prune(step int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules = slices.DeleteFunc(r.rules, func(x *modelRule) bool {
		if x.left == 0 || step > x.expires {
			return true
		}
		s := x.sess
		return s != nil && (s.ended || s.orphaned || s.failed || s.key != x.keys[0])
	})
	for op, d := range r.delays {
		if step > d.until {
			delete(r.delays, op)
		}
	}
}

func (r *modelRules) clear() {
	r.mu.Lock()
	r.rules = nil
	clear(r.delays)
	r.mu.Unlock()
}

// collectHits charges the injected failures since the last call to their sessions.
func (w *modelWorld) collectHits() {
	w.rules.mu.Lock()
	hits := w.rules.hits
	w.rules.hits = nil
	w.rules.mu.Unlock()
	for _, h := range hits {
		s := h.rule.sess
		if s == nil || h.rule.kind == modelGate {
			continue
		}
		s.hit = true
		if h.rule.kind == modelLose {
			s.lost = true
			w.stats["injected-lost-answer"]++
		}
		w.stats["injected"]++
		s.file.log(w.step, fmt.Sprintf("    injected: %s on %q fails (%s)", h.op, h.key, s))
	}
}

// ---- the checks after every step ----

// check compares every open file's stat and the whole bucket with the model.
func (w *modelWorld) check() {
	for _, mf := range w.liveFiles() {
		size, _, ok := mf.f.Writing()
		s := mf.sess
		if ok != (s != nil) {
			w.failf([]*modelFile{mf}, "File.Writing says open %v; the model has session %v", ok, s)
		}
		if s != nil && !s.failed && !s.hit && size != s.offset {
			w.failf([]*modelFile{mf}, "File.Writing says size %d; %s wrote %d", size, s, s.offset)
		}
	}
	keys := w.fake.Keys()
	all := slices.Clone(keys)
	for k := range w.objects {
		all = append(all, k)
	}
	for k := range w.alts {
		all = append(all, k)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	for _, key := range all {
		got, ok := w.fetch(key)
		if alts, amb := w.alts[key]; amb {
			i := slices.IndexFunc(alts, func(a modelAlt) bool { return a.exists == ok && bytes.Equal(a.data, got) })
			if i < 0 {
				w.failf(w.filesAt(key), "%q holds %s, neither what it held nor what the failed commit sent (%s, %s)",
					key, modelDescribe(got, ok), modelDescribe(alts[0].data, alts[0].exists), modelDescribe(alts[1].data, alts[1].exists))
			}
			delete(w.alts, key)
			if alts[i].exists {
				w.setObject(key, alts[i].data)
			} else {
				w.deleteObject(key)
			}
			continue
		}
		want, wantOK := w.objects[key]
		if seen := w.seen[key]; ok && seen.version == w.version[key] && seen.etag != "" {
			continue // checked, and neither side changed since
		}
		if ok != wantOK || !bytes.Equal(got, want) {
			w.failf(w.filesAt(key), "%q holds %s; the model says %s (%s)%s", key, modelDescribe(got, ok), modelDescribe(want, wantOK), modelDiff(got, want), w.renamedAway(key))
		}
		if ok {
			seen := w.seen[key]
			seen.version = w.version[key]
			w.seen[key] = seen
		}
	}
}

// renamedAway names the sessions that were renamed away from key while
// open: a hint for a mismatch at key.
func (w *modelWorld) renamedAway(key string) string {
	var hints []string
	for _, s := range w.sessionsEver {
		if i := slices.Index(s.keys, key); i >= 0 && i < len(s.keys)-1 {
			hints = append(hints, fmt.Sprintf("%s (%d bytes written, now %q, %s)", s, len(s.data), s.key, map[bool]string{true: "released", false: "open"}[s.ended]))
		}
	}
	if len(hints) == 0 {
		return ""
	}
	return "; sessions renamed away from it while open: " + strings.Join(hints, ", ")
}

// fetch returns key's content, fetching it only when its ETag changed.
func (w *modelWorld) fetch(key string) ([]byte, bool) {
	info, err := w.fake.Head(modelCtx, key)
	if errors.Is(err, s3client.ErrNotFound) {
		delete(w.seen, key)
		return nil, false
	}
	if err != nil {
		w.failf(nil, "head %q: %v", key, err)
	}
	seen, ok := w.seen[key]
	if ok && seen.etag == info.ETag {
		return seen.data, true
	}
	data, _, found := w.fake.Object(key)
	if !found {
		return nil, false
	}
	w.seen[key] = modelSeen{etag: info.ETag, data: data, version: -1}
	return data, true
}

func (w *modelWorld) setObject(key string, data []byte) {
	w.objects[key] = data
	w.version[key]++
}

func (w *modelWorld) deleteObject(key string) {
	delete(w.objects, key)
	w.version[key]++
}

func (w *modelWorld) hasObject(key string) bool {
	_, ok := w.objects[key]
	return ok
}

// failf fails the seed with the histories of files and the last steps.
func (w *modelWorld) failf(files []*modelFile, format string, args ...any) {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, step %d (%s): %s\n", w.seed, w.step, w.op, fmt.Sprintf(format, args...))
	fmt.Fprintf(&b, "replay: BUCKETFS_CORE_MODEL_SEED=%d go test -race -count=1 ./core/ -run TestModel\n", w.seed)
	for _, mf := range files {
		if mf == nil {
			continue
		}
		fmt.Fprintf(&b, "\nhistory of file #%d (names %q, now %q):\n", mf.id, mf.names, mf.name)
		for _, line := range mf.hist {
			b.WriteString("  " + line + "\n")
		}
	}
	b.WriteString("\nlast steps:\n")
	for _, line := range w.recent {
		b.WriteString("  " + line + "\n")
	}
	w.t.Fatal(b.String())
}

// ---- bookkeeping ----

func (w *modelWorld) newProc(hidden bool) *modelProc {
	w.nextPid++
	p := &modelProc{id: w.nextPid, pid: w.nextPid, fds: map[int]*modelSession{}}
	if hidden {
		p.pid = 0
	}
	w.procs = append(w.procs, p)
	return p
}

// someProc returns a live process, or a new one.
func (w *modelWorld) someProc() *modelProc {
	if len(w.procs) == 0 || len(w.procs) < modelMaxProcs && w.rng.IntN(3) == 0 {
		return w.newProc(w.rng.IntN(5) == 0)
	}
	return w.procs[w.rng.IntN(len(w.procs))]
}

// someFd returns a random descriptor of a random process, among those ok accepts.
func (w *modelWorld) someFd(ok func(*modelSession) bool) (*modelProc, int, bool) {
	type pick struct {
		p  *modelProc
		fd int
	}
	var picks []pick
	for _, p := range w.procs {
		for _, fd := range p.sortedFds() {
			if ok == nil || ok(p.fds[fd]) {
				picks = append(picks, pick{p, fd})
			}
		}
	}
	if len(picks) == 0 {
		return nil, 0, false
	}
	x := picks[w.rng.IntN(len(picks))]
	return x.p, x.fd, true
}

func (w *modelWorld) newFile(name string) *modelFile {
	mf := &modelFile{id: len(w.files) + 1, name: name, names: []string{name}}
	mf.f = w.core.NewFile(core.Hooks{
		Committed: func(v core.Version) {
			mf.mu.Lock()
			mf.commits = append(mf.commits, v)
			mf.mu.Unlock()
		},
		Failed: func(key string, err error) {
			mf.mu.Lock()
			mf.failures = append(mf.failures, fmt.Sprintf("%s: %v", key, err))
			mf.mu.Unlock()
		},
	})
	w.files = append(w.files, mf)
	return mf
}

// takeCommits returns the commits the Committed hook saw since the last call.
func (mf *modelFile) takeCommits() []core.Version {
	mf.mu.Lock()
	defer mf.mu.Unlock()
	c := mf.commits
	mf.commits = nil
	return c
}

// takeFailures returns what the Failed hook saw since the last call.
func (mf *modelFile) takeFailures() []string {
	mf.mu.Lock()
	defer mf.mu.Unlock()
	f := mf.failures
	mf.failures = nil
	return f
}

func (mf *modelFile) log(step int, line string) {
	mf.hist = append(mf.hist, fmt.Sprintf("step %d: %s", step, line))
}

func (w *modelWorld) note(mf *modelFile, line string) {
	if mf != nil {
		mf.log(w.step, line)
	}
	w.noteRecent(line)
}

func (w *modelWorld) noteRecent(line string) {
	w.recent = append(w.recent, fmt.Sprintf("step %d (%s): %s", w.step, w.op, line))
	if len(w.recent) > 40 {
		w.recent = w.recent[len(w.recent)-40:]
	}
}

// sessions returns the open sessions, oldest first.
func (w *modelWorld) sessions() []*modelSession {
	var out []*modelSession
	for _, mf := range w.files {
		if mf.sess != nil {
			out = append(out, mf.sess)
		}
	}
	return out
}

func (w *modelWorld) openCount() int { return len(w.sessions()) }

// liveFiles returns the files that have a name or an open session.
func (w *modelWorld) liveFiles() []*modelFile {
	var out []*modelFile
	for _, mf := range w.files {
		if mf.name != "" || mf.sess != nil {
			out = append(out, mf)
		}
	}
	return out
}

// unshared says whether no other open session ever had one of s's keys,
// so that a fault on them is charged to s alone.
func (w *modelWorld) unshared(s *modelSession) bool {
	for _, o := range w.sessions() {
		if o != s && slices.ContainsFunc(o.keys, func(k string) bool { return slices.Contains(s.keys, k) }) {
			return false
		}
	}
	return true
}

func (w *modelWorld) sortedNames() []string {
	names := make([]string, 0, len(w.names))
	for n := range w.names {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// allNames returns the names of files and objects.
func (w *modelWorld) allNames() []string {
	names := w.sortedNames()
	for k := range w.objects {
		names = append(names, k)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// writableName returns a name no session writes: an existing one or a new one.
func (w *modelWorld) writableName() (string, bool) {
	var cands []string
	for i := range 6 {
		cands = append(cands, fmt.Sprintf("f%d", i))
	}
	cands = append(cands, w.allNames()...)
	slices.Sort(cands)
	cands = slices.Compact(cands)
	cands = slices.DeleteFunc(cands, func(n string) bool { mf := w.names[n]; return mf != nil && mf.sess != nil })
	if len(cands) == 0 {
		return "", false
	}
	return cands[w.rng.IntN(len(cands))], true
}

// renameTarget returns a fresh name, or another existing one.
func (w *modelWorld) renameTarget(src string) string {
	others := slices.DeleteFunc(w.allNames(), func(n string) bool { return n == src })
	if len(others) == 0 || w.rng.IntN(5) < 2 {
		w.nextName++
		return fmt.Sprintf("r%d", w.nextName)
	}
	return others[w.rng.IntN(len(others))]
}

// filesAt returns the files that ever had key as a name.
func (w *modelWorld) filesAt(key string) []*modelFile {
	var out []*modelFile
	for _, mf := range w.files {
		if slices.Contains(mf.names, key) {
			out = append(out, mf)
		}
	}
	return out
}

func (w *modelWorld) filesOf(files ...*modelFile) []*modelFile {
	return slices.DeleteFunc(files, func(mf *modelFile) bool { return mf == nil })
}

// writeSize returns the length of a write: mostly small, sometimes
// megabytes, so that parts, multipart uploads and server-side copies happen.
func (w *modelWorld) writeSize(s *modelSession) int {
	var n int
	switch r := w.rng.IntN(100); {
	case r < 50:
		n = 1 + w.rng.IntN(4096)
	case r < 75:
		n = 4096 + w.rng.IntN(512<<10)
	default:
		n = 1<<20 + w.rng.IntN(6<<20)
	}
	if s.offset+int64(n) > modelMaxSize {
		n = 1 + w.rng.IntN(64)
	}
	return n
}

// content returns n bytes of the pool at a random offset.
func (w *modelWorld) content(n int) []byte {
	pool := modelPool()
	o := w.rng.IntN(len(pool) - n + 1)
	return pool[o : o+n : o+n]
}

func modelErr(err error) string {
	if err == nil {
		return "ok"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Sprintf("%v (%s)", errno, modelErrnoName(errno))
	}
	return err.Error()
}

func modelErrnoName(e syscall.Errno) string {
	switch e {
	case syscall.EIO:
		return "EIO"
	case syscall.EBUSY:
		return "EBUSY"
	case syscall.ENOTSUP:
		return "ENOTSUP"
	case syscall.ENOBUFS:
		return "ENOBUFS"
	case syscall.EINTR:
		return "EINTR"
	}
	return strconv.Itoa(int(e))
}

// modelDescribe says what a key holds, briefly.
func modelDescribe(data []byte, ok bool) string {
	switch {
	case !ok:
		return "no object"
	case len(data) <= 16:
		return fmt.Sprintf("%d bytes %q", len(data), data)
	}
	return fmt.Sprintf("%d bytes", len(data))
}

// modelDiff says where got and want part.
func modelDiff(got, want []byte) string {
	n := min(len(got), len(want))
	i := 0
	for i < n && got[i] == want[i] {
		i++
	}
	switch {
	case bytes.Equal(got, want):
		return "equal"
	case i == n && len(got) < len(want):
		return fmt.Sprintf("a prefix: %d bytes missing at the end", len(want)-len(got))
	case i == n:
		return fmt.Sprintf("%d extra bytes at the end", len(got)-len(want))
	}
	return fmt.Sprintf("first difference at byte %d", i)
}
