package report

import (
	"fmt"
	"io"
)

func (r *Report) writeTo(w io.Writer) (int64, error) {
	n, err := fmt.Fprintf(w, "TITLE: %s\nTYPE: %s\nSIGNATURE: %s\n\n%s", r.Title, r.Type, r.Signature, r.Text)
	return int64(n), err
}
