package patch

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/bluekeyes/go-gitdiff/gitdiff"

	"github.com/reprolab/reprolab/lab/kbuild/treepath"
)

// FuzzParse: any mail, mbox or diff bytes parse or fail with an *Error, never panic; what
// parses names only paths inside the tree and hands git apply a diff that parses again.
// Seeds: the testdata mails and the shipped patches.
// Run with: go test ./lab/kbuild/patch -fuzz FuzzParse -fuzztime 30s
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.*")
	shipped, _ := filepath.Glob("../../../reproducers/*/patches/*")
	for _, p := range append(files, shipped...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := Parse("fuzz.mbox", data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for _, p := range ps {
			for _, n := range p.Paths() {
				if _, err := treepath.Clean(n); err != nil {
					t.Fatalf("accepted a path outside the tree: %q", n)
				}
			}
			if _, _, err := gitdiff.Parse(bytes.NewReader(p.Text)); err != nil {
				t.Fatalf("the cleaned diff does not parse again: %v\n%s", err, p.Text)
			}
		}
	})
}
