package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bucketfs/bucketfs/s3client"
)

// castagnoli is the CRC32C table used to check what a mount reads back.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sourceData is the local input of the workloads, generated once per run
// from fixed seeds.
type sourceData struct {
	// SeqPath holds SeqSize random bytes: W1 and W7 write it, W2 and W6 read
	// the object made of it.
	SeqPath string
	// blockCRC is the CRC32C of each ReadBlock-sized block of SeqPath, and
	// partMD5 the MD5 of each PartSize part: what a read or an upload of it
	// must give.
	blockCRC []uint32
	partMD5  [][md5.Size]byte

	// TarPath is W3's archive; tarFiles its regular files, for the ceiling.
	TarPath  string
	tarFiles []tarFile

	// RsyncDir is W5's source tree; RsyncBytes its total size.
	RsyncDir   string
	RsyncBytes int64
}

// tarFile is one regular file of the tar archive.
type tarFile struct {
	Name string
	Data []byte
}

// fillRandom fills b from a generator seeded with seed.
func fillRandom(b []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for ; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
}

// generate writes every input under dir.
func generate(ctx context.Context, c benchConfig, dir string) (*sourceData, error) {
	s := &sourceData{
		SeqPath:  filepath.Join(dir, "seq.bin"),
		TarPath:  filepath.Join(dir, "w3.tar"),
		RsyncDir: filepath.Join(dir, "rsync"),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := s.generateSeq(ctx, c); err != nil {
		return nil, err
	}
	if err := s.generateTar(c); err != nil {
		return nil, err
	}
	if err := s.generateRsync(c); err != nil {
		return nil, err
	}
	return s, nil
}

// generateSeq writes SeqPath part by part on two goroutines, recording each
// part's MD5 and each block's CRC32C.
func (s *sourceData) generateSeq(ctx context.Context, c benchConfig) error {
	f, err := os.Create(s.SeqPath)
	if err != nil {
		return fmt.Errorf("creating the source file: %w", err)
	}
	defer f.Close()
	if c.PartSize%c.ReadBlock != 0 && c.ReadBlock%c.PartSize != 0 {
		return fmt.Errorf("part size and read block must divide one another")
	}
	unit := max(c.PartSize, c.ReadBlock)
	units := int(c.SeqSize / unit)
	s.partMD5 = make([][md5.Size]byte, c.SeqSize/c.PartSize)
	s.blockCRC = make([]uint32, c.SeqSize/c.ReadBlock)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, unit)
			for u := w; u < units; u += 2 {
				if ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				fillRandom(buf, uint64(u)+1)
				off := int64(u) * unit
				for p := int64(0); p < unit; p += c.PartSize {
					s.partMD5[(off+p)/c.PartSize] = md5.Sum(buf[p : p+c.PartSize])
				}
				for b := int64(0); b < unit; b += c.ReadBlock {
					s.blockCRC[(off+b)/c.ReadBlock] = crc32.Checksum(buf[b:b+c.ReadBlock], castagnoli)
				}
				if _, err := f.WriteAt(buf, off); err != nil {
					errs <- fmt.Errorf("writing the source file: %w", err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return f.Close()
}

// etag is S3's ETag of a multipart upload of the first size bytes of
// SeqPath in parts of partSize: the MD5 of the parts' MD5s, "-N".
func (s *sourceData) etag(size, partSize int64) string {
	n := int(size / partSize)
	h := md5.New()
	for i := 0; i < n; i++ {
		h.Write(s.partMD5[i][:])
	}
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(h.Sum(nil)), n)
}

// generateTar writes W3's archive: TarDirs directories holding TarFiles
// files of 1 to 64 KiB between them.
func (s *sourceData) generateTar(c benchConfig) error {
	r := rand.New(rand.NewPCG(3, 3))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for d := 0; d < c.TarDirs; d++ {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("d-%03d/", d), Mode: 0o755, ModTime: mtime}); err != nil {
			return fmt.Errorf("writing the tar archive: %w", err)
		}
		for i := d; i < c.TarFiles; i += c.TarDirs {
			data := make([]byte, kib+r.IntN(63*kib+1))
			fillRandom(data, uint64(1000+i))
			name := fmt.Sprintf("d-%03d/f-%05d.bin", d, i)
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}); err != nil {
				return fmt.Errorf("writing the tar archive: %w", err)
			}
			if _, err := tw.Write(data); err != nil {
				return fmt.Errorf("writing the tar archive: %w", err)
			}
			s.tarFiles = append(s.tarFiles, tarFile{Name: name, Data: data})
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing the tar archive: %w", err)
	}
	if err := os.WriteFile(s.TarPath, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing the tar archive: %w", err)
	}
	return nil
}

// generateRsync writes W5's tree: RsyncFiles files spread over five
// directories and the top, sizes log-uniform from 1 KiB to RsyncMax.
func (s *sourceData) generateRsync(c benchConfig) error {
	r := rand.New(rand.NewPCG(5, 5))
	mtime := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	lo, hi := math.Log(kib), math.Log(float64(c.RsyncMax))
	for i := 0; i < c.RsyncFiles; i++ {
		dir := s.RsyncDir
		if i%6 != 0 {
			dir = filepath.Join(s.RsyncDir, fmt.Sprintf("dir-%d", i%6))
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating the rsync tree: %w", err)
		}
		size := int64(math.Exp(lo + r.Float64()*(hi-lo)))
		data := make([]byte, size)
		fillRandom(data, uint64(5000+i))
		p := filepath.Join(dir, fmt.Sprintf("file-%04d.bin", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("creating the rsync tree: %w", err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			return fmt.Errorf("creating the rsync tree: %w", err)
		}
		s.RsyncBytes += size
	}
	return nil
}

// putMany writes count small objects named by name(i), 32 at a time.
func putMany(ctx context.Context, c *s3client.Client, count int, name func(int) string, body []byte) error {
	work := make(chan int)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := c.Put(ctx, name(i), bytes.NewReader(body), int64(len(body)), s3client.PutOptions{}); err != nil {
					select {
					case errs <- fmt.Errorf("loading %s: %w", name(i), err):
					default:
					}
					return
				}
			}
		}()
	}
	var err error
loop:
	for i := 0; i < count; i++ {
		select {
		case work <- i:
		case err = <-errs:
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
	}
	close(work)
	wg.Wait()
	if err != nil {
		return err
	}
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
