// Package strictyaml is the one way the lab reads its YAML specs (reproducers, matrices,
// kernels, probes): one document, no unknown keys anywhere — also below types with their
// own UnmarshalYAML, where yaml.v3 forgets KnownFields — and every error a *Error with the
// file and line and, for a misspelt key, the key it probably meant. An empty file and
// binary garbage get messages of their own instead of yaml.v3's.
//
// Errors are bad input (lab/fault): the user fixes the file, nothing was run.
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/reprolab/reprolab/lab/fault"
)

// Error is a spec file the user must fix.
type Error struct {
	File string // "" when decoding bytes of no file
	Line int    // 0 when the error has no line
	Msg  string
	err  error // ErrEmpty, for errors.Is
}

// ErrEmpty is an empty spec file: callers add what the spec needs (errors.Is).
var ErrEmpty = errors.New("the file is empty (nothing but blank lines or comments)")

func (e *Error) Unwrap() error { return e.err }

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// FaultKind makes every Error bad input for lab/fault.
func (e *Error) FaultKind() fault.Kind { return fault.Input }

// Load reads path and decodes it into v (see Decode).
func Load(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fault.Inputf("%w", err)
	}
	return Decode(path, data, v)
}

// Decode decodes one YAML document from data into v, a pointer to a struct. file names
// the data in errors.
func Decode(file string, data []byte, v any) error {
	if line, msg := notText(data); msg != "" {
		return &Error{File: file, Line: line, Msg: msg}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &Error{File: file, Msg: ErrEmpty.Error(), err: ErrEmpty}
		}
		return fromYAML(file, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return &Error{File: file, Msg: ErrEmpty.Error(), err: ErrEmpty}
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return &Error{File: file, Msg: ErrEmpty.Error(), err: ErrEmpty}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return &Error{File: file, Line: extra.Line, Msg: "more than one YAML document (one spec per file)"}
	}
	if root.Kind != yaml.MappingNode {
		return &Error{File: file, Line: root.Line, Msg: fmt.Sprintf("want a mapping of keys (%s), not a %s", strings.Join(fieldNames(reflect.TypeOf(v)), ", "), kindName(root))}
	}
	if err := checkKeys(file, root, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(v); err != nil {
		return fromYAML(file, err)
	}
	return nil
}

// notText finds what makes data binary rather than YAML text: invalid UTF-8 or a control
// character, with its line.
func notText(data []byte) (int, string) {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1, r < 0x20 && r != '\t' && r != '\r' && r != '\n':
			return line, fmt.Sprintf("binary data (byte 0x%02x at offset %d): this is not a YAML text file", data[i], i)
		case r == '\n':
			line++
		}
		i += size
	}
	return 0, ""
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// fromYAML turns yaml.v3's errors ("yaml: line 3: ...", "yaml: unmarshal errors:\n
// line 4: cannot unmarshal ...", a custom UnmarshalYAML's "line 5: bad size") into
// *Error with the line pulled out.
func fromYAML(file string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		first := parseLine(file, te.Errors[0])
		for _, more := range te.Errors[1:] {
			first.Msg += "; " + more
		}
		return first
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	return parseLine(file, err.Error())
}

func parseLine(file, msg string) *Error {
	msg = strings.TrimSpace(msg)
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: n, Msg: tidy(m[2])}
	}
	return &Error{File: file, Msg: tidy(strings.TrimPrefix(msg, "yaml: "))}
}

var cannotRE = regexp.MustCompile("cannot unmarshal !!(\\w+) `([^`]*)` into (\\S+)")

// tidy says yaml.v3's type errors in the spec's terms.
func tidy(msg string) string {
	return cannotRE.ReplaceAllStringFunc(msg, func(s string) string {
		m := cannotRE.FindStringSubmatch(s)
		return fmt.Sprintf("%q is a %s, want %s", m[2], yamlKind(m[1]), goKind(m[3]))
	})
}

func yamlKind(tag string) string {
	switch tag {
	case "str":
		return "string"
	case "seq":
		return "list"
	case "map":
		return "mapping"
	case "int":
		return "whole number"
	case "float":
		return "number"
	}
	return tag
}

func goKind(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case strings.HasPrefix(t, "uint"):
		return "a whole number ≥ 0"
	case strings.HasPrefix(t, "int"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "a string"
	}
	return "a " + t[strings.LastIndex(t, ".")+1:]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "single value"
	}
	return "value"
}

// field is a struct field as YAML names it.
type field struct {
	name string
	typ  reflect.Type
}

// fields lists t's YAML keys in declaration order, inline structs flattened, as yaml.v3
// names them (the tag, or the lower-cased field name).
func fields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			if it := deref(f.Type); it.Kind() == reflect.Struct {
				out = append(out, fields(it)...)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name, f.Type})
	}
	return out
}

func fieldNames(t reflect.Type) []string {
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for _, f := range fields(t) {
		names = append(names, f.name)
	}
	return names
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// checkKeys rejects mapping keys that name no field of t, down through lists, maps and
// nested structs. path is where n sits ("guest", "axes.kernel[0].source").
func checkKeys(file string, n *yaml.Node, t reflect.Type, path string) error {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	t = deref(t)
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // a scalar for a struct: the decoder's type error says it
		}
		byName := map[string]reflect.Type{}
		fs := fields(t)
		for _, f := range fs {
			byName[f.name] = f.typ
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				continue
			}
			ft, ok := byName[k.Value]
			if !ok {
				return &Error{File: file, Line: k.Line, Msg: unknownKey(k.Value, path, fs)}
			}
			if err := checkKeys(file, val, ft, join(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, e := range n.Content {
			if err := checkKeys(file, e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkKeys(file, n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// unknownKey says which key is wrong, where, and what it probably meant.
func unknownKey(key, path string, fs []field) string {
	where := ""
	if path != "" {
		where = " in " + path
	}
	var names []string
	for _, f := range fs {
		names = append(names, f.name)
	}
	if m := Suggest(key, names); m != "" {
		return fmt.Sprintf("unknown key %q%s (did you mean %q?)", key, where, m)
	}
	return fmt.Sprintf("unknown key %q%s (keys here: %s)", key, where, strings.Join(names, ", "))
}

// Suggest is the candidate closest to s by edit distance (adjacent swaps count as one
// edit), or "" when none is close enough to be a likely typo.
func Suggest(s string, candidates []string) string {
	limit := max(2, len(s)/3)
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for _, c := range candidates {
		if d := distance(strings.ToLower(s), strings.ToLower(c)); d <= limit {
			cs = append(cs, cand{c, d})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].d < cs[j].d })
	if len(cs) == 0 {
		return ""
	}
	return cs[0].name
}

// distance is the optimal-string-alignment edit distance: insertions, deletions,
// substitutions and swaps of adjacent characters.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
