package report

import (
	"bytes"
	"regexp"
)

// line is one console line with the printk prefixes removed. Offsets are into the log
// so reports can point back at the raw bytes.
type line struct {
	start, end int    // log[start:end] is the raw line without its newline
	text       string // content after timestamp / caller-id / syslog-level prefixes
	ts         string // the printk timestamp, "" if none
}

// prefixRe matches what printk and consoles put before the message: an optional syslog
// level "<4>", a timestamp "[    4.205252]", and CONFIG_PRINTK_CALLER's "[  T95]" or
// "[    C0]". Guests with both are common; any may be missing.
var prefixRe = regexp.MustCompile(`^(?:<\d+>)?(?:\[\s*(\d+\.\d+)\])?(?:\[\s*[TC]\d+\])?\s?`)

func splitLines(log []byte) []line {
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
		raw := log[pos:end]
		raw = bytes.TrimRight(raw, "\r")
		l := line{start: pos, end: pos + len(raw)}
		if len(raw) > 0 && (raw[0] == '[' || raw[0] == '<') {
			if m := prefixRe.FindSubmatchIndex(raw); m != nil {
				if m[2] >= 0 {
					l.ts = string(raw[m[2]:m[3]])
				}
				raw = raw[m[1]:]
			}
		}
		l.text = string(raw)
		lines = append(lines, l)
		pos = next
	}
	return lines
}
