package uploader

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// partBuffer holds one part's bytes until its upload succeeded, so that a
// retry can send them again. A part that fits the memory budget is a list
// of chunks that grows with the bytes written (memory_limiter.go); a larger
// one is staged in a spill file.
//
// A partBuffer is owned by one goroutine at a time: the writer while it
// fills, then the goroutine that uploads it.
type partBuffer struct {
	number   int32
	capacity int64 // the part's size from the schedule
	size     int64 // bytes written so far
	// reserved is the memory budget this part holds: the sum of its chunks'
	// lengths. The writer reserves it (growth tells how much) before a
	// write takes new chunks.
	reserved   int64
	firstChunk int64 // size of the first chunk (0: chunkSize)
	chunks     [][]byte
	onDisk     bool       // the part is staged in spill, not in chunks
	spill      *os.File   // opened before the first byte when onDisk
	bound      SpillBound // charged capacity bytes for spill; nil: none
	limiter    *memoryLimiter
}

// growth returns the bytes of new chunks the part needs to hold n more
// bytes (n at most the room left): what a write of n must reserve first.
func (b *partBuffer) growth(n int64) int64 {
	if b.onDisk {
		return 0
	}
	want := min(b.size+n, b.capacity)
	alloc, last, need := b.reserved, b.lastChunk(), int64(0)
	for alloc < want {
		s := chunkLen(b.firstChunk, last, b.capacity-alloc)
		need += s
		alloc += s
		last = s
	}
	return need
}

func (b *partBuffer) lastChunk() int64 {
	if k := len(b.chunks); k > 0 {
		return int64(len(b.chunks[k-1]))
	}
	return 0
}

// space returns the unwritten tail of the last chunk, taking a new chunk
// when the last one is full. The caller reserved the memory (growth).
func (b *partBuffer) space() []byte {
	if k := len(b.chunks); k > 0 {
		last := b.chunks[k-1]
		if off := b.size - (b.reserved - int64(len(last))); off < int64(len(last)) {
			return last[off:]
		}
	}
	s := chunkLen(b.firstChunk, b.lastChunk(), b.capacity-b.reserved)
	c := b.limiter.chunk(s)
	if b.chunks == nil {
		// Room for every chunk a part of up to 64 MiB can take, growing
		// ones included: one allocation per part.
		b.chunks = make([][]byte, 0, min(b.capacity/chunkSize+chunkClasses+1, 64+chunkClasses+1))
	}
	b.chunks = append(b.chunks, c)
	b.reserved += s
	return c
}

// write appends as much of p as fits and returns how much it took.
func (b *partBuffer) write(p []byte) (int, error) {
	if room := b.capacity - b.size; int64(len(p)) > room {
		p = p[:room]
	}
	if b.spill != nil {
		n, err := b.spill.Write(p)
		b.size += int64(n)
		if err != nil {
			return n, fmt.Errorf("staging part %d in %s: %w", b.number, b.spill.Name(), err)
		}
		return n, nil
	}
	written := 0
	for written < len(p) {
		n := copy(b.space(), p[written:])
		written += n
		b.size += int64(n)
	}
	return written, nil
}

// readFrom appends exactly n bytes read from r (n at most the room left).
func (b *partBuffer) readFrom(r io.Reader, n int64) error {
	if b.spill != nil {
		m, err := io.CopyN(b.spill, r, n)
		b.size += m
		if err != nil {
			return fmt.Errorf("staging part %d in %s: %w", b.number, b.spill.Name(), err)
		}
		return nil
	}
	for n > 0 {
		dst := b.space()
		dst = dst[:min(int64(len(dst)), n)]
		m, err := io.ReadFull(r, dst)
		b.size += int64(m)
		n -= int64(m)
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *partBuffer) full() bool { return b.size == b.capacity }

// reader returns a fresh seekable reader over the part's bytes.
func (b *partBuffer) reader() io.ReadSeeker {
	if b.spill != nil {
		return io.NewSectionReader(b.spill, 0, b.size)
	}
	return &chunkReader{chunks: b.chunks, size: b.size}
}

// release gives the part's memory and spill file back.
func (b *partBuffer) release() {
	if b.spill != nil {
		name := b.spill.Name()
		b.spill.Close()
		os.Remove(name)
		b.spill = nil
		if b.bound != nil {
			b.bound.Release(b.capacity)
			b.bound = nil
		}
	}
	if b.reserved > 0 || b.chunks != nil {
		b.limiter.release(b.reserved, b.chunks)
		b.reserved = 0
		b.chunks = nil
	}
}

// chunkReader reads a part's chunks in order without copying them into one
// slice; it seeks so the SDK can checksum, sign and retry the body.
type chunkReader struct {
	chunks [][]byte
	size   int64
	pos    int64
	idx    int   // the chunk holding pos
	off    int64 // pos's offset in chunks[idx]
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.pos < r.size {
		c := r.chunks[r.idx]
		end := min(int64(len(c)), r.off+r.size-r.pos)
		m := copy(p[n:], c[r.off:end])
		n += m
		r.pos += int64(m)
		r.off += int64(m)
		if r.off == int64(len(c)) {
			r.idx++
			r.off = 0
		}
	}
	return n, nil
}

func (r *chunkReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("chunkReader: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("chunkReader: negative position")
	}
	r.pos, r.idx, r.off = abs, len(r.chunks), 0
	start := int64(0)
	for i, c := range r.chunks {
		if abs < start+int64(len(c)) {
			r.idx, r.off = i, abs-start
			break
		}
		start += int64(len(c))
	}
	return abs, nil
}
