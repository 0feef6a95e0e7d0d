// Command klinecast is the klinecast binary: one executable with
// subcommands (aggregate, gen, ...). Run `klinecast -h` for the list and
// `klinecast <command> -h` for each command's flags and examples.
//
// Exit codes: 0 success (and -h), 1 runtime error, 2 usage error.
//
// # Adding a subcommand
//
// A subcommand is one file, cmd_<name>.go, holding an exported method of
// the empty type commands that returns its command value:
//
//	func (commands) Replay() command {
//		return command{summary: "feed a CSV into a running node", run: runReplay}
//	}
//
// The method name in lower case is the subcommand's name. main finds the
// methods by reflection, so there is no table to edit and no package-level
// registry to mutate; nothing else changes.
//
// Each command parses its own flag.FlagSet with parseFlags, which also
// reads KLINECAST_<FLAG> environment variables for flags not given on the
// command line, and logs with log/slog to stderr through a logger it builds
// itself (newLogger): there is no global logger.
//
// cmd is the top of the import graph: it may import every klinecast
// package, and none may import it (enforced by internal/layout).
package main
