package kupgrade_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOneNamePerConcept keeps ARCHITECTURE.md's rule true: an exported name
// is declared by one package only, so a concept has one spelling and users
// never convert between twins. Internal packages and programs are not part
// of the API and are left out.
func TestOneNamePerConcept(t *testing.T) {
	declared := map[string][]string{} // name → packages
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch {
			case path != "." && strings.HasPrefix(d.Name(), "."), d.Name() == "testdata", d.Name() == "internal", d.Name() == "examples":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkg := filepath.Dir(path)
		add := func(id *ast.Ident) {
			if id.IsExported() && !slices.Contains(declared[id.Name], pkg) {
				declared[id.Name] = append(declared[id.Name], pkg)
			}
		}
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				if decl.Recv == nil {
					add(decl.Name)
				}
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						add(spec.Name)
					case *ast.ValueSpec:
						for _, id := range spec.Names {
							add(id)
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(declared) < 100 {
		t.Fatalf("found %d exported names: not run from the module root?", len(declared))
	}
	for name, pkgs := range declared {
		if len(pkgs) > 1 {
			slices.Sort(pkgs)
			t.Errorf("%s is declared in %s: define it once, in the lowest package that owns it, or name the different things differently", name, strings.Join(pkgs, ", "))
		}
	}
}
