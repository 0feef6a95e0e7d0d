package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progressInterval is the minimum time between two redraws of the progress
// bar: ~10 per second is smooth to the eye and costs nothing measurable.
const progressInterval = 100 * time.Millisecond

// isTerminal reports whether w is a terminal (only an *os.File can be).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress draws a one-line progress bar for long offline work:
// bytes done of the total, rows, rows per second and the time left. It is
// driven by its caller (no goroutine, no timer): update is cheap to call
// often and redraws at most once per progressInterval.
//
// A disabled progress (w not a terminal) draws nothing. progress is not
// safe for concurrent use.
type progress struct {
	w       io.Writer
	enabled bool
	now     func() time.Time // time.Now; tests inject a fake clock
	total   int64            // bytes expected, 0 if unknown (stdin)

	start, last time.Time
	drawn       bool
}

func newProgress(w io.Writer, enabled bool, total int64, now func() time.Time) *progress {
	t := now()
	return &progress{w: w, enabled: enabled, now: now, total: total, start: t, last: t}
}

// update redraws the bar if enough time passed since the last redraw.
func (p *progress) update(bytes, rows int64) {
	if !p.enabled {
		return
	}
	t := p.now()
	if t.Sub(p.last) < progressInterval {
		return
	}
	p.last = t
	p.drawn = true
	// \r returns to the start of the line, \x1b[K clears what a longer
	// previous line left behind.
	fmt.Fprintf(p.w, "\r%s\x1b[K", renderProgress(bytes, p.total, rows, t.Sub(p.start)))
}

// clear removes the bar so that the next line starts clean.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// renderProgress formats one progress line.
func renderProgress(bytes, total, rows int64, elapsed time.Duration) string {
	const width = 30
	secs := elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(rows) / secs
	}
	var b strings.Builder
	if total > 0 {
		frac := min(1, float64(bytes)/float64(total))
		filled := int(frac * width)
		b.WriteString("[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]")
		fmt.Fprintf(&b, " %5.1f%% %s/%s", 100*frac, humanBytes(bytes), humanBytes(total))
	} else {
		fmt.Fprintf(&b, "%s", humanBytes(bytes))
	}
	fmt.Fprintf(&b, " %s rows %s rows/s", humanCount(float64(rows)), humanCount(rate))
	if total > 0 && bytes > 0 && bytes < total && secs > 0 {
		left := time.Duration(float64(elapsed) * float64(total-bytes) / float64(bytes))
		fmt.Fprintf(&b, " ETA %s", left.Round(time.Second))
	}
	return b.String()
}

// humanBytes formats n bytes with a binary unit ("12.3 MiB").
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// humanCount formats a count with a decimal unit ("1.25M").
func humanCount(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// countingReader counts the bytes read through it, for the progress bar.
type countingReader struct {
	r io.Reader
	n *int64 // shared by all inputs of one run
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}
