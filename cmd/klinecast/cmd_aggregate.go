package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/messages"
)

// Aggregate is the `klinecast aggregate` subcommand.
func (commands) Aggregate() command {
	return command{summary: "aggregate Binance aggTrades CSV files into kline CSV files, offline", run: runAggregate}
}

const aggregateHelp = `
Usage: klinecast aggregate [flags] FILE...

Reads Binance public-data aggTrades CSV files (agg_trade_id,price,quantity,
first_trade_id,last_trade_id,transact_time,is_buyer_maker[,is_best_match];
header optional, rows in any order, transact_time in ms or µs) of one
symbol, and writes one Binance kline CSV per interval,
DIR/<SYMBOL>-<interval>.csv (open_time,open,high,low,close,volume,
close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,
ignore), from the first trade's bar to the last trade's bar, gaps filled
with empty bars at the previous close, all bars closed.

FILE "-" is standard input. Every trade is validated: a bad row stops the
run with "file:line: reason" (exit 1) unless --skip-bad, which skips bad
rows and reports how many. Memory grows with the number of bars, not rows.
Output files are replaced atomically (temp file, fsync, rename).

OHLC, volume and taker buy volume are exact (fixed point); trade counts
are raw trades (last_trade_id - first_trade_id + 1); quote volumes are
float64 sums of exact products.

Intervals: 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M ("all" for
all of them; default 1m,5m,15m,30m,1h,4h,1d,1w).

Examples:
  klinecast aggregate --symbol BTCUSDT --out-dir klines BTCUSDT-aggTrades-2024-03.csv
  klinecast aggregate --intervals all --out-dir klines BTCUSDT-aggTrades-*.csv
  unzip -p BTCUSDT-aggTrades-2024-03.zip | klinecast aggregate --symbol BTCUSDT --intervals 1m,1h -
`

// aggregateOptions are the parsed flags of aggregate.
type aggregateOptions struct {
	symbol    string
	intervals []messages.Interval
	outDir    string
	skipBad   bool
	header    bool
	maxBars   int64
	// nowMs is the wall clock the future-time check uses (trades more
	// than an hour after it are bad rows); 0 disables the check.
	nowMs int64
}

// defaultMaxBars bounds the bars one interval may produce: about 3 GB of
// bars in memory. It protects against a stray timestamp years away from
// the rest, which would otherwise gap-fill billions of 1s bars.
const defaultMaxBars = 20_000_000

// maxReportedBad is how many skipped rows --skip-bad describes on stderr.
const maxReportedBad = 5

// aggInput is one input stream.
type aggInput struct {
	name string    // file name as given, "-" for stdin
	r    io.Reader // nil: open name when its turn comes
	size int64     // bytes, 0 if unknown
}

// aggStats describes a finished read.
type aggStats struct {
	rows, skipped int64 // trades aggregated, bad rows skipped
	files         int
	minT, maxT    int64 // ms, over aggregated trades
}

func runAggregate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("aggregate", aggregateHelp)
	symbol := fs.String("symbol", "", "symbol of the input (the files carry none); default: taken from a first file named <SYMBOL>-aggTrades...")
	intervals := fs.String("intervals", messages.FormatIntervals(messages.DefaultIntervals()), `comma-separated intervals, or "all"`)
	o := aggregateOptions{maxBars: defaultMaxBars, nowMs: time.Now().UnixMilli()}
	fs.StringVar(&o.outDir, "out-dir", ".", "output directory (created if missing)")
	fs.BoolVar(&o.skipBad, "skip-bad", false, "skip bad rows (count them and describe the first few on stderr) instead of failing")
	fs.BoolVar(&o.header, "header", false, "write a header line in each output file")
	fs.Int64Var(&o.maxBars, "max-bars", defaultMaxBars, "refuse to write more than this many bars for one interval (guards against stray timestamps)")
	prog := fs.String("progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always or never")
	lvl := logFlag(fs)
	files, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	log := newLogger(stderr, *lvl)

	if len(files) == 0 {
		return usageErrorf("no input files (use - for standard input)")
	}
	if o.intervals, err = parseIntervalList(*intervals); err != nil {
		return usageErrorf("--intervals: %w", err)
	}
	if *symbol == "" {
		*symbol = symbolFromFileName(files[0])
		if *symbol == "" {
			return usageErrorf("--symbol is required (the CSV files carry no symbol)")
		}
		log.Info("symbol taken from the file name", "symbol", *symbol, "file", files[0])
	}
	o.symbol = messages.NormalizeSymbol(*symbol)
	probe := messages.Trade{Symbol: o.symbol, Price: 1, Time: messages.MinTradeTime}
	if err := probe.Validate(0); err != nil {
		return usageErrorf("--symbol %q: %w", *symbol, err)
	}
	if o.maxBars < 1 {
		return usageErrorf("--max-bars must be positive")
	}
	showProgress := false
	switch *prog {
	case "auto":
		showProgress = isTerminal(stderr)
	case "always":
		showProgress = true
	case "never":
	default:
		return usageErrorf("--progress %q: want auto, always or never", *prog)
	}

	// Check every input before reading any, so that a typo in the last of
	// many files fails at once rather than after minutes of work.
	inputs := make([]aggInput, 0, len(files))
	var total int64
	stdinUsed := false
	for _, name := range files {
		in := aggInput{name: name}
		var st os.FileInfo
		if name == "-" {
			if stdinUsed {
				return usageErrorf("standard input (-) given twice")
			}
			stdinUsed = true
			in.r = os.Stdin
			st, err = os.Stdin.Stat()
		} else {
			st, err = os.Stat(name)
		}
		if err != nil {
			return err
		}
		if st.Mode().IsRegular() {
			in.size = st.Size()
		} else if name != "-" && st.IsDir() {
			return fmt.Errorf("%s is a directory", name)
		}
		total += in.size
		inputs = append(inputs, in)
	}

	began := time.Now()
	p := newProgress(stderr, showProgress, total, time.Now)
	off, st, err := aggregateInputs(ctx, o, inputs, p, log)
	p.clear()
	if err != nil {
		return err
	}
	written, err := writeKlines(o, off, st)
	if err != nil {
		return err
	}

	elapsed := time.Since(began)
	var bars []string
	for _, w := range written {
		bars = append(bars, fmt.Sprintf("%s=%d", w.iv, w.bars))
		fmt.Fprintf(stdout, "%s\t%d bars\t%s .. %s\n", w.path, w.bars,
			time.UnixMilli(w.first).UTC().Format(time.RFC3339), time.UnixMilli(w.last).UTC().Format(time.RFC3339))
	}
	log.Info("aggregated",
		"symbol", o.symbol, "files", st.files, "rows", st.rows, "skipped", st.skipped,
		"first_trade", time.UnixMilli(st.minT).UTC().Format(time.RFC3339Nano),
		"last_trade", time.UnixMilli(st.maxT).UTC().Format(time.RFC3339Nano),
		"bars", strings.Join(bars, ","), "elapsed", elapsed.Round(time.Millisecond),
		"rows_per_s", int64(float64(st.rows)/max(elapsed.Seconds(), 1e-9)))
	return nil
}

// parseIntervalList parses --intervals: a list or "all".
func parseIntervalList(s string) ([]messages.Interval, error) {
	if strings.TrimSpace(s) == "all" {
		return messages.AllIntervals(), nil
	}
	return messages.ParseIntervals(s)
}

// symbolFromFileName returns SYMBOL for a Binance public-data file named
// SYMBOL-aggTrades-..., or "".
func symbolFromFileName(name string) string {
	sym, _, ok := strings.Cut(filepath.Base(name), "-aggTrades")
	if !ok || sym == "" {
		return ""
	}
	return messages.NormalizeSymbol(sym)
}

// errorRecorder wraps an input and remembers a read error other than
// io.EOF, so that an I/O failure is never mistaken for a bad row and
// skipped by --skip-bad.
type errorRecorder struct {
	r   io.Reader
	err error
}

func (e *errorRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// aggregateInputs reads every input in order into an Offline aggregator.
// It holds one input open at a time and one row in memory: the aggregator
// holds the bars.
func aggregateInputs(ctx context.Context, o aggregateOptions, inputs []aggInput, p *progress, log *slog.Logger) (*aggregate.Offline, aggStats, error) {
	a := &aggRun{ctx: ctx, o: o, p: p, log: log, off: aggregate.NewOffline(o.symbol, o.intervals)}
	for _, in := range inputs {
		if err := a.read(in); err != nil {
			return nil, a.st, err
		}
	}
	if a.st.skipped > 0 {
		log.Warn("skipped bad rows", "count", a.st.skipped, "described", min(a.st.skipped, maxReportedBad))
	}
	if a.st.rows == 0 {
		return nil, a.st, errors.New("no trades in the input")
	}
	return a.off, a.st, nil
}

// aggRun is the state of one aggregateInputs call.
type aggRun struct {
	ctx       context.Context
	o         aggregateOptions
	p         *progress
	log       *slog.Logger
	off       *aggregate.Offline
	st        aggStats
	bytesRead int64
	t         messages.Trade
}

// read aggregates one input.
func (a *aggRun) read(in aggInput) error {
	r := in.r
	if r == nil {
		f, err := os.Open(in.name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	rec := &errorRecorder{r: countingReader{r: r, n: &a.bytesRead}}
	cr := messages.NewAggTradeCSVReader(rec, a.o.symbol)
	cr.File = in.name
	t := &a.t
	fileRows := int64(0)
	for {
		err := cr.Next(t)
		if err == io.EOF {
			break
		}
		if rec.err != nil {
			return fmt.Errorf("%s: read: %w", in.name, rec.err)
		}
		if err == nil {
			if verr := t.Validate(a.o.nowMs); verr != nil {
				err = &messages.ParseError{File: in.name, Line: cr.Line(), Err: verr}
			}
		}
		if err != nil {
			if !a.o.skipBad {
				return err
			}
			a.st.skipped++
			if a.st.skipped <= maxReportedBad {
				a.log.Warn("skipping bad row", "err", err)
			}
			continue
		}
		if err := a.off.Add(t); err != nil {
			return fmt.Errorf("%s:%d: %w", in.name, cr.Line(), err)
		}
		if a.st.rows == 0 || t.Time < a.st.minT {
			a.st.minT = t.Time
		}
		if a.st.rows == 0 || t.Time > a.st.maxT {
			a.st.maxT = t.Time
		}
		a.st.rows++
		fileRows++
		if a.st.rows&1023 == 0 {
			if err := a.ctx.Err(); err != nil {
				return err
			}
			a.p.update(a.bytesRead, a.st.rows)
		}
	}
	a.st.files++
	if fileRows == 0 {
		a.log.Warn("no trades in input", "file", in.name)
	}
	return nil
}

// writtenFile describes one output file.
type writtenFile struct {
	iv          messages.Interval
	path        string
	bars        int
	first, last int64 // open times of the first and last bar
}

// writeKlines writes one CSV per interval. It checks every interval's bar
// count against the limit before writing any file.
func writeKlines(o aggregateOptions, off *aggregate.Offline, st aggStats) ([]writtenFile, error) {
	for _, iv := range o.intervals {
		if n := barCount(iv, st.minT, st.maxT); n > o.maxBars {
			return nil, fmt.Errorf("%s: trades from %s to %s make %d bars, more than --max-bars %d; leave out short intervals or raise the limit",
				iv, time.UnixMilli(st.minT).UTC().Format(time.RFC3339), time.UnixMilli(st.maxT).UTC().Format(time.RFC3339), n, o.maxBars)
		}
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return nil, err
	}
	var out []writtenFile
	var row []byte
	for _, iv := range o.intervals {
		klines := off.Klines(iv)
		path := filepath.Join(o.outDir, fmt.Sprintf("%s-%s.csv", o.symbol, iv))
		f, err := createAtomic(path)
		if err != nil {
			return nil, err
		}
		if o.header {
			if _, err := f.WriteString(messages.KlineCSVHeader); err != nil {
				f.abort()
				return nil, err
			}
		}
		for i := range klines {
			row = messages.AppendKlineCSV(row[:0], &klines[i])
			if _, err := f.Write(row); err != nil {
				f.abort()
				return nil, err
			}
		}
		if err := f.commit(); err != nil {
			return nil, err
		}
		w := writtenFile{iv: iv, path: path, bars: len(klines)}
		if len(klines) > 0 {
			w.first, w.last = klines[0].OpenTime, klines[len(klines)-1].OpenTime
		}
		out = append(out, w)
	}
	return out, nil
}

// barCount returns how many bars of iv cover [minT, maxT].
func barCount(iv messages.Interval, minT, maxT int64) int64 {
	first, last := iv.Align(minT), iv.Align(maxT)
	if n := iv.Fixed(); n > 0 {
		return (last-first)/n + 1
	}
	a, b := time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
	return int64((b.Year()-a.Year())*12+int(b.Month())-int(a.Month())) + 1
}
