package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestShuffle checks, in memory and with spilled buckets, that every row
// reaches its output exactly once, that the order changes, and that the
// temporary files are removed.
func TestShuffle(t *testing.T) {
	tests := []struct {
		name       string
		rows       int
		bucketRows int
	}{
		{"in memory", 5_000, 1 << 20},
		{"spilled to 7 buckets", 5_000, 800},
		{"one row", 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			outs := []*bytes.Buffer{{}, {}, {}}
			ws := []io.Writer{outs[0], outs[1], outs[2]}
			s, err := newShuffler(rand.New(rand.NewPCG(1, 2)), ws, int64(tc.rows), tc.bucketRows, tmp)
			if err != nil {
				t.Fatal(err)
			}
			want := make([][]string, len(outs))
			for i := range tc.rows {
				out := i % len(outs)
				row := fmt.Sprintf("row-%d\n", i)
				want[out] = append(want[out], strings.TrimSuffix(row, "\n"))
				if err := s.add(out, []byte(row)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.finish(); err != nil {
				t.Fatal(err)
			}
			for i, b := range outs {
				got := strings.Fields(b.String())
				if len(want[i]) > 2 && slices.Equal(got, want[i]) {
					t.Errorf("output %d kept the input order", i)
				}
				slices.Sort(got)
				slices.Sort(want[i])
				if !slices.Equal(got, want[i]) {
					t.Errorf("output %d: %d rows, want the %d rows given to it", i, len(got), len(want[i]))
				}
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

// TestShuffleUniform checks the spilled shuffle for position bias: over many
// runs each of 4 rows lands first about equally often.
func TestShuffleUniform(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tmp := t.TempDir()
	var first [4]int
	const runs = 1000
	for range runs {
		var out bytes.Buffer
		s, err := newShuffler(rng, []io.Writer{&out}, 4, 2, tmp)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			s.add(0, []byte{byte('a' + i), '\n'})
		}
		if err := s.finish(); err != nil {
			t.Fatal(err)
		}
		first[out.Bytes()[0]-'a']++
	}
	for i, n := range first {
		// Expected 250 each; 6 standard deviations is ±82.
		if n < 168 || n > 332 {
			t.Errorf("row %d came first %d times in %d runs, want about %d: %v", i, n, runs, runs/4, first)
		}
	}
}
