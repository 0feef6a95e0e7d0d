package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressRender(t *testing.T) {
	tests := []struct {
		name               string
		bytes, total, rows int64
		elapsed            time.Duration
		want               []string
		notWant            []string
	}{
		{"start", 0, 100 << 20, 0, 0, []string{"[..............................]", "0.0%", "0 B/100.0 MiB", "0 rows"}, []string{"ETA"}},
		{"half way", 50 << 20, 100 << 20, 2_000_000, 4 * time.Second,
			[]string{"[###############...............]", "50.0%", "50.0 MiB/100.0 MiB", "2.00M rows", "500.0k rows/s", "ETA 4s"}, nil},
		{"done", 100 << 20, 100 << 20, 4_000_000, 8 * time.Second, []string{"100.0%", "[##############################]"}, []string{"ETA"}},
		{"unknown total (stdin)", 3 << 30, 0, 5_000, time.Second, []string{"3.0 GiB", "5000 rows", "5000 rows/s"}, []string{"[", "%", "ETA"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := renderProgress(tc.bytes, tc.total, tc.rows, tc.elapsed)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q does not contain %q", got, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("%q contains %q", got, w)
				}
			}
		})
	}
}

// fakeClock advances only when told to.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestProgressRedrawRate(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	var out bytes.Buffer
	p := newProgress(&out, true, 1000, clk.now)
	// 1000 updates 1 ms apart: one second, so about 10 redraws.
	for i := range 1000 {
		clk.t = clk.t.Add(time.Millisecond)
		p.update(int64(i), int64(i))
	}
	if n := strings.Count(out.String(), "\r"); n < 9 || n > 10 {
		t.Errorf("%d redraws in one second of updates, want 10", n)
	}
	p.clear()
	if !strings.HasSuffix(out.String(), "\r\x1b[K") {
		t.Errorf("clear did not erase the line: %q", out.String()[max(0, out.Len()-20):])
	}
}

func TestProgressDisabledDrawsNothing(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	var out bytes.Buffer
	p := newProgress(&out, false, 1000, clk.now)
	for i := range 100 {
		clk.t = clk.t.Add(time.Second)
		p.update(int64(i), int64(i))
	}
	p.clear()
	if out.Len() != 0 {
		t.Fatalf("disabled progress wrote %q", out.String())
	}
	if isTerminal(&out) {
		t.Fatal("a buffer is not a terminal")
	}
}

func TestProgressHumanUnits(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536 << 20: "1.5 GiB"} {
		if got := humanBytes(in); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{0: "0", 9999: "9999", 12_345: "12.3k", 2_500_000: "2.50M", 3e9: "3.00G"} {
		if got := humanCount(in); got != want {
			t.Errorf("humanCount(%v) = %q, want %q", in, got, want)
		}
	}
}
