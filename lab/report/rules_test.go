package report

import (
	"strings"
	"testing"
)

// TestLiteralPrefix: every rule's literal prefix really begins its matches.
func TestLiteralPrefix(t *testing.T) {
	for _, c := range []struct{ pat, want string }{
		{`^BUG: KASAN: ([a-z-]+) in `, "BUG: KASAN: "},
		{`^(?:WARNING: |INFO: )possible`, ""},
		{`^Booting the kernel\.?$`, "Booting the kernel"},
		{`^kernel BUG at lib/list_debug\.c`, "kernel BUG at lib/list_debug.c"},
		{`^WARNING:(?:.*? at)? lib/x`, "WARNING:"},
	} {
		if got := literalPrefix(c.pat); got != c.want {
			t.Errorf("literalPrefix(%q) = %q, want %q", c.pat, got, c.want)
		}
	}
}

// TestLongestLiteral: the needle is text every match of the rule contains.
func TestLongestLiteral(t *testing.T) {
	for _, c := range []struct{ pat, want string }{
		{`^WARNING:(?:.*? at)? lib/refcount\.c`, " lib/refcount.c"},
		{`^(?:WARNING: |\[ INFO: |INFO: )possible recursive locking detected`, "possible recursive locking detected"},
		{`^(?:a|b)`, ""},
	} {
		if got := longestLiteral(c.pat); got != c.want {
			t.Errorf("longestLiteral(%q) = %q, want %q", c.pat, got, c.want)
		}
	}
}

// TestQuick: findStart rejects chunks holding none of quick's strings, so every start
// line of the test logs must hold one; and the first-byte index agrees with the rules.
func TestQuick(t *testing.T) {
	for _, path := range cases(t) {
		for _, l := range splitLines(readCase(t, path).log) {
			k, _ := matchStart(l.text)
			if k < 0 {
				continue
			}
			hit := false
			for _, q := range quick {
				hit = hit || strings.Contains(l.text, q)
			}
			if !hit {
				t.Errorf("%s: start line %q holds none of quick's strings", path, l.text)
			}
		}
	}
	for _, line := range []string{"BUG: KASAN: use-after-free in foo+0x1/0x2", "[ INFO: possible recursive locking detected ]",
		"unreferenced object 0xffff888003f3a2c0 (size 88):", "rcu: INFO: rcu_preempt self-detected stall on CPU",
		"Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000"} {
		if k, _ := matchStart(line); k < 0 {
			t.Errorf("matchStart(%q): no rule", line)
		}
	}
}
