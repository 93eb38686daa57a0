package stage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// objects is a fake S3 for fetches: key+ETag to bytes, counting GETs.
type objects struct {
	data map[string][]byte
	gets int
}

func (o *objects) fetch(ctx context.Context, b Base, off, n int64) (io.ReadCloser, error) {
	o.gets++
	d, ok := o.data[b.Key+"@"+b.ETag]
	if !ok {
		return nil, errors.New("precondition failed")
	}
	return io.NopCloser(bytes.NewReader(d[off : off+n])), nil
}

func quietLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func TestRangesMissing(t *testing.T) {
	var rs ranges
	rs = rs.add(10, 20).add(30, 40).add(20, 25)
	if want := (ranges{{10, 25}, {30, 40}}); !equalRanges(rs, want) {
		t.Fatalf("add: %v, want %v", rs, want)
	}
	if got, want := rs.missing(0, 50), (ranges{{0, 10}, {25, 30}, {40, 50}}); !equalRanges(got, want) {
		t.Fatalf("missing: %v, want %v", got, want)
	}
	if got, want := rs.cut(32), (ranges{{10, 25}, {30, 32}}); !equalRanges(got, want) {
		t.Fatalf("cut: %v, want %v", got, want)
	}
}

func equalRanges(a, b ranges) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFileModel drives a stage file with random writes, truncations, reads
// and commits against a byte slice, and checks after every step that reads
// see the model and that the layout's unchanged ranges equal the base.
func TestFileModel(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		d, err := Open(t.TempDir(), 64<<20, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		objs := &objects{data: map[string][]byte{}}
		base := make([]byte, rng.IntN(6<<20))
		for i := range base {
			base[i] = byte(rng.Uint32())
		}
		objs.data["k@e0"] = base
		f, err := d.Create("k", Base{Key: "k", ETag: "e0", Size: int64(len(base))}, objs.fetch)
		if err != nil {
			t.Fatal(err)
		}
		model := append([]byte(nil), base...)
		for step := 0; step < 200; step++ {
			switch op := rng.IntN(10); {
			case op < 4:
				off := rng.Int64N(int64(len(model)) + 1<<20)
				p := make([]byte, 1+rng.IntN(200<<10))
				for i := range p {
					p[i] = byte(rng.Uint32())
				}
				if err := f.WriteAt(p, off); err != nil {
					t.Fatal(err)
				}
				if end := off + int64(len(p)); end > int64(len(model)) {
					model = append(model, make([]byte, end-int64(len(model)))...)
				}
				copy(model[off:], p)
			case op < 6:
				size := rng.Int64N(int64(len(model)) + 2<<20)
				if err := f.Truncate(size); err != nil {
					t.Fatal(err)
				}
				if size < int64(len(model)) {
					model = model[:size]
				} else {
					model = append(model, make([]byte, size-int64(len(model)))...)
				}
			case op < 9:
				off := rng.Int64N(int64(len(model)) + 1)
				p := make([]byte, rng.IntN(3<<20))
				n, err := f.ReadAt(context.Background(), p, off)
				if err != nil && err != io.EOF {
					t.Fatal(err)
				}
				want := model[off:min(int64(len(model)), off+int64(len(p)))]
				if !bytes.Equal(p[:n], want) {
					t.Fatalf("seed %d step %d: read at %d differs", seed, step, off)
				}
			default: // commit: the object becomes the model
				size, b, same := f.Layout()
				if size != int64(len(model)) {
					t.Fatalf("seed %d: layout size %d, model %d", seed, size, len(model))
				}
				old := objs.data[b.Key+"@"+b.ETag]
				for _, r := range same {
					if !bytes.Equal(old[r.Off:r.End], model[r.Off:r.End]) {
						t.Fatalf("seed %d step %d: range %v said unchanged differs from the base", seed, step, r)
					}
				}
				etag := "e" + string(rune('a'+step%26)) + string(rune('0'+step/26))
				objs.data["k@"+etag] = append([]byte(nil), model...)
				f.Committed(Base{Key: "k", ETag: etag, Size: size})
			}
			if f.Size() != int64(len(model)) {
				t.Fatalf("seed %d step %d: size %d, model %d", seed, step, f.Size(), len(model))
			}
			if held := f.Held(); held != d.Used() {
				t.Fatalf("seed %d: held %d, charged %d", seed, held, d.Used())
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if d.Used() != 0 {
			t.Fatalf("after close %d bytes are still charged", d.Used())
		}
		d.Close()
	}
}

func TestWriteBeyondBoundIsENOSPC(t *testing.T) {
	d, err := Open(t.TempDir(), 1<<20, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := d.Create("k", Base{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.WriteAt(bytes.Repeat([]byte{1}, 1<<20), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteAt([]byte{2}, 1<<20); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write past the bound: %v, want ENOSPC", err)
	}
	// Overwriting held bytes costs nothing and still works.
	if err := f.WriteAt([]byte{3}, 5); err != nil {
		t.Fatalf("overwrite within the stage: %v", err)
	}
	p := make([]byte, 8)
	if _, err := f.ReadAt(context.Background(), p, 0); err != nil || p[5] != 3 || p[0] != 1 {
		t.Fatalf("read back %v %v", p, err)
	}
}

func TestReadsFetchOnlyWhatTheyNeed(t *testing.T) {
	d, err := Open(t.TempDir(), 64<<20, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	base := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	objs := &objects{data: map[string][]byte{"k@e": base}}
	f, err := d.Create("k", Base{Key: "k", ETag: "e", Size: int64(len(base))}, objs.fetch)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := make([]byte, 4096)
	for i := 0; i < 10; i++ {
		if _, err := f.ReadAt(context.Background(), p, 3<<20+int64(i)*4096); err != nil {
			t.Fatal(err)
		}
	}
	if objs.gets != 1 || f.Held() != FetchBlock {
		t.Fatalf("10 reads in one block: %d GETs, %d bytes held; want 1 and one block", objs.gets, f.Held())
	}
	// An append fetches nothing.
	if err := f.WriteAt([]byte("tail"), int64(len(base))); err != nil || objs.gets != 1 {
		t.Fatalf("append: %v, %d GETs", err, objs.gets)
	}
}

func TestCrashedMountsStageIsKeptNotReused(t *testing.T) {
	root := t.TempDir()
	// A mount directory with a stage file and no lock holder: a crash.
	dead := filepath.Join(root, "mount-dead")
	os.MkdirAll(dead, 0o700)
	os.WriteFile(filepath.Join(dead, "lock"), nil, 0o600)
	os.WriteFile(filepath.Join(dead, "1.data"), []byte("partial edit"), 0o600)
	os.WriteFile(filepath.Join(dead, "1.key"), []byte("dir/file"), 0o600)
	live, err := Open(root, 1<<20, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// A second mount must leave the live one's directory alone.
	other, err := Open(root, 1<<20, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := os.Stat(live.Path()); err != nil {
		t.Fatalf("a running mount's stage directory was touched: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(root, "lost+found", "mount-dead-1.data"))
	if err != nil || string(got) != "partial edit" {
		t.Fatalf("lost+found: %q %v", got, err)
	}
	key, _ := os.ReadFile(filepath.Join(root, "lost+found", "mount-dead-1.key"))
	if string(key) != "dir/file" {
		t.Fatalf("key sidecar %q", key)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Fatalf("the crashed mount's directory is still there: %v", err)
	}
}

func TestSweepRemovesOnlyOldLeftovers(t *testing.T) {
	root := t.TempDir()
	live, err := Open(root, 1<<20, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	f, err := live.Create("live/key", Base{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lost := filepath.Join(root, "lost+found")
	os.MkdirAll(lost, 0o700)
	os.WriteFile(filepath.Join(lost, "old.data"), []byte("old edit"), 0o600)
	os.WriteFile(filepath.Join(lost, "old.key"), []byte("a/old"), 0o600)
	os.WriteFile(filepath.Join(lost, "new.data"), []byte("new edit"), 0o600)
	os.WriteFile(filepath.Join(lost, "new.key"), []byte("a/new"), 0o600)
	past := time.Now().Add(-48 * time.Hour)
	os.Chtimes(filepath.Join(lost, "old.data"), past, past)
	dead := filepath.Join(root, "mount-dead")
	os.MkdirAll(dead, 0o700)
	os.WriteFile(filepath.Join(dead, "lock"), nil, 0o600)
	os.WriteFile(filepath.Join(dead, "1.data"), []byte("x"), 0o600)
	os.Chtimes(filepath.Join(dead, "1.data"), past, past)

	seen := map[string]bool{}
	sweep := func(dry bool) {
		seen = map[string]bool{}
		if err := Sweep(root, 24*time.Hour, dry, time.Now(), func(l Leftover, removed bool, err error) {
			if err != nil {
				t.Errorf("%s: %v", l.Path, err)
			}
			seen[l.Key+"|"+filepath.Base(l.Path)] = removed
		}); err != nil {
			t.Fatal(err)
		}
	}
	sweep(true)
	if len(seen) != 3 || !seen["a/old|old.data"] || seen["a/new|new.data"] || !seen["|1.data"] {
		t.Fatalf("dry run saw %v", seen)
	}
	if _, err := os.Stat(filepath.Join(lost, "old.data")); err != nil {
		t.Fatal("a dry run removed a file")
	}
	sweep(false)
	for _, gone := range []string{filepath.Join(lost, "old.data"), filepath.Join(lost, "old.key"), dead} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s is still there", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(lost, "new.data")); err != nil {
		t.Error("a leftover younger than the bound was removed")
	}
	if _, err := os.Stat(live.Path()); err != nil {
		t.Error("a running mount's stage directory was touched")
	}
}
