package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Base is the object a stage file starts from: its bytes are fetched from
// S3 (conditioned on ETag) where the file holds none of its own.
type Base struct {
	Key  string
	ETag string
	Size int64
}

// Fetcher reads n bytes of base at off (a ranged GET with If-Match base.ETag).
type Fetcher func(ctx context.Context, base Base, off, n int64) (io.ReadCloser, error)

// FetchBlock is the unit a read fetches from the base: a read of a few
// bytes costs one GET of the aligned block around them, and the next reads
// nearby cost none.
const FetchBlock = 1 << 20

// File is one staged file: a sparse local file holding the ranges that
// were written or fetched; every other byte below baseEnd is the base
// object's, and every byte above it is zero (a hole, from a truncation or a
// write past the end).
//
// A File is driven by its owner (core.File, under its lock), except ReadAt,
// which the parts of a commit call concurrently.
type File struct {
	d     *Dir
	f     *os.File
	fetch Fetcher

	mu      sync.Mutex // guards the fields below; taken after the owner's lock; never held across an S3 request
	key     string     // for errors and logs
	size    int64      // the file's size
	base    Base       // where unheld bytes below baseEnd come from
	baseEnd int64      // bytes of base still part of the file: its size, less every truncation below it
	local   ranges     // bytes the file holds (written or fetched); charged to d
	dirty   ranges     // bytes written since the base: the rest below baseEnd is the base's
	changed bool       // written or truncated since the base
	closed  bool
}

// Create stages a file whose content starts as base (zero Base: empty).
func (d *Dir) Create(key string, base Base, fetch Fetcher) (*File, error) {
	f, err := d.newFile(key)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(base.Size); err != nil {
		removeFile(f)
		return nil, fmt.Errorf("staging %q: %w", key, err)
	}
	return &File{d: d, f: f, fetch: fetch, key: key, size: base.Size, base: base, baseEnd: base.Size}, nil
}

// Size is the file's size.
func (s *File) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// Changed says whether the file was written or truncated since its base.
func (s *File) Changed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Held is the bytes the stage file holds (charged to the Dir).
func (s *File) Held() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local.total()
}

// WriteAt writes p at off. It answers ErrNoSpace, writing nothing, when the
// new bytes do not fit the Dir's bound.
func (s *File) WriteAt(p []byte, off int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := off + int64(len(p))
	add := s.local.missing(off, end).total()
	if err := s.d.Charge(add); err != nil {
		return err
	}
	if _, err := s.f.WriteAt(p, off); err != nil {
		s.d.Release(add)
		return fmt.Errorf("staging a write to %q: %w", s.key, err)
	}
	s.local = s.local.add(off, end)
	s.dirty = s.dirty.add(off, end)
	s.size = max(s.size, end)
	s.changed = true
	return nil
}

// Truncate sets the size: bytes past a smaller size are dropped (the base's
// too: they will not come back if the file grows again, it grows with zeros).
func (s *File) Truncate(size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.f.Truncate(size); err != nil {
		return fmt.Errorf("staging a truncation of %q: %w", s.key, err)
	}
	if size < s.size {
		before := s.local.total()
		s.local = s.local.cut(size)
		s.dirty = s.dirty.cut(size)
		s.d.Release(before - s.local.total())
		s.baseEnd = min(s.baseEnd, size)
	}
	if size != s.size {
		s.changed = true
	}
	s.size = size
	return nil
}

// ReadAt reads the file's bytes at off into p, fetching from the base what
// the stage lacks (in FetchBlock units, kept when the bound allows, else
// read through). It returns io.EOF at the end of the file.
func (s *File) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	s.mu.Lock()
	size, baseEnd, base := s.size, s.baseEnd, s.base
	if off >= size {
		s.mu.Unlock()
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), size)
	// The base's bytes the stage lacks, widened to whole blocks.
	var want ranges
	if off < baseEnd {
		from := off / FetchBlock * FetchBlock
		to := min((min(end, baseEnd)+FetchBlock-1)/FetchBlock*FetchBlock, baseEnd)
		want = s.local.missing(from, to)
	}
	s.mu.Unlock()
	var through ranges // fetched but not kept (no room): copied into p below
	var throughData [][]byte
	for _, r := range want {
		data, err := s.fetchRange(ctx, base, r)
		if err != nil {
			return 0, err
		}
		if kept := s.keep(base, r, data); !kept {
			through = append(through, r)
			throughData = append(throughData, data)
		}
	}
	n, err := s.f.ReadAt(p[:end-off], off)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("reading the stage of %q: %w", s.key, err)
	}
	for i := n; int64(i) < end-off; i++ {
		p[i] = 0 // a hole at the end of the local file
	}
	for i, r := range through {
		lo, hi := max(r.Off, off), min(r.End, end)
		if lo < hi {
			copy(p[lo-off:hi-off], throughData[i][lo-r.Off:hi-r.Off])
		}
	}
	if end < off+int64(len(p)) {
		return int(end - off), io.EOF
	}
	return int(end - off), nil
}

// fetchRange reads r of base.
func (s *File) fetchRange(ctx context.Context, base Base, r Range) ([]byte, error) {
	body, err := s.fetch(ctx, base, r.Off, r.Len())
	if err != nil {
		return nil, fmt.Errorf("reading bytes %d-%d of %q: %w", r.Off, r.End-1, base.Key, err)
	}
	defer body.Close()
	data := make([]byte, r.Len())
	if _, err := io.ReadFull(body, data); err != nil {
		return nil, fmt.Errorf("reading bytes %d-%d of %q: %w", r.Off, r.End-1, base.Key, err)
	}
	return data, nil
}

// keep stores fetched bytes of base at r where the stage still lacks them
// and the base is still the file's; false when the bound leaves no room.
func (s *File) keep(base Base, r Range, data []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.base != base || s.closed {
		return false // the base moved meanwhile: the bytes are still right for this read, not for the stage
	}
	gaps := s.local.missing(r.Off, min(r.End, s.baseEnd))
	if err := s.d.Charge(gaps.total()); err != nil {
		return false
	}
	for _, g := range gaps {
		if _, err := s.f.WriteAt(data[g.Off-r.Off:g.End-r.Off], g.Off); err != nil {
			s.d.Release(gaps.total())
			return false
		}
		s.local = s.local.add(g.Off, g.End)
	}
	return true
}

// FetchAll makes the stage hold every byte of the file, so that it no
// longer needs its base (the object is about to be deleted).
func (s *File) FetchAll(ctx context.Context) error {
	s.mu.Lock()
	want, base := s.local.missing(0, s.baseEnd), s.base
	s.mu.Unlock()
	for _, r := range want {
		for off := r.Off; off < r.End; off += FetchBlock {
			piece := Range{off, min(off+FetchBlock, r.End)}
			data, err := s.fetchRange(ctx, base, piece)
			if err != nil {
				return err
			}
			if !s.keep(base, piece, data) {
				return ErrNoSpace
			}
		}
	}
	s.mu.Lock()
	s.baseEnd = 0 // every byte is held: nothing is the base's any more
	s.dirty = s.local
	s.mu.Unlock()
	return nil
}

// Layout describes the file for a commit: its size, its base, and the
// ranges below baseEnd still equal to the base (not written since).
func (s *File) Layout() (size int64, base Base, same []Range) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size, s.base, s.dirty.missing(0, s.baseEnd)
}

// Committed says the file's content is now the object base (a commit
// completed): every byte is the base's, held or not.
func (s *File) Committed(base Base) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base, s.baseEnd = base, s.size
	s.dirty, s.changed = nil, false
}

// Rebase says the base object moved (a rename copied it) without changing.
func (s *File) Rebase(base Base) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base = base
}

// Reader returns the file's bytes as an io.ReaderAt for a commit's parts.
func (s *File) Reader(ctx context.Context) io.ReaderAt { return readerAt{s, ctx} }

type readerAt struct {
	s   *File
	ctx context.Context
}

func (r readerAt) ReadAt(p []byte, off int64) (int, error) { return r.s.ReadAt(r.ctx, p, off) }

// Close removes the stage file and gives its bytes back to the bound.
func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.d.Release(s.local.total())
	s.local = nil
	return removeFile(s.f)
}
