package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// command is one subcommand.
type command struct {
	// summary is the one-line description shown by `klinecast -h`.
	summary string
	// run executes the command with the arguments after its name. It writes
	// results to stdout and logs, progress and diagnostics to stderr. It
	// returns flag.ErrHelp after printing help for -h, a *usageError for bad
	// flags or arguments (exit 2) and any other error for a failure (exit 1);
	// the caller prints the error, run does not.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands carries one exported method per subcommand (see the package
// comment). It has no fields: it is a namespace, not state.
type commands struct{}

// commandTable returns the subcommands by name.
func commandTable() map[string]command {
	t := reflect.TypeFor[commands]()
	v := reflect.ValueOf(commands{})
	out := make(map[string]command, t.NumMethod())
	for i := range t.NumMethod() {
		m := t.Method(i)
		c, ok := v.Method(i).Interface().(func() command)
		if !ok {
			// A method with another signature is a programming error in a
			// cmd_*.go file, caught by TestCLICommandTable.
			panic(fmt.Sprintf("klinecast: commands.%s must have type func() command", m.Name))
		}
		out[strings.ToLower(m.Name)] = c()
	}
	return out
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling so that a second
	// Ctrl-C kills a command that is slow to wind down.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and maps its error to an exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commandTable()
	if len(args) == 0 {
		printUsage(stderr, cmds)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(rest) > 0 {
			// `klinecast help gen` is `klinecast gen -h`.
			name, rest = rest[0], []string{"-h"}
			break
		}
		printUsage(stdout, cmds)
		return exitOK
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "klinecast: unknown command %q\n\n", name)
		printUsage(stderr, cmds)
		return exitUsage
	}
	err := cmd.run(ctx, rest, stdout, stderr)
	var uerr *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "klinecast %s: %v\nRun 'klinecast %s -h' for usage.\n", name, err, name)
		return exitUsage
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "klinecast %s: interrupted\n", name)
		return exitFailure
	default:
		fmt.Fprintf(stderr, "klinecast %s: %v\n", name, err)
		return exitFailure
	}
}

func printUsage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	width := 0
	for n := range cmds {
		names = append(names, n)
		width = max(width, len(n))
	}
	slices.Sort(names)
	fmt.Fprint(w, `klinecast turns exchange trades into K-lines (candlesticks).

Usage:
  klinecast <command> [flags] [arguments]

Commands:
`)
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, cmds[n].summary)
	}
	fmt.Fprint(w, `
Every flag can also be set by the environment variable KLINECAST_<FLAG>
(upper case, dashes as underscores); a flag given on the command line wins.

Run 'klinecast <command> -h' for a command's flags and examples.
`)
}
