package report

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

// Streaming parse: a console log of any size is read in chunks and only a window of it is
// kept: the lines of a report that may still be growing, or a few lines of context when
// no report is open. Memory is bounded by maxWindow, whatever the log's size.
const (
	readChunk = 1 << 20
	// maxWindow bounds one report's text; a report still open at that size (a guest
	// printing a stack forever) is emitted as it is and marked truncated.
	maxWindow = 8 << 20
	// settleLines: a report is final once this many lines follow it (a panic can still
	// join an oops right after its end marker).
	settleLines = 8
	// contextLines are kept before a window's end when nothing is open: the "cut here"
	// banner or KASAN's "====" line that a report starting in the next chunk owns.
	contextLines = 3
)

// ParseReader reads a console log from r and calls fn with every report, in order, as
// soon as it is complete; Start and End are offsets into the whole stream. It returns
// fn's first error, or r's error other than io.EOF.
func ParseReader(r io.Reader, fn func(*Report) error) error {
	return parseReader(r, fn, readChunk)
}

// parseReader is ParseReader processing every chunk bytes (tests use small ones).
func parseReader(r io.Reader, fn func(*Report) error, readChunk int) error {
	p := &streamParser{fn: fn}
	buf := make([]byte, 0, 2*readChunk)
	for {
		if cap(buf)-len(buf) < readChunk {
			// Grow only for an open report; otherwise compact keeps buf small.
			nb := make([]byte, len(buf), 2*len(buf)+readChunk)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf) : len(buf)+readChunk])
		buf = buf[:len(buf)+n]
		eof := errors.Is(err, io.EOF)
		if err != nil && !eof {
			return err
		}
		if len(buf) >= readChunk || eof {
			var perr error
			if buf, perr = p.process(buf, eof); perr != nil {
				return perr
			}
		}
		if eof {
			return nil
		}
	}
}

type streamParser struct {
	fn   func(*Report) error
	base int // stream offset of the window's first byte
	st   state
	done int // stream offset where the last emitted report ended
}

// process parses the window and returns what must be kept of it (moved to its front).
func (p *streamParser) process(buf []byte, eof bool) ([]byte, error) {
	work := buf
	if !eof {
		nl := bytes.LastIndexByte(buf, '\n')
		if nl < 0 && len(buf) < maxWindow {
			return buf, nil // not one whole line yet
		}
		if nl >= 0 {
			work = buf[:nl+1]
		}
	}
	keep := 0 // bytes of work already dealt with
	if start, ok := findStartSeen(work, 0, p.st.kernelSeen); !ok {
		keep = tailStart(work, contextLines)
	} else {
		from := lineStartBefore(work, start, contextLines)
		if !p.st.kernelSeen && hasTimestamp(work[:from], -1) {
			p.st.kernelSeen = true // the kernel ran before what is parsed now
		}
		reports := parseState(work[from:], &p.st)
		keep = tailStart(work, contextLines)
		for i, r := range reports {
			final := eof || linesAfter(work, from+r.End, timedText(r.Text)) >= settleLines
			if !final && len(work)-from-r.Start >= maxWindow {
				final = true
				if !r.Corrupted {
					r.Corrupted, r.CorruptedReason = true, "truncated: the report exceeds the parser's window"
				}
			}
			if !final {
				// Keep it and its banner lines, but never an emitted report's lines.
				keep = max(lineStartBefore(work, from+r.Start, contextLines), p.done-p.base, 0)
				break
			}
			r.Start += p.base + from
			r.End += p.base + from
			r.Text = append([]byte(nil), r.Text...)
			p.st.reported = true
			if r.Corrupted && strings.HasPrefix(r.CorruptedReason, "interleaved") {
				p.st.interleaved = true
			}
			p.done = r.End
			if err := p.fn(r); err != nil {
				return buf, err
			}
			keep = max(keep, r.End-p.base)
			if i == len(reports)-1 {
				keep = max(keep, tailStart(work, contextLines))
			}
		}
	}
	if !p.st.kernelSeen && keep > 0 && hasTimestamp(work[:keep], 64) {
		p.st.kernelSeen = true
	}
	p.base += keep
	n := copy(buf, buf[keep:])
	return buf[:n], nil
}

// tailStart returns the offset of the last n lines of b (b ends with a newline or EOF).
func tailStart(b []byte, n int) int {
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := 0; i < n; i++ {
		nl := bytes.LastIndexByte(b[:end], '\n')
		if nl < 0 {
			return 0
		}
		end = nl
	}
	return end + 1
}

// lineStartBefore returns the offset of the line n lines before the one holding off.
func lineStartBefore(b []byte, off, n int) int {
	pos := off
	for i := 0; i <= n; i++ {
		nl := bytes.LastIndexByte(b[:pos], '\n')
		if nl < 0 {
			return 0
		}
		if i == n {
			return nl + 1
		}
		pos = nl
	}
	return pos
}

// linesAfter counts the lines after off that could still end or extend a report, up to
// settleLines: blank lines never do, nor lines without a timestamp after a timed report
// (user space; the extent skips both).
func linesAfter(b []byte, off int, timed bool) int {
	n := 0
	for off < len(b) && n < settleLines {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			break
		}
		l := b[off : off+i]
		sp := prefixSpans(l)
		if len(bytes.TrimSpace(l[sp.rest:])) > 0 && (!timed || sp.tsEnd > 0) {
			n++
		}
		off += i + 1
	}
	return n
}

// timedText: the first line of a report's text has a printk timestamp.
func timedText(text []byte) bool {
	end := bytes.IndexByte(text, '\n')
	if end < 0 {
		end = len(text)
	}
	return prefixSpans(text[:end]).tsEnd > 0
}

// hasTimestamp reports whether one of the first n lines of b (all when n < 0) has a
// printk timestamp past boot.
func hasTimestamp(b []byte, n int) bool {
	for i := 0; (n < 0 || i < n) && len(b) > 0; i++ {
		end := bytes.IndexByte(b, '\n')
		if end < 0 {
			end = len(b)
		}
		if ts, _ := stripPrefix(b[:end]); ts != "" && strings.Trim(ts, "0.") != "" {
			return true
		}
		b = b[min(end+1, len(b)):]
	}
	return false
}
