package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klinecast/klinecast/internal/testkit"
)

// klinecastBin is the klinecast binary, built once for the tests that run
// it as a child process (TestMain removes it).
var klinecastBin = testkit.Binary{Package: "."}

func TestMain(m *testing.M) {
	code := m.Run()
	klinecastBin.Remove()
	os.Exit(code)
}

// TestCLICommandTable checks that every method of commands is a valid
// subcommand (commandTable panics otherwise) with a summary.
func TestCLICommandTable(t *testing.T) {
	cmds := commandTable()
	for _, name := range []string{"aggregate", "gen"} {
		if _, ok := cmds[name]; !ok {
			t.Errorf("command %q missing", name)
		}
	}
	for name, c := range cmds {
		if c.summary == "" || c.run == nil {
			t.Errorf("command %q has no summary or no run function", name)
		}
		if name != strings.ToLower(name) {
			t.Errorf("command %q is not lower case", name)
		}
	}
}

func TestCLIExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"no arguments", nil, exitUsage, "", "Commands:"},
		{"-h", []string{"-h"}, exitOK, "aggregate", ""},
		{"help", []string{"help"}, exitOK, "gen", ""},
		{"help for a command", []string{"help", "gen"}, exitOK, "Examples:", ""},
		{"command -h", []string{"aggregate", "-h"}, exitOK, "KLINECAST_OUT_DIR", ""},
		{"command --help", []string{"gen", "--help"}, exitOK, "--shuffle", ""},
		{"unknown command", []string{"nope"}, exitUsage, "", `unknown command "nope"`},
		{"unknown flag", []string{"gen", "--nope"}, exitUsage, "", "flag provided but not defined: -nope"},
		{"bad flag value", []string{"gen", "--trades", "many"}, exitUsage, "", `invalid value "many"`},
		{"extra argument", []string{"gen", "extra"}, exitUsage, "", "unexpected arguments"},
		{"usage hint", []string{"gen", "--format", "xml"}, exitUsage, "", "Run 'klinecast gen -h' for usage."},
		{"runtime error", []string{"aggregate", "--symbol", "X", "/nonexistent/file.csv"}, exitFailure, "", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout does not contain %q:\n%s", tc.wantStdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tc.wantStderr, stderr.String())
			}
		})
	}
}

// TestCLIInterrupted checks that a cancelled context ends a command with
// exit 1 and says so.
func TestCLIInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"gen", "--trades", "1000000"}, &stdout, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("exit %d, stderr %q; want 1 and interrupted", code, stderr.String())
	}
}

func TestCLIParseFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantPos  []string
		wantOut  string
		wantN    int
		wantSkip bool
		wantErr  string
	}{
		{name: "defaults", wantOut: ".", wantN: 1},
		{name: "flags and positionals interleaved", args: []string{"a.csv", "--out-dir", "d", "b.csv", "-n", "3"},
			wantPos: []string{"a.csv", "b.csv"}, wantOut: "d", wantN: 3},
		{name: "stdin is positional", args: []string{"-", "--skip-bad"}, wantPos: []string{"-"}, wantOut: ".", wantN: 1, wantSkip: true},
		{name: "double dash ends flags", args: []string{"--out-dir", "d", "--", "-n", "x"}, wantPos: []string{"-n", "x"}, wantOut: "d", wantN: 1},
		{name: "env fills unset flags", env: map[string]string{"KLINECAST_OUT_DIR": "envdir", "KLINECAST_N": "7", "KLINECAST_SKIP_BAD": "true"},
			wantOut: "envdir", wantN: 7, wantSkip: true},
		{name: "command line wins over env", args: []string{"--out-dir", "cli"}, env: map[string]string{"KLINECAST_OUT_DIR": "envdir"},
			wantOut: "cli", wantN: 1},
		{name: "explicit false wins over env", args: []string{"--skip-bad=false"}, env: map[string]string{"KLINECAST_SKIP_BAD": "true"},
			wantOut: ".", wantN: 1},
		{name: "bad env value", env: map[string]string{"KLINECAST_N": "lots"}, wantErr: `environment KLINECAST_N="lots"`},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlagSet("test", "help\n")
			out := fs.String("out-dir", ".", "")
			n := fs.Int("n", 1, "")
			skip := fs.Bool("skip-bad", false, "")
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			pos, err := parseFlagsEnv(fs, tc.args, &bytes.Buffer{}, lookup)
			if tc.wantErr != "" {
				var uerr *usageError
				if err == nil || !errors.As(err, &uerr) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pos, tc.wantPos) || *out != tc.wantOut || *n != tc.wantN || *skip != tc.wantSkip {
				t.Fatalf("got pos=%q out=%q n=%d skip=%v, want pos=%q out=%q n=%d skip=%v",
					pos, *out, *n, *skip, tc.wantPos, tc.wantOut, tc.wantN, tc.wantSkip)
			}
		})
	}
}

func TestCLIHelpGoesToStdout(t *testing.T) {
	fs := newFlagSet("test", "Usage: klinecast test\n\nExamples:\n  klinecast test\n")
	fs.String("out-dir", ".", "where to write")
	var stdout bytes.Buffer
	_, err := parseFlagsEnv(fs, []string{"-h"}, &stdout, func(string) (string, bool) { return "", false })
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"Usage: klinecast test", "Examples:", "-out-dir", "KLINECAST_OUT_DIR"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help does not contain %q:\n%s", want, stdout.String())
		}
	}
}

func TestCLIEnvName(t *testing.T) {
	for in, want := range map[string]string{"out-dir": "KLINECAST_OUT_DIR", "symbols": "KLINECAST_SYMBOLS", "skip-bad": "KLINECAST_SKIP_BAD"} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCLIParseTime(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"2024-02-26T00:00:00Z", 1708905600000, false},
		{"2024-02-26T01:00:00+01:00", 1708905600000, false},
		{"2024-02-26", 1708905600000, false},
		{"1708905600000", 1708905600000, false},
		{"yesterday", 0, true},
	}
	for _, tc := range tests {
		got, err := parseTime(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseTime(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestCLIParseSpan(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"8d", 8 * 24 * time.Hour, false},
		{"1.5d", 36 * time.Hour, false},
		{"36h", 36 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"d", 0, true},
		{"forever", 0, true},
	}
	for _, tc := range tests {
		got, err := parseSpan(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseSpan(%q) = %s, %v; want %s, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
