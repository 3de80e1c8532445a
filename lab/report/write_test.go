package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestWriteTo renders every real report: header lines, the guilty frame marked, the raw
// console text verbatim, and a byte count that matches what was written.
func TestWriteTo(t *testing.T) {
	for _, path := range cases(t) {
		tc := readCase(t, path)
		for _, r := range Parse(tc.log) {
			var b bytes.Buffer
			n, err := r.WriteTo(&b)
			if err != nil || n != int64(b.Len()) {
				t.Fatalf("%s: WriteTo = %d, %v; wrote %d", path, n, err, b.Len())
			}
			out := b.String()
			for _, want := range []string{"TITLE: " + r.Title + "\n", "TYPE: " + string(r.Type) + "\n", "SIGNATURE: " + r.Signature, string(r.Text)} {
				if !strings.Contains(out, want) {
					t.Errorf("%s: output lacks %q", path, want)
				}
			}
			if r.Guilty >= 0 && !strings.Contains(out, ">  "+r.Frames[r.Guilty].Func+"+0x") {
				t.Errorf("%s: guilty frame %s not marked", path, r.Frames[r.Guilty].Func)
			}
			if r.Corrupted && !strings.Contains(out, "CORRUPTED: "+r.CorruptedReason) {
				t.Errorf("%s: corrupted reason missing", path)
			}
		}
	}
}

func TestMarshalJSON(t *testing.T) {
	tc := readCase(t, "testdata/linux/v4.11-x86_64-dd-writeback-null.txt")
	r := Parse(tc.log)[0]
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Title, Signature, Text string
		Frames                 []Frame
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Title != r.Title || back.Signature != r.Signature || back.Text != string(r.Text) || len(back.Frames) != len(r.Frames) {
		t.Errorf("JSON round trip lost data: %s", data[:200])
	}
}
