package uploader

import (
	"fmt"
	"io"
)

// Patch overwrites p at off when those bytes are all in the part still
// being filled (the kernel may deliver a program's writes slightly out of
// order), and reports whether it did. Bytes already sent cannot change.
// Like Write, it is called by the goroutine owning the upload.
func (up *Upload) Patch(off int64, p []byte) bool {
	cur := up.cur
	if cur == nil || up.writable() != nil {
		return false
	}
	start := up.Size() - cur.size // where the part begins in the object
	if off < start || off+int64(len(p)) > up.Size() {
		return false
	}
	at := off - start
	if cur.spill != nil {
		_, err := cur.spill.WriteAt(p, at)
		return err == nil
	}
	for _, c := range cur.chunks {
		if len(p) == 0 {
			break
		}
		if at >= int64(len(c)) {
			at -= int64(len(c))
			continue
		}
		n := copy(c[at:], p)
		p, at = p[n:], 0
	}
	return true
}

// Buffered copies the upload's bytes to w (from offset 0) when none has
// left memory yet (no multipart upload exists: the object so far is the
// first part's buffer), and reports whether it did. The upload is then
// left to be aborted by its owner.
func (up *Upload) Buffered(w io.WriterAt) (bool, error) {
	up.mu.Lock()
	started := up.uploadID != "" || up.done || up.err != nil
	up.mu.Unlock()
	if started || up.nextNumber > 2 {
		return false, nil
	}
	if up.cur == nil {
		return up.Size() == 0, nil
	}
	r := up.cur.reader()
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.WriteAt(buf[:n], off); werr != nil {
				return false, fmt.Errorf("copying the buffered bytes of %q: %w", up.Key(), werr)
			}
			off += int64(n)
		}
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}
