package campaign

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/reprolab/reprolab/"

// entry is a function whose callers are restricted, and who may use it.
type entry struct {
	pkg, name string
	allowed   []string // package dirs, or dir/file.go for one file
}

// The layering issue 8 asks for: only this package builds kernels and runs trials
// (`reprolab run` runs one reproducer by hand, outside any campaign).
var restricted = []entry{
	{"lab/repro", "Run", []string{"lab/campaign", "cmd/reprolab/run_cmd.go"}},
	{"lab/kbuild", "Build", []string{"lab/campaign"}},
}

// forbiddenImports: what a package must not import (render only formats: verdicts
// are decided by lab/verdict).
var forbiddenImports = map[string][]string{
	"lab/render": {"lab/verdict"},
}

// requiredImports: the drivers sit on the engine.
var requiredImports = map[string][]string{
	"lab/matrix": {"lab/campaign"},
}

// TestLayering parses every non-test Go file of the module and checks who refers to
// repro.Run and kbuild.Build (called or passed as a value), and the imports above.
func TestLayering(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string]map[string]bool{} // package dir → imported module paths
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "vendor" || (strings.HasPrefix(n, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		dir := filepath.ToSlash(filepath.Dir(rel))
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		if dir == "cmd/reprolab" { // the cobra commands (the guest agent is no command)
			thinCommands(t, fset, f, rel)
		}
		names := map[string]string{} // local name → module-relative import path
		if imports[dir] == nil {
			imports[dir] = map[string]bool{}
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if !strings.HasPrefix(p, module) {
				continue
			}
			p = strings.TrimPrefix(p, module)
			imports[dir][p] = true
			local := filepath.Base(p)
			if im.Name != nil {
				local = im.Name.Name
			}
			names[local] = p
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			for _, e := range restricted {
				if names[x.Name] == e.pkg && sel.Sel.Name == e.name && !allowed(e.allowed, dir, rel) {
					t.Errorf("%s refers to %s.%s: only %s may (go through lab/campaign)", rel, e.pkg, e.name, strings.Join(e.allowed, ", "))
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("read only %d Go files under %s", files, root)
	}
	for pkg, bad := range forbiddenImports {
		for _, b := range bad {
			if imports[pkg][b] {
				t.Errorf("%s imports %s", pkg, b)
			}
		}
	}
	for pkg, need := range requiredImports {
		for _, n := range need {
			if !imports[pkg][n] {
				t.Errorf("%s does not import %s", pkg, n)
			}
		}
	}
}

func allowed(list []string, dir, file string) bool {
	for _, a := range list {
		if a == dir || a == file {
			return true
		}
	}
	return false
}

// maxCommandLines is the quality bar's "no command function over ~60 lines": the CLI
// stays a thin layer over lab/.
const maxCommandLines = 60

func thinCommands(t *testing.T, fset *token.FileSet, f *ast.File, rel string) {
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok {
			continue
		}
		if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n > maxCommandLines {
			t.Errorf("%s: %s is %d lines: move its logic into lab/ (commands stay under %d)", rel, fd.Name.Name, n, maxCommandLines)
		}
	}
}
