package main

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
)

// Gen is the `klinecast gen` subcommand.
func (commands) Gen() command {
	return command{summary: "write realistic synthetic aggTrades (CSV or NDJSON)", run: runGen}
}

const genHelp = `
Usage: klinecast gen [flags]

Writes realistic synthetic aggregate trades, deterministic for a seed: per
symbol a random-walk price on the symbol's tick size (down to 0.00000001 for
memecoins at ~1e-6 trading 1e9..1e11 units), lot-sized quantities, bursts of
many trades in one millisecond, idle gaps of hours, raw trade id ranges f..l
and consecutive aggregate ids. Symbols cycle through four profiles: major,
mid, alt, meme.

The default start, 2024-02-26 (a Monday), with the default span of 8 days
crosses a month boundary (2024-03-01) and a week boundary (2024-03-04).

Formats:
  csv     Binance public-data aggTrades CSV (agg_trade_id,price,quantity,
          first_trade_id,last_trade_id,transact_time,is_buyer_maker,
          is_best_match), one symbol per file: with several symbols use
          --out-dir, which writes DIR/<SYMBOL>-aggTrades.csv.
  ndjson  Binance aggTrade events, one JSON object per line, all symbols
          interleaved in time order.

Examples:
  klinecast gen --trades 1000000 > BTCUSDT-aggTrades.csv
  klinecast gen --symbols 4 --trades 10000000 --micros --shuffle --out-dir data/
  klinecast gen --symbol-list BTCUSDT,PEPEUSDT --format ndjson --out trades.ndjson
  klinecast gen --trades 50000 --start 2024-08-31T12:00:00Z --span 48h --seed 7
`

// genOptions are the parsed flags of gen.
type genOptions struct {
	cfg     gen.Config
	format  string
	out     string
	outDir  string
	micros  bool
	shuffle bool
	header  bool
	// shuffleRows bounds the rows a shuffle holds in memory (tests lower it
	// to exercise the spill path).
	shuffleRows int
}

func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", genHelp)
	nsym := fs.Int("symbols", 1, "number of symbols (names: BTCUSDT, ETHUSDT, XRPUSDT, PEPEUSDT, ..., then S0009USDT...)")
	symList := fs.String("symbol-list", "", "comma-separated symbol names (overrides --symbols)")
	trades := fs.Int64("trades", 100_000, "total number of trades over all symbols")
	start := fs.String("start", "2024-02-26T00:00:00Z", "time of the first trades: RFC 3339, a date, or ms since the epoch")
	span := fs.String("span", "8d", "roughly how much time the trades cover (36h, 8d, ...)")
	seed := fs.Uint64("seed", 1, "random seed; the same flags and seed give the same output")
	o := genOptions{shuffleRows: defaultShuffleRows}
	fs.StringVar(&o.format, "format", "csv", "output format: csv or ndjson")
	fs.StringVar(&o.out, "out", "-", "output file for one CSV symbol or for ndjson; - is stdout")
	fs.StringVar(&o.outDir, "out-dir", "", "CSV output directory: one DIR/<SYMBOL>-aggTrades.csv per symbol (created if missing)")
	fs.BoolVar(&o.micros, "micros", false, "CSV: write transact_time in microseconds (16 digits), as Binance's spot files since 2025")
	fs.BoolVar(&o.shuffle, "shuffle", false, "CSV: write each file's rows in random order (memory bounded: large runs spill to temp files next to the output)")
	fs.BoolVar(&o.header, "header", false, "CSV: write a header line")
	lvl := logFlag(fs)
	rest, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("unexpected arguments %q", rest)
	}
	log := newLogger(stderr, *lvl)

	switch {
	case *symList != "":
		o.cfg.Symbols = strings.Split(*symList, ",")
	case *nsym < 1 || *nsym > 100_000:
		return usageErrorf("--symbols %d: want 1..100000", *nsym)
	default:
		o.cfg.Symbols = gen.Symbols(*nsym)
	}
	if *trades < 1 {
		return usageErrorf("--trades %d: want at least 1", *trades)
	}
	o.cfg.Trades = *trades
	if o.cfg.Start, err = parseTime(*start); err != nil {
		return usageErrorf("--start: %w", err)
	}
	if o.cfg.Span, err = parseSpan(*span); err != nil {
		return usageErrorf("--span: %w", err)
	}
	if o.cfg.Span <= 0 {
		return usageErrorf("--span must be positive")
	}
	o.cfg.Seed = *seed
	switch o.format {
	case "csv":
		if len(o.cfg.Symbols) > 1 && o.outDir == "" {
			return usageErrorf("csv holds one symbol per file: with %d symbols, use --out-dir", len(o.cfg.Symbols))
		}
		if o.outDir != "" && o.out != "-" {
			return usageErrorf("use --out or --out-dir, not both")
		}
	case "ndjson":
		if o.outDir != "" || o.micros || o.shuffle || o.header {
			return usageErrorf("--out-dir, --micros, --shuffle and --header apply to csv only")
		}
	default:
		return usageErrorf("--format %q: want csv or ndjson", o.format)
	}
	g, err := gen.New(o.cfg)
	if err != nil {
		return usageErrorf("%w", err)
	}

	began := time.Now()
	paths, first, last, err := writeGen(ctx, g, o, stdout)
	if err != nil {
		return err
	}
	log.Info("generated",
		"trades", o.cfg.Trades, "symbols", len(o.cfg.Symbols), "format", o.format,
		"first", time.UnixMilli(first).UTC().Format(time.RFC3339Nano),
		"last", time.UnixMilli(last).UTC().Format(time.RFC3339Nano),
		"outputs", strings.Join(paths, ","), "elapsed", time.Since(began).Round(time.Millisecond))
	return nil
}

// writeGen streams g to the outputs o names and returns their paths ("-"
// for stdout) and the first and last trade times.
func writeGen(ctx context.Context, g *gen.Generator, o genOptions, stdout io.Writer) (paths []string, first, last int64, err error) {
	// Open the outputs: one per symbol (csv --out-dir) or a single one.
	var files []*atomicFile
	defer func() {
		for _, f := range files {
			f.abort() // no-op for committed files
		}
	}()
	var outs []io.Writer
	var stdoutBuf *bufio.Writer
	if o.outDir != "" {
		if err := os.MkdirAll(o.outDir, 0o755); err != nil {
			return nil, 0, 0, err
		}
		for _, s := range g.Symbols() {
			p := filepath.Join(o.outDir, s+"-aggTrades.csv")
			f, err := createAtomic(p)
			if err != nil {
				return nil, 0, 0, err
			}
			files = append(files, f)
			outs = append(outs, f)
			paths = append(paths, p)
		}
	} else if o.out == "-" {
		stdoutBuf = bufio.NewWriterSize(stdout, 256<<10)
		outs = append(outs, stdoutBuf)
		paths = append(paths, "-")
	} else {
		f, err := createAtomic(o.out)
		if err != nil {
			return nil, 0, 0, err
		}
		files = append(files, f)
		outs = append(outs, f)
		paths = append(paths, o.out)
	}
	// route picks the output of the last trade: its symbol's file with
	// --out-dir, else the single output.
	route := func() int {
		if len(outs) == 1 {
			return 0
		}
		return g.LastSymbol()
	}

	if o.header {
		for _, w := range outs {
			if _, err := io.WriteString(w, messages.AggTradeCSVHeader); err != nil {
				return nil, 0, 0, err
			}
		}
	}
	var shuf *shuffler
	if o.shuffle {
		tmpParent := o.outDir
		if tmpParent == "" && o.out != "-" {
			tmpParent = filepath.Dir(o.out)
		}
		// The shuffle's own seed derives from --seed, so shuffled output is
		// as reproducible as the trades.
		rng := rand.New(rand.NewPCG(o.cfg.Seed, 0x5368756666_6c65))
		if shuf, err = newShuffler(rng, outs, o.cfg.Trades, o.shuffleRows, tmpParent); err != nil {
			return nil, 0, 0, err
		}
		defer shuf.close()
	}

	var t messages.Trade
	row := make([]byte, 0, 256)
	for n := int64(0); g.Next(&t); n++ {
		if n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return nil, 0, 0, err
			}
		}
		if n == 0 {
			first = t.Time
		}
		last = t.Time
		row = row[:0]
		switch {
		case o.format == "ndjson":
			row = append(messages.AppendAggTradeJSON(row, &t), '\n')
		case o.micros:
			// The CSV codec writes Time as given; hand it the µs time.
			tu := t
			tu.Time = g.LastMicros()
			row = messages.AppendAggTradeCSV(row, &tu)
		default:
			row = messages.AppendAggTradeCSV(row, &t)
		}
		if shuf != nil {
			err = shuf.add(route(), row)
		} else {
			_, err = outs[route()].Write(row)
		}
		if err != nil {
			return nil, 0, 0, err
		}
	}
	if shuf != nil {
		if err := shuf.finish(); err != nil {
			return nil, 0, 0, err
		}
	}
	for _, f := range files {
		if err := f.commit(); err != nil {
			return nil, 0, 0, err
		}
	}
	if stdoutBuf != nil {
		if err := stdoutBuf.Flush(); err != nil {
			return nil, 0, 0, err
		}
	}
	return paths, first, last, nil
}
