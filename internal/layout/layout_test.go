package layout

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/klinecast/klinecast/"

// allowedImports lists, per package directory (relative to the module
// root), the klinecast packages its non-test files may import. A package
// not listed fails the test: a new package must state its place.
//
// The node's layout (issue 11), one package per idea, imports one way:
//
//	cmd/klinecast → cluster → actors/httpapi → actors → actors/internal/ingest
//	  → actors/internal/shard → actors/internal/{pinned,lifecycle}
//	  → storage → messages;  actors/aggregate (the pure core) → messages
//
// actors is the facade (Config, Start/Close, Ingest, Klines, the
// supervision tree); ingest owns the router, its partitions and the
// request (Call); shard owns the shard actors, their recovery and their
// snapshots; pinned the pinned workers and the allocation-free mailbox
// (generic); lifecycle the node's life and per-actor counters. Places
// kept for what comes next: actors/{publish,subscribe,ack,health,wsapi,
// metrics,dashboard}, cluster/{placement,handoff,transport,replicate}.
func allowedImports() map[string][]string {
	return map[string][]string{
		"messages":                  {},
		"actors/aggregate":          {"messages"},
		"internal/gen":              {"messages"},
		"internal/layout":           {},
		"internal/testkit":          {}, // any package's tests use it
		"internal/lazyfs":           {}, // a test filesystem
		"storage":                   {"messages"},
		"actors/internal/lifecycle": {},
		"actors/internal/pinned":    {},
		"actors/internal/shard":     {"actors/aggregate", "actors/internal/lifecycle", "storage", "messages"},
		"actors/internal/ingest":    {"actors/internal/shard", "actors/internal/pinned", "actors/internal/lifecycle", "messages"},
		"actors": {"actors/aggregate", "actors/internal/ingest", "actors/internal/shard", "actors/internal/pinned",
			"actors/internal/lifecycle", "storage", "messages"},
		"actors/httpapi": {"actors", "actors/aggregate", "storage", "messages"},
		"cluster":        {"actors", "actors/aggregate", "actors/httpapi", "storage", "messages"},
		"examples/embed": {"actors", "messages"},
		"cmd/klinecast":  {"*"},
	}
}

// forbiddenLibraries lists, per package directory, libraries its non-test
// files must not import (by module path prefix): the pure core does no I/O
// and knows no actor system; the data model and the generic packages stay
// free of the node's infrastructure.
func forbiddenLibraries() map[string][]string {
	infra := []string{"github.com/asynkron/protoactor-go", "github.com/dgraph-io/badger", "net/http", "os"}
	return map[string][]string{
		"messages":                  infra,
		"actors/aggregate":          append(infra, "time", "sync", "log"),
		"actors/internal/lifecycle": {"github.com/asynkron/protoactor-go", "github.com/dgraph-io/badger"},
		"actors/internal/pinned":    {"github.com/dgraph-io/badger"},
		"actors/internal/shard":     {"github.com/dgraph-io/badger", "net/http"},
		"actors/internal/ingest":    {"github.com/dgraph-io/badger", "net/http"},
		"actors":                    {"github.com/dgraph-io/badger", "net/http"},
		"storage":                   {"github.com/asynkron/protoactor-go", "net/http"},
	}
}

func TestLayoutForbiddenLibraries(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for pkg, banned := range forbiddenLibraries() {
		files, err := filepath.Glob(filepath.Join(root, pkg, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", pkg, err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, b := range banned {
					if p == b || strings.HasPrefix(p, b+"/") {
						t.Errorf("%s imports %s, which %s must not use", filepath.Join(pkg, filepath.Base(path)), p, pkg)
					}
				}
			}
		}
	}
}

func TestLayoutImportsPointOneWay(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	allowed := allowedImports()
	fset := token.NewFileSet()
	seen := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); strings.HasPrefix(name, ".") || name == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		rules, ok := allowed[rel]
		if !ok {
			t.Errorf("package %s has no import rule in internal/layout: add one", rel)
			return nil
		}
		seen[rel] = true
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			dep, ok := strings.CutPrefix(p, module)
			if !ok || len(rules) == 1 && rules[0] == "*" {
				continue
			}
			if !contains(rules, dep) {
				t.Errorf("%s imports %s, which the layout forbids (allowed: %v)", filepath.Join(rel, filepath.Base(path)), dep, rules)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range allowed {
		if !seen[pkg] && pkg != "internal/layout" {
			t.Errorf("rule for %s, which has no Go files: remove it", pkg)
		}
	}
}

func TestLayoutEveryPackageHasDocGo(t *testing.T) {
	root, _ := filepath.Abs("../..")
	for pkg := range allowedImports() {
		if _, err := os.Stat(filepath.Join(root, pkg, "doc.go")); err != nil {
			t.Errorf("%s has no doc.go stating what it owns and may import", pkg)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
