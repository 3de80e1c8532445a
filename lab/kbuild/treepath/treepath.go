// Package treepath keeps every file a patch or a probe touches inside the kernel tree it
// edits. A path from a patch header or a probe's file: key is user input: "../x", an
// absolute path or a symlink in the tree pointing elsewhere would otherwise let an edit land
// in the shared source cache or any writable file on the host.
package treepath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/reprolab/reprolab/lab/fault"
)

// Error is a path that leaves the tree: bad input (exit 2).
type Error struct {
	Path   string // as given
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("path %q %s: only files inside the kernel tree may be edited", e.Path, e.Reason)
}

// FaultKind makes it bad input for lab/fault.
func (e *Error) FaultKind() fault.Kind { return fault.Input }

// Clean checks rel lexically: relative, and not climbing out with "..". It returns the
// cleaned path.
func Clean(rel string) (string, error) {
	switch {
	case rel == "":
		return "", &Error{Path: rel, Reason: "is empty"}
	case filepath.IsAbs(rel):
		return "", &Error{Path: rel, Reason: "is absolute"}
	case strings.ContainsRune(rel, 0):
		return "", &Error{Path: rel, Reason: "holds a NUL byte"}
	}
	c := filepath.Clean(rel)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", &Error{Path: rel, Reason: "climbs out of the tree with .."}
	}
	return c, nil
}

// Resolve is the host path of rel inside root: rel must pass Clean, and once every symlink
// of its existing part is followed (rel itself need not exist yet: a patch may create it)
// the result must still be inside root, itself resolved.
func Resolve(root, rel string) (string, error) {
	c, err := Clean(rel)
	if err != nil {
		return "", err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("kernel tree %s: %w", root, err)
	}
	// Follow the longest prefix that exists; what does not exist yet cannot be a link.
	existing, rest := filepath.Join(realRoot, c), ""
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = filepath.Dir(existing)
	}
	real, err := filepath.EvalSymlinks(existing)
	if err != nil {
		// A dangling link: where it would write is unknown, so refuse it.
		return "", &Error{Path: rel, Reason: "goes through a dangling symlink"}
	}
	full := filepath.Join(real, rest)
	if !Within(realRoot, full) {
		return "", &Error{Path: rel, Reason: "resolves through a symlink to " + full + ", outside " + realRoot}
	}
	return filepath.Join(root, c), nil
}

// Within reports whether path is root or below it (both clean and absolute).
func Within(root, path string) bool {
	return path == root || strings.HasPrefix(path, strings.TrimSuffix(root, "/")+"/")
}
