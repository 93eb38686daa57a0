package uploader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
)

// TestChunksGrowWithTheData: a first part takes 4 KiB, then chunks that
// double up to 1 MiB; every write reserves exactly what its new chunks
// take (growth), a full part holds exactly its size, and its reader gives
// back the bytes written from any position.
func TestChunksGrowWithTheData(t *testing.T) {
	l := newMemoryLimiter(64 << 20)
	const capacity = 8<<20 + 12345 // a part size that is no multiple of a chunk
	b := &partBuffer{number: 1, capacity: capacity, firstChunk: firstChunkSize, limiter: l}
	data := randomData(20, capacity)
	r := rand.New(rand.NewPCG(1, 2))
	for off := 0; off < capacity; {
		n := min(capacity-off, 1+r.IntN(300<<10))
		if off == 0 {
			n = 1
		}
		need := b.growth(int64(n))
		if err := l.reserve(context.Background(), need, time.Second); err != nil {
			t.Fatal(err)
		}
		before := b.reserved
		if m, err := b.write(data[off : off+n]); err != nil || m != n {
			t.Fatalf("write %d at %d: %d, %v", n, off, m, err)
		}
		if got := b.reserved - before; got != need {
			t.Fatalf("write %d at %d took %d bytes of chunks, growth said %d", n, off, got, need)
		}
		if off == 0 && b.reserved != firstChunkSize {
			t.Fatalf("a 1-byte part holds %d bytes, want one %d-byte chunk", b.reserved, firstChunkSize)
		}
		off += n
	}
	if !b.full() || b.reserved != capacity || l.reserved() != capacity {
		t.Fatalf("full part: size %d, reserved %d (limiter %d), want %d", b.size, b.reserved, l.reserved(), capacity)
	}
	var sizes []int
	for _, c := range b.chunks {
		sizes = append(sizes, len(c)>>10)
	}
	want := []int{4, 8, 16, 32, 64, 128, 256, 512, 1024}
	for i, s := range want {
		if sizes[i] != s {
			t.Fatalf("chunk sizes (KiB) %v, want them to start %v", sizes, want)
		}
	}
	rd := b.reader()
	for i := 0; i < 200; i++ {
		pos := r.Int64N(capacity + 10)
		if _, err := rd.Seek(pos, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1+r.IntN(3<<20))
		n, err := io.ReadFull(rd, buf)
		end := min(pos+int64(len(buf)), capacity)
		if pos >= capacity {
			if n != 0 || err != io.EOF {
				t.Fatalf("read past the end at %d: %d, %v", pos, n, err)
			}
			continue
		}
		if !bytes.Equal(buf[:n], data[pos:end]) {
			t.Fatalf("read of %d at %d: wrong bytes", len(buf), pos)
		}
	}
	if _, err := rd.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if all, err := io.ReadAll(rd); err != nil || !bytes.Equal(all, data) {
		t.Fatalf("reading the whole part: %d bytes, %v", len(all), err)
	}
	b.release()
	if l.reserved() != 0 {
		t.Fatalf("%d bytes reserved after release", l.reserved())
	}
}

// TestPooledChunksStayWithinBudget: chunks are pooled by size, and a new
// chunk drops pooled ones first, so reserved plus pooled bytes never
// exceed the budget.
func TestPooledChunksStayWithinBudget(t *testing.T) {
	const limit = 4 << 20
	l := newMemoryLimiter(limit)
	check := func(when string) {
		t.Helper()
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.used+l.pooled > limit {
			t.Fatalf("%s: %d reserved + %d pooled > budget %d", when, l.used, l.pooled, limit)
		}
	}
	// Fill the pool with small chunks...
	var small [][]byte
	for i := 0; i < 4<<20/(64<<10); i++ {
		small = append(small, l.chunk(64<<10))
	}
	if err := l.reserve(context.Background(), limit, time.Second); err != nil {
		t.Fatal(err)
	}
	l.release(limit, small)
	check("after pooling small chunks")
	if c := l.chunk(64 << 10); len(c) != 64<<10 || l.pooled != limit-64<<10 {
		t.Fatalf("a 64 KiB chunk was not reused: pooled %d", l.pooled)
	}
	// ...then take the whole budget in 1 MiB chunks: they push the small ones out.
	if err := l.reserve(context.Background(), limit, time.Second); err != nil {
		t.Fatal(err)
	}
	var big [][]byte
	for i := 0; i < 4; i++ {
		big = append(big, l.chunk(chunkSize))
		check(fmt.Sprintf("after big chunk %d", i))
	}
	l.release(limit, big)
	check("after pooling big chunks")
	if l.used != 0 || len(l.free[chunkClasses-1]) != 4 {
		t.Fatalf("used %d, %d big chunks pooled", l.used, len(l.free[chunkClasses-1]))
	}
}

// TestMemoryWaitRestartsOnRelease: the wait for memory gives up only when
// no memory was released for the whole patience, however long it waits in
// total; with no release at all it answers ErrNoMemory.
func TestMemoryWaitRestartsOnRelease(t *testing.T) {
	l := newMemoryLimiter(100)
	if err := l.reserve(context.Background(), 100, time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := l.reserve(context.Background(), 10, 100*time.Millisecond); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("reserve with nothing released: %v, want ErrNoMemory", err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Fatalf("gave up after %v, before the patience of 100ms", waited)
	}
	// One byte every 40ms: 10 bytes take 400ms, four times the patience.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; i < 10; i++ {
			select {
			case <-time.After(40 * time.Millisecond):
				l.release(1, nil)
			case <-stop:
				return
			}
		}
	}()
	start = time.Now()
	if err := l.reserve(context.Background(), 10, 150*time.Millisecond); err != nil {
		t.Fatalf("reserve behind steady releases: %v", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("reserved after %v; the releases take 400ms", waited)
	}
}

// TestThousandOneByteUploads: 1,000 files open at once with one byte each
// hold one small chunk each, fit the default budget, and complete; the
// budget is back to zero after.
func TestThousandOneByteUploads(t *testing.T) {
	c := newFakeClient()
	u := newUploader(t, c, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ups := make([]*Upload, 1000)
	for i := range ups {
		ups[i] = u.Start(fmt.Sprintf("tiny/%d", i), s3client.PutOptions{})
		if n, err := ups[i].Write(ctx, []byte{byte(i)}); n != 1 || err != nil {
			t.Fatalf("upload %d: write: %d, %v", i, n, err)
		}
	}
	if r := u.memory.reserved(); r != 1000*firstChunkSize {
		t.Fatalf("1,000 one-byte files reserve %d bytes, want %d (one %d-byte chunk each)", r, 1000*firstChunkSize, firstChunkSize)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(ups))
	for i, up := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := up.Complete(ctx); err != nil || res.Size != 1 || res.Multipart {
				errs <- fmt.Errorf("upload %d: complete: %+v, %v", i, res, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range ups {
		if b, ok := c.object(fmt.Sprintf("tiny/%d", i)); !ok || !bytes.Equal(b, []byte{byte(i)}) {
			t.Fatalf("object tiny/%d: %q, %v", i, b, ok)
		}
	}
	if n := c.Count("PutObject"); n != 1000 {
		t.Fatalf("%d PutObject requests, want 1,000", n)
	}
	if r := u.memory.reserved(); r != 0 {
		t.Fatalf("%d bytes still reserved", r)
	}
}

// halfFilled starts n uploads under prefix on u and writes size bytes to
// each: with a part size of 5 MiB and 4.5 MiB each, every upload holds a
// half-filled part that is not sent.
func halfFilled(t *testing.T, u *Uploader, prefix string, n, size int) ([]*Upload, [][]byte) {
	t.Helper()
	ups := make([]*Upload, n)
	data := make([][]byte, n)
	for i := range ups {
		ups[i] = u.Start(fmt.Sprintf("%s/%d", prefix, i), s3client.PutOptions{})
		data[i] = randomData(uint64(40+i), size)
		writeAll(t, ups[i], data[i], 1<<20)
	}
	return ups, data
}

// memoryTestConfig is a budget of four 5 MiB parts: four uploads holding
// 4.5 MiB each leave less than any new chunk run needs.
func memoryTestConfig(wait time.Duration) Config {
	return Config{PartSize: MinPartSize, MemoryLimit: 4 * MinPartSize, MemoryWait: wait, Concurrency: 4}
}

// TestNoMemoryWhenWritersWaitForEachOther: writers that hold half-filled
// parts and need more memory than is left wait for each other; after
// MemoryWait without a release a write answers ErrNoMemory having taken no
// byte (a write that crosses into a new part included), an interrupted
// wait answers the context's error having taken no byte, and once memory
// is released the same writes at the same offsets succeed and the objects
// are exactly what was written.
func TestNoMemoryWhenWritersWaitForEachOther(t *testing.T) {
	c := newFakeClient()
	u := newUploader(t, c, memoryTestConfig(200*time.Millisecond))
	ups, data := halfFilled(t, u, "held", 4, MinPartSize-512<<10)
	free := u.memory.limit - u.memory.reserved()
	extra := randomData(50, 64<<10)
	late := u.Start("late", s3client.PutOptions{})
	if need := (&partBuffer{capacity: MinPartSize, firstChunk: firstChunkSize}).growth(int64(len(extra))); need <= free {
		t.Fatalf("test setup: %d bytes free, a 64 KiB first write needs %d: it would not wait", free, need)
	}

	start := time.Now()
	n, err := late.Write(context.Background(), extra)
	if !errors.Is(err, ErrNoMemory) || n != 0 || late.Size() != 0 {
		t.Fatalf("write with the budget held by waiting writers: %d, %v (size %d); want 0, ErrNoMemory", n, err, late.Size())
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("ErrNoMemory after %v, before MemoryWait", waited)
	}
	// A write that would finish ups[0]'s part and start the next one: it
	// fits the current part's room, but not the next part's memory.
	cross := randomData(51, 1<<20)
	if n, err := ups[0].Write(context.Background(), cross); !errors.Is(err, ErrNoMemory) || n != 0 || ups[0].Size() != int64(len(data[0])) {
		t.Fatalf("write across a part boundary: %d, %v (size %d); want 0, ErrNoMemory and nothing taken", n, err, ups[0].Size())
	}
	if late.Err() != nil || ups[0].Err() != nil {
		t.Fatalf("ErrNoMemory failed the uploads: %v, %v", late.Err(), ups[0].Err())
	}

	// An interrupted wait (FUSE interrupt): the context's error, nothing taken.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if n, err := late.Write(ctx, extra); !errors.Is(err, context.Canceled) || n != 0 || late.Size() != 0 {
		t.Fatalf("interrupted write: %d, %v (size %d); want 0, context.Canceled", n, err, late.Size())
	}

	// Another upload completes; the retries at the same offsets succeed.
	if _, err := ups[1].Complete(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, err := late.Write(context.Background(), extra); n != len(extra) || err != nil {
		t.Fatalf("retried write: %d, %v", n, err)
	}
	if n, err := ups[0].Write(context.Background(), cross); n != len(cross) || err != nil {
		t.Fatalf("retried write across a part boundary: %d, %v", n, err)
	}
	data[0] = append(data[0], cross...)
	for i, up := range append(ups, late) {
		if i == 1 {
			continue
		}
		if _, err := up.Complete(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range append(data, extra) {
		key := fmt.Sprintf("held/%d", i)
		if i == len(data) {
			key = "late"
		}
		if got, _ := c.object(key); !bytes.Equal(got, want) {
			t.Fatalf("object %s: %d bytes, want %d", key, len(got), len(want))
		}
	}
	if r := u.memory.reserved(); r != 0 {
		t.Fatalf("%d bytes still reserved", r)
	}
}

// TestWaitingWriterResumes: a writer waiting for memory resumes as soon as
// another upload completes and releases its part.
func TestWaitingWriterResumes(t *testing.T) {
	c := newFakeClient()
	u := newUploader(t, c, memoryTestConfig(time.Minute))
	ups, _ := halfFilled(t, u, "held", 4, MinPartSize-512<<10)
	late := u.Start("late", s3client.PutOptions{})
	extra := randomData(52, 64<<10)
	type result struct {
		n   int
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		n, err := late.Write(context.Background(), extra)
		done <- result{n, err, time.Now()}
	}()
	select {
	case r := <-done:
		t.Fatalf("the write did not wait for memory: %d, %v", r.n, r.err)
	case <-time.After(150 * time.Millisecond):
	}
	completed := time.Now()
	if _, err := ups[2].Complete(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.n != len(extra) || r.err != nil {
			t.Fatalf("resumed write: %d, %v", r.n, r.err)
		}
		if r.at.Before(completed) {
			t.Fatal("the write finished before any memory was released")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting writer did not resume after an upload completed")
	}
	for i, up := range append(ups, late) {
		if i != 2 {
			if err := up.Abort(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r := u.memory.reserved(); r != 0 {
		t.Fatalf("%d bytes still reserved", r)
	}
}

// slowPartClient uploads one part at a time, each taking delay: uploads
// progress, slowly, and release their memory one part at a time.
type slowPartClient struct {
	*fakeClient
	delay time.Duration
	one   sync.Mutex // held by the UploadPart in progress
}

func (c *slowPartClient) UploadPart(ctx context.Context, key, uploadID string, number int32, body io.ReadSeeker, size int64) (s3client.CompletedPart, error) {
	c.one.Lock()
	defer c.one.Unlock()
	time.Sleep(c.delay)
	return c.fakeClient.UploadPart(ctx, key, uploadID, number, body, size)
}

// TestSlowUploadsNeverRunOutOfPatience: a writer that waits for memory
// behind slow part uploads, far longer in total than MemoryWait, never gets
// ErrNoMemory: every finished part restarts the wait.
func TestSlowUploadsNeverRunOutOfPatience(t *testing.T) {
	// Each part takes 500ms, one at a time; the writer, 4 parts ahead,
	// waits about 2s in all for memory, longer than its 1.2s patience,
	// while every wait between two releases is far shorter than it (the
	// margin absorbs a loaded machine's slowness under -race).
	c := &slowPartClient{fakeClient: newFakeClient(), delay: 500 * time.Millisecond}
	u := newUploader(t, c, Config{PartSize: MinPartSize, MemoryLimit: 4 * MinPartSize, MemoryWait: 1200 * time.Millisecond, Concurrency: 4})
	data := randomData(53, 8*MinPartSize)
	up := u.Start("slow", s3client.PutOptions{})
	start := time.Now()
	writeAll(t, up, data, 1<<20)
	if _, err := up.Complete(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 4*500*time.Millisecond {
		t.Fatalf("8 parts at 500ms each, 4 at a time in memory, took only %v: the writer never waited", took)
	}
	if got, _ := c.object("slow"); !bytes.Equal(got, data) {
		t.Fatalf("object: %d bytes, want %d", len(got), len(data))
	}
}

// TestOnePartBudget: with a budget of one part (the smallest New allows),
// the first part is held in memory and the later ones are staged on disk,
// so a lone writer crossing part boundaries with unaligned writes never
// waits for memory only its own full part holds; writers holding
// half-filled first parts exhaust it, and the next one gets ErrNoMemory
// (or the context's error), taking nothing, until one of them completes.
func TestOnePartBudget(t *testing.T) {
	c := newFakeClient()
	u := newUploader(t, c, Config{PartSize: MinPartSize, MemoryLimit: MinPartSize, MemoryWait: 200 * time.Millisecond, SpillDir: t.TempDir()})
	ctx := context.Background()

	lone := u.Start("lone", s3client.PutOptions{})
	data := randomData(54, 3*MinPartSize+12345)
	writeAll(t, lone, data, 1536<<10) // 1.5 MiB writes: every part boundary falls inside one
	if _, err := lone.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.object("lone"); !bytes.Equal(got, data) {
		t.Fatalf("object: %d bytes, want %d", len(got), len(data))
	}

	ups, held := halfFilled(t, u, "held", 2, 1536<<10)
	late := u.Start("late", s3client.PutOptions{})
	extra := randomData(55, 1<<20)
	if n, err := late.Write(ctx, extra); !errors.Is(err, ErrNoMemory) || n != 0 || late.Size() != 0 {
		t.Fatalf("write with the budget held: %d, %v (size %d); want 0, ErrNoMemory", n, err, late.Size())
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if n, err := late.Write(cctx, extra); !errors.Is(err, context.Canceled) || n != 0 || late.Size() != 0 {
		t.Fatalf("interrupted write: %d, %v (size %d); want 0, context.Canceled", n, err, late.Size())
	}
	if _, err := ups[0].Complete(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := late.Write(ctx, extra); n != len(extra) || err != nil {
		t.Fatalf("retried write: %d, %v", n, err)
	}
	for _, up := range []*Upload{ups[1], late} {
		if _, err := up.Complete(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for key, want := range map[string][]byte{"held/0": held[0], "held/1": held[1], "late": extra} {
		if got, _ := c.object(key); !bytes.Equal(got, want) {
			t.Fatalf("object %s: %d bytes, want %d", key, len(got), len(want))
		}
	}
	if r := u.memory.reserved(); r != 0 {
		t.Fatalf("%d bytes still reserved", r)
	}
}
