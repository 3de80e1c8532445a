package report

import (
	"bytes"
	"strings"
)

// line is one console line with the printk prefixes removed. Offsets are into the log
// so reports can point back at the raw bytes.
type line struct {
	start, end int    // log[start:end] is the raw line without its newline
	text       string // content after timestamp / caller-id / syslog-level prefixes
	ts         string // the printk timestamp, "" if none
	caller     string // CONFIG_PRINTK_CALLER's "T95" (task) or "C0" (CPU context), "" if none
	rule       int8   // 1: known to start no report (kernelStartAt's cache), 0: not asked yet
}

// splitLines cuts log into lines and strips the printk prefixes of each: an optional
// syslog level "<4>", a timestamp "[    4.205252]", and CONFIG_PRINTK_CALLER's "[  T95]"
// or "[    C0]". Guests with both are common; any may be missing.
//
// The log is copied to one string and every line's text is a substring of it: one
// allocation per call instead of several per line (Parse's main cost on big logs).
// Whatever outlives the parse (frame names, comm) is cloned out of it.
func splitLines(log []byte) []line {
	all := string(log)
	lines := make([]line, 0, bytes.Count(log, []byte{'\n'})+1)
	for pos := 0; pos < len(log); {
		end := bytes.IndexByte(log[pos:], '\n')
		next := 0
		if end < 0 {
			end = len(log)
			next = end
		} else {
			end += pos
			next = end + 1
		}
		for end > pos && log[end-1] == '\r' {
			end--
		}
		l := line{start: pos, end: end}
		sp := prefixSpans(log[pos:end])
		if sp.tsEnd > 0 {
			l.ts = all[pos+sp.tsStart : pos+sp.tsEnd]
		}
		if sp.callerEnd > 0 {
			l.caller = all[pos+sp.callerStart : pos+sp.callerEnd]
		}
		l.text = all[pos+sp.rest : end]
		lines = append(lines, l)
		pos = next
	}
	return lines
}

// stripPrefix removes those prefixes by hand rather than with a regexp: it runs on every
// console line, and the regexp was a third of Parse's time.
func stripPrefix(raw []byte) (ts string, rest []byte) {
	sp := prefixSpans(raw)
	return string(raw[sp.tsStart:sp.tsEnd]), raw[sp.rest:]
}

// spans locate the prefixes in a raw line: the timestamp's digits, the caller id, and
// where the text starts (ends are 0 when absent).
type spans struct {
	tsStart, tsEnd, callerStart, callerEnd, rest int
}

func prefixSpans(raw []byte) (sp spans) {
	rest := raw
	if len(rest) > 2 && rest[0] == '<' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i > 1 && i < len(rest) && rest[i] == '>' {
			rest = rest[i+1:]
		}
	}
	off := func(b []byte) int { return len(raw) - len(b) }
	stripped := false
	// User space's output without a newline, or printk's "** N printk messages dropped
	// **", can run into a kernel line: "syzkaller login: [   16.305150] INFO: ...".
	// The kernel line starts at its timestamp.
	if len(rest) > 0 && rest[0] != '[' {
		if p := embeddedTimestamp(rest); p > 0 {
			rest = rest[p:]
		}
	}
	if len(rest) > 0 && rest[0] == '[' {
		if end := bytes.IndexByte(rest, ']'); end > 0 && end < 24 {
			inner := bytes.TrimLeft(rest[1:end], " ")
			if dot := bytes.IndexByte(inner, '.'); dot > 0 && allDigits(inner[:dot]) && allDigits(inner[dot+1:]) && dot+1 < len(inner) {
				sp.tsStart = off(rest) + end - len(inner) // inner ends at the ']'
				sp.tsEnd = sp.tsStart + len(inner)
				rest, stripped = rest[end+1:], true
			}
		}
	}
	if len(rest) > 0 && rest[0] == '[' {
		if end := bytes.IndexByte(rest, ']'); end > 0 && end < 16 {
			inner := bytes.TrimLeft(rest[1:end], " ")
			if len(inner) > 1 && (inner[0] == 'T' || inner[0] == 'C') && allDigits(inner[1:]) {
				sp.callerStart = off(rest) + end - len(inner)
				sp.callerEnd = sp.callerStart + len(inner)
				rest, stripped = rest[end+1:], true
			}
		}
	}
	if stripped && len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	// kmemleak.verbose=1 prints each leak to the console with its pr_fmt on every line
	// ("kmemleak: unreferenced object ...", "kmemleak:     [<...>] func+0x.."): the same
	// report as the one read from /sys/kernel/debug/kmemleak once the prefix is gone.
	if len(rest) > 10 && rest[0] == 'k' && bytes.HasPrefix(rest, kmemleakPrefix) {
		rest = rest[len(kmemleakPrefix):]
	}
	sp.rest = off(rest)
	return sp
}

var kmemleakPrefix = []byte("kmemleak: ")

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// embeddedTimestamp returns where a printk timestamp "[   16.305150]" followed by a space
// starts inside b, or -1.
func embeddedTimestamp(b []byte) int {
	for from := 0; ; {
		i := bytes.IndexByte(b[from:], '[')
		if i < 0 {
			return -1
		}
		i += from
		end := bytes.IndexByte(b[i:], ']')
		if end < 0 {
			return -1
		}
		end += i
		if end-i < 24 && end+1 < len(b) && (b[end+1] == ' ' || b[end+1] == '[') {
			inner := bytes.TrimLeft(b[i+1:end], " ")
			if dot := bytes.IndexByte(inner, '.'); dot > 0 && allDigits(inner[:dot]) && allDigits(inner[dot+1:]) {
				return i
			}
		}
		from = i + 1
	}
}

// embeddedKernelText returns the text after a printk timestamp (and caller id) inside
// t, without allocating: it runs on console lines that hold a '['.
func embeddedKernelText(t string) (string, bool) {
	for from := 1; from < len(t); {
		i := strings.IndexByte(t[from:], '[')
		if i < 0 {
			return "", false
		}
		i += from
		end := strings.IndexByte(t[i:], ']')
		if end < 0 {
			return "", false
		}
		end += i
		inner := strings.TrimLeft(t[i+1:end], " ")
		if dot := strings.IndexByte(inner, '.'); end-i < 24 && dot > 0 && allDigitsS(inner[:dot]) && allDigitsS(inner[dot+1:]) {
			rest := t[end+1:]
			if strings.HasPrefix(rest, "[") {
				if e := strings.IndexByte(rest, ']'); e > 0 && e < 16 {
					c := strings.TrimLeft(rest[1:e], " ")
					if len(c) > 1 && (c[0] == 'T' || c[0] == 'C') && allDigitsS(c[1:]) {
						rest = rest[e+1:]
					}
				}
			}
			return strings.TrimPrefix(rest, " "), true
		}
		from = i + 1
	}
	return "", false
}

func allDigitsS(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}
