package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// writeTo renders the report for people: a header of what was found, the stack as
// parsed (with file:line once symbolized, guilty frame marked, unreliable frames
// flagged), other CPUs' backtraces, then the raw console text.
func (r *Report) writeTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "TITLE: %s\nTYPE: %s\nSIGNATURE: %s", r.Title, r.Type, r.Signature)
	if sf := r.SignatureFrames(); len(sf) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(sf, " <- "))
	}
	b.WriteString("\n")
	if r.Corrupted {
		fmt.Fprintf(&b, "CORRUPTED: %s\n", r.CorruptedReason)
	}
	if r.Arch != "" || r.Kernel != "" {
		fmt.Fprintf(&b, "KERNEL: %s\n", strings.TrimSpace(r.Kernel+" "+r.Arch))
	}
	if r.CPU >= 0 || r.PID >= 0 {
		fmt.Fprintf(&b, "TASK: %s pid %d on CPU %d\n", r.Comm, r.PID, r.CPU)
	}
	if len(r.Frames) > 0 {
		b.WriteString("\nSTACK (guilty frame marked >, ? = unreliable):\n")
		for i, f := range r.Frames {
			mark := "  "
			if i == r.Guilty {
				mark = "> "
			}
			if f.Unreliable {
				mark = " ?"
			}
			name := f.Func
			if f.Inlined {
				name += " (inlined)"
			} else if f.Func != "" {
				name = fmt.Sprintf("%s+0x%x/0x%x", f.Func, f.Off, f.Size)
			} else {
				name = fmt.Sprintf("0x%x", f.PC)
			}
			if f.Module != "" {
				name += " [" + f.Module + "]"
			}
			if f.File != "" {
				name = fmt.Sprintf("%-50s %s:%d", name, f.File, f.Line)
			}
			fmt.Fprintf(&b, "%s %s\n", mark, name)
		}
	}
	for i, o := range r.Others {
		fmt.Fprintf(&b, "\nOTHER BACKTRACE %d:\n%s", i+1, o)
	}
	fmt.Fprintf(&b, "\nCONSOLE (bytes %d-%d):\n", r.Start, r.End)
	b.Write(r.Text)
	if len(r.Text) > 0 && r.Text[len(r.Text)-1] != '\n' {
		b.WriteByte('\n')
	}
	return b.WriteTo(w)
}
