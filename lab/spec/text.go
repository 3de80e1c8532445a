package spec

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// CheckText rejects what is not a YAML spec before the YAML parser sees it, with a message
// a user can act on: an empty file (or one holding only comments) is "empty", not the
// parser's "EOF"; binary data (a NUL or a byte that is not UTF-8, e.g. a kernel image
// given as the spec) is named with its line, not as a bare "control characters".
func CheckText(data []byte) error {
	line := 1
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		if r == 0 || (r == utf8.RuneError && size == 1) {
			return fmt.Errorf("line %d: binary data (byte 0x%02x at offset %d): this is not a YAML text file", line, data[off], off)
		}
		if r == '\n' {
			line++
		}
		off += size
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' && !bytes.Equal(l, []byte("---")) {
			return nil
		}
	}
	return errEmpty
}

var errEmpty = errors.New("the file is empty (nothing but blank lines or comments)")
