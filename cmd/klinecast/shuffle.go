package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
)

// defaultShuffleRows is how many rows (of ~60-90 bytes) a shuffler holds in
// memory at once: about 100 MB with its index.
const defaultShuffleRows = 1 << 20

// shuffler writes rows to several outputs, each output's rows in a uniformly
// random order, using memory bounded by bucketRows rows rather than by the
// total.
//
// Rows are scattered into k = ⌈expected/bucketRows⌉ buckets, each row to a
// uniformly chosen bucket; finish then loads one bucket at a time, shuffles
// it and appends its rows to their outputs. A random split followed by a
// uniform shuffle of each part, concatenated, is a uniform permutation, for
// every output separately. With one bucket everything stays in memory;
// with more, buckets are temporary files in dir, removed by finish.
type shuffler struct {
	rng     *rand.Rand
	outs    []io.Writer
	buckets []shuffleBucket
	dir     string // temp dir holding the bucket files, "" if in memory
	scratch [2 * binary.MaxVarintLen64]byte
}

type shuffleBucket struct {
	mem []byte        // in-memory bucket (k == 1)
	f   *os.File      // spilled bucket (k > 1)
	w   *bufio.Writer // over f
}

// newShuffler returns a shuffler for about expected rows. tmpParent is where
// the bucket files go when one bucket is not enough ("" = os.TempDir()).
func newShuffler(rng *rand.Rand, outs []io.Writer, expected int64, bucketRows int, tmpParent string) (*shuffler, error) {
	k := max(1, int((expected+int64(bucketRows)-1)/int64(bucketRows)))
	s := &shuffler{rng: rng, outs: outs, buckets: make([]shuffleBucket, k)}
	if k == 1 {
		return s, nil
	}
	dir, err := os.MkdirTemp(tmpParent, ".klinecast-shuffle-*")
	if err != nil {
		return nil, fmt.Errorf("shuffle: %w", err)
	}
	s.dir = dir
	for i := range s.buckets {
		f, err := os.Create(fmt.Sprintf("%s/bucket-%04d", dir, i))
		if err != nil {
			s.close()
			return nil, fmt.Errorf("shuffle: %w", err)
		}
		s.buckets[i] = shuffleBucket{f: f, w: bufio.NewWriterSize(f, 64<<10)}
	}
	return s, nil
}

// add queues row for output out. row is copied.
func (s *shuffler) add(out int, row []byte) error {
	b := &s.buckets[s.rng.IntN(len(s.buckets))]
	hdr := binary.AppendUvarint(s.scratch[:0], uint64(out))
	hdr = binary.AppendUvarint(hdr, uint64(len(row)))
	if b.w == nil {
		b.mem = append(append(b.mem, hdr...), row...)
		return nil
	}
	if _, err := b.w.Write(hdr); err != nil {
		return fmt.Errorf("shuffle: %w", err)
	}
	if _, err := b.w.Write(row); err != nil {
		return fmt.Errorf("shuffle: %w", err)
	}
	return nil
}

// finish writes every queued row to its output and removes the temp files.
func (s *shuffler) finish() error {
	defer s.close()
	// Offsets fit 32 bits: a bucket holds about bucketRows short rows.
	type rec struct {
		out, off, end uint32
	}
	var recs []rec
	var buf []byte // reused for every spilled bucket: one bucket in memory at a time
	for i := range s.buckets {
		b := &s.buckets[i]
		data := b.mem
		if b.w != nil {
			if err := b.w.Flush(); err != nil {
				return fmt.Errorf("shuffle: %w", err)
			}
			st, err := b.f.Stat()
			if err != nil {
				return fmt.Errorf("shuffle: %w", err)
			}
			if int64(cap(buf)) < st.Size() {
				buf = make([]byte, st.Size())
			}
			data = buf[:st.Size()]
			if _, err := b.f.ReadAt(data, 0); err != nil {
				return fmt.Errorf("shuffle: %w", err)
			}
		}
		recs = recs[:0]
		for off := 0; off < len(data); {
			out, n := binary.Uvarint(data[off:])
			l, m := binary.Uvarint(data[off+n:])
			start := off + n + m
			recs = append(recs, rec{out: uint32(out), off: uint32(start), end: uint32(start + int(l))})
			off = start + int(l)
		}
		s.rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
		for _, r := range recs {
			if _, err := s.outs[r.out].Write(data[r.off:r.end]); err != nil {
				return err
			}
		}
		b.mem = nil // release the bucket before loading the next one
	}
	return nil
}

// close removes the temporary files.
func (s *shuffler) close() {
	for i := range s.buckets {
		if f := s.buckets[i].f; f != nil {
			f.Close()
		}
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
}
