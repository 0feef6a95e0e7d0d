package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/klinecast/klinecast/storage"
)

// Inspect is the `klinecast inspect` subcommand.
func (commands) Inspect() command {
	return command{summary: "summarize a data directory (symbols, bars, WAL, snapshots, consumers)", run: runInspect}
}

const inspectHelp = `
Usage: klinecast inspect [--data-dir DIR] [--json]

Summarizes a stopped node's data directory: stored bars per symbol and
interval (bars with runs of empty bars expanded, run entries, chunks,
bytes), totals per interval (series, chunks, bars, runs, bytes and bytes
per bar), the WAL range of every shard (and corrupt records, which the
next start would truncate as a torn tail or refuse), shard snapshots and
durable consumer checkpoints. It reads every WAL record and every bar
chunk, so it takes about as long as a recovery. A data dir of storage
format 1 (an older klinecast) shows its per-bar klines as a count: the
next serve converts them. A running node holds the directory lock: stop it
first.

Examples:
  klinecast inspect --data-dir ./data
  klinecast inspect --data-dir ./data --json | jq '.WAL'
  klinecast inspect --data-dir ./data --json | jq '.Intervals'
`

func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("inspect", inspectHelp)
	dir := fs.String("data-dir", "./data", "data directory")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	lvl := logFlag(fs)
	rest, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("inspect: unexpected arguments %q", rest)
	}
	cfg := storage.DefaultConfig(*dir)
	cfg.Logger = newLogger(stderr, *lvl)
	sum, err := storage.Inspect(ctx, cfg)
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	printSummary(stdout, &sum)
	return nil
}

func printSummary(w io.Writer, s *storage.Summary) {
	fmt.Fprintf(w, "data dir   %s (format %d)\n", s.Dir, s.FormatVersion)
	fmt.Fprintf(w, "sequence   last %d, durable %d\n", s.LastSeq, s.DurableSeq)
	fmt.Fprintf(w, "disk       lsm %d bytes, value log %d bytes\n", s.LSMBytes, s.VlogBytes)
	if s.Recovered {
		fmt.Fprintln(w, "note       the node did not stop cleanly; badger recovered its log")
	}
	if s.LegacyKlines > 0 {
		fmt.Fprintf(w, "note       storage format 1: %d per-bar klines, converted into chunks at the next serve\n", s.LegacyKlines)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nSYMBOL\tINTERVAL\tBARS\tRUNS\tCHUNKS\tBYTES\tFIRST OPEN\tLAST OPEN\n")
	for _, sym := range s.Symbols {
		for _, se := range sym.Series {
			corrupt := ""
			if se.Corrupt > 0 {
				corrupt = fmt.Sprintf("\t%d CORRUPT CHUNKS", se.Corrupt)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s%s\n", sym.Symbol, se.Interval, se.Bars, se.Runs, se.Chunks, se.Bytes,
				fmtMs(se.FirstOpen), fmtMs(se.LastOpen), corrupt)
		}
	}
	fmt.Fprintf(tw, "\nINTERVAL\tSERIES\tCHUNKS\tBARS\tRUNS\tBYTES\tBYTES/BAR\t\n")
	for _, iv := range s.Intervals {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t\n", iv.Interval, iv.Series, iv.Chunks, iv.Bars, iv.Runs, iv.Bytes, iv.BytesPerBar)
	}
	fmt.Fprintf(tw, "\nWAL SHARD\tRECORDS\tTRADES\tBYTES\tSEQ RANGE\tCORRUPT\n")
	for _, wl := range s.WAL {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d..%d\t%d\n", wl.Shard, wl.Records, wl.Trades, wl.Bytes, wl.FirstSeq, wl.LastSeq, wl.Corrupt)
	}
	fmt.Fprintf(tw, "\nSNAPSHOT SHARD\tCOVERED SEQ\tBYTES\tSAVED AT\n")
	for _, sn := range s.Snapshots {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\n", sn.Shard, sn.CoveredSeq, sn.Bytes, sn.SavedAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "\nCONSUMER\tCHECKPOINT SEQ\t\t\n")
	for _, c := range s.Checkpoints {
		fmt.Fprintf(tw, "%s\t%d\t\t\n", c.Consumer, c.Seq)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d symbols, %d shards with WAL records, %d snapshots, %d consumers\n",
		len(s.Symbols), len(s.WAL), len(s.Snapshots), len(s.Checkpoints))
}

func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04") }
