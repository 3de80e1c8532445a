package strictyaml

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/reprolab/reprolab/lab/fault"
)

type location struct {
	File     string `yaml:"file"`
	Function string `yaml:"function"`
}

type probe struct {
	Name     string `yaml:"name"`
	location `yaml:",inline"`
}

// tagged has its own UnmarshalYAML, below which yaml.v3 does not check keys.
type tagged struct {
	Color string `yaml:"color"`
	line  int
}

func (t *tagged) UnmarshalYAML(n *yaml.Node) error {
	type plain tagged
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*t = tagged(p)
	t.line = n.Line
	return nil
}

type spec struct {
	Name  string `yaml:"name"`
	Size  int    `yaml:"size"`
	Guest struct {
		CPUs   int    `yaml:"cpus"`
		Memory string `yaml:"memory"`
	} `yaml:"guest"`
	Steps []struct {
		Shell string `yaml:"shell"`
		Mount *struct {
			Disk string `yaml:"disk"`
			Path string `yaml:"path"`
		} `yaml:"mount"`
	} `yaml:"steps"`
	Probes map[string]probe `yaml:"probes"`
	Tagged tagged           `yaml:"tagged"`
}

// TestErrors: each testdata file that states "# error: " on its first line must fail
// with exactly that message prefix; the others are checked by hand below.
func TestErrors(t *testing.T) {
	cases := map[string]string{
		"empty.yaml":    "empty.yaml: the file is empty (nothing but blank lines or comments)",
		"comments.yaml": "comments.yaml: the file is empty",
		"nul.yaml":      "nul.yaml:3: binary data (byte 0x00 at offset 16): this is not a YAML text file",
		"badutf8.yaml":  "badutf8.yaml:2: binary data (byte 0xff at offset 8)",
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range files {
		if w := firstError(t, f); w != "" {
			cases[filepath.Base(f)] = w
		}
	}
	if len(cases) < 12 {
		t.Fatalf("only %d cases", len(cases))
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			var s spec
			err = Decode(name, data, &s)
			if err == nil {
				t.Fatalf("decoded without error, want %q", want)
			}
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error:\n  %v\nwant it to start with:\n  %s", err, want)
			}
			var se *Error
			if !errors.As(err, &se) || se.File != name || !fault.IsInput(err) || fault.ExitCode(err) != fault.ExitInput {
				t.Errorf("%T %v: want a *Error naming the file, bad input", err, err)
			}
		})
	}
}

// firstError is what a testdata file's first line says it must fail with, if anything.
func firstError(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	w, _ := strings.CutPrefix(first, "# error: ")
	if w == first {
		return ""
	}
	return w
}

func TestGood(t *testing.T) {
	var s spec
	if err := Load("testdata/good.yaml", &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "ok" || s.Size != 3 || s.Guest.Memory != "64M" || len(s.Steps) != 2 || s.Steps[1].Mount.Path != "/mnt" ||
		s.Probes["p1"].Function != "f" || s.Tagged.Color != "blue" || s.Tagged.line != 9 {
		t.Fatalf("%+v", s)
	}
	if err := Load("testdata/nope.yaml", &s); err == nil || !fault.IsInput(err) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"name", "reproducer", "budget", "axes", "probes", "exclude", "expect_crash", "clean"}
	for in, want := range map[string]string{
		"nmae": "name", "reproduccer": "reproducer", "expect-crash": "expect_crash", "prob": "probes",
		"Budget": "budget", "wibble": "", "x": "",
	} {
		if got := Suggest(in, keys); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
