package storage

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsContract enforces doc.go: storage imports the standard
// library, messages and third-party modules only, never another klinecast
// package (actors, cluster, cmd...).
func TestImportsContract(t *testing.T) {
	const module = "github.com/klinecast/klinecast/"
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, module) && path != module+"messages" {
				t.Errorf("%s imports %s: storage may import only messages from klinecast", name, path)
			}
		}
	}
}
