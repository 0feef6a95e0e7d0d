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
func allowedImports() map[string][]string {
	return map[string][]string{
		"messages":         {},
		"actors/aggregate": {"messages"},
		"internal/gen":     {"messages"},
		"internal/layout":  {},
		"internal/lazyfs":  {},
		"storage":          {"messages"},
		"actors":           {"actors/aggregate", "storage", "messages"},
		"actors/httpapi":   {"actors", "actors/aggregate", "storage", "messages"},
		"cluster":          {"actors", "actors/aggregate", "actors/httpapi", "storage", "messages"},
		"examples/embed":   {"actors", "messages"},
		"cmd/klinecast":    {"*"},
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
