package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// envPrefix prefixes the environment variable of every flag.
const envPrefix = "KLINECAST_"

// usageError is a bad flag or argument: the command was not run (exit 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a *usageError with a formatted message; %w works.
func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// envName returns the environment variable that backs flag name:
// "out-dir" → "KLINECAST_OUT_DIR".
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet returns a FlagSet for a subcommand. help is printed for -h,
// above the flag list; it should say what the command does and show
// examples.
func newFlagSet(name, help string) *flag.FlagSet {
	fs := flag.NewFlagSet("klinecast "+name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, strings.TrimLeft(help, "\n"))
		fmt.Fprintf(w, "\nFlags (each also read from %s<FLAG> when not given, e.g. %s):\n", envPrefix, envName("out-dir"))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args with fs and returns the positional arguments.
// Flags and positional arguments may be interleaved ("FILE --symbol X"
// works); "--" ends the flags, and "-" is a positional argument (stdin).
// Flags not given on the command line are then taken from their
// environment variables (envName), so the command line wins over the
// environment, which wins over the defaults.
//
// For -h it prints the help to stdout and returns flag.ErrHelp; for a bad
// flag or environment value it returns a *usageError.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	return parseFlagsEnv(fs, args, stdout, os.LookupEnv)
}

// parseFlagsEnv is parseFlags with the environment lookup injected (tests).
func parseFlagsEnv(fs *flag.FlagSet, args []string, stdout io.Writer, lookup func(string) (string, bool)) ([]string, error) {
	// The flag package prints its own error and the usage on failure; keep
	// it quiet and let the caller report the error once.
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stdout)
				fs.Usage()
				return nil, flag.ErrHelp
			}
			return nil, &usageError{err: err}
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			// fs.Parse stopped at "--": everything after it is positional.
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		// fs.Parse stopped at a positional argument; keep it and go on
		// parsing flags after it.
		positional = append(positional, rest[0])
		args = rest[1:]
	}

	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || envErr != nil {
			return
		}
		name := envName(f.Name)
		v, ok := lookup(name)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = usageErrorf("environment %s=%q: %w", name, v, err)
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	return positional, nil
}

// logFlag registers the common --log-level flag.
func logFlag(fs *flag.FlagSet) *slog.Level {
	lvl := new(slog.Level)
	fs.TextVar(lvl, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	return lvl
}

// newLogger returns the command's logger: text lines on stderr.
func newLogger(stderr io.Writer, lvl slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
}

// parseTime parses an RFC 3339 time ("2024-02-26T00:00:00Z", or a bare date
// "2024-02-26" meaning midnight UTC) or an integer number of milliseconds
// since the epoch, and returns ms since the epoch.
func parseTime(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("time %q is neither RFC 3339 (2024-02-26T00:00:00Z), a date (2024-02-26) nor ms since the epoch", s)
}

// parseSpan parses a Go duration ("36h", "90m") or a number of days ("8d").
func parseSpan(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("span %q: want a duration such as 36h or a number of days such as 8d", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("span %q: want a duration such as 36h or a number of days such as 8d", s)
	}
	return d, nil
}
