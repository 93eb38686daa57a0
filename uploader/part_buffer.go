package uploader

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// partBuffer holds one part's bytes until its upload succeeded, so that a
// retry can send them again. A part that fits the memory budget is a list
// of pooled chunks; a larger one is staged in a spill file.
type partBuffer struct {
	number   int32
	capacity int64 // the part's size from the schedule
	size     int64 // bytes written so far
	reserved int64 // bytes of the memory budget this part holds
	chunks   [][]byte
	spill    *os.File
	limiter  *memoryLimiter
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
		off := int(b.size % chunkSize)
		if off == 0 && int64(len(b.chunks))*chunkSize == b.size {
			b.chunks = append(b.chunks, b.limiter.chunk())
		}
		n := copy(b.chunks[len(b.chunks)-1][off:], p[written:])
		written += n
		b.size += int64(n)
	}
	return written, nil
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
	}
	if b.chunks != nil {
		b.limiter.putChunks(b.chunks)
		b.chunks = nil
	}
	if b.reserved > 0 {
		b.limiter.release(b.reserved)
		b.reserved = 0
	}
}

// chunkReader reads a part's chunks in order without copying them into one
// slice; it seeks so the SDK can checksum, sign and retry the body.
type chunkReader struct {
	chunks [][]byte
	size   int64
	pos    int64
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.pos < r.size {
		c := r.chunks[r.pos/chunkSize]
		off := r.pos % chunkSize
		end := int64(chunkSize)
		if rest := r.size - (r.pos - off); rest < end {
			end = rest
		}
		m := copy(p[n:], c[off:end])
		n += m
		r.pos += int64(m)
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
	r.pos = abs
	return abs, nil
}
