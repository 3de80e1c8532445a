package repro

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/spec"
)

// TestIterLines feeds the agent loop's progress lines split at every byte boundary a pipe
// might cut them at, with the command's noise around them.
func TestIterLines(t *testing.T) {
	stream := "### iteration 1 started\n### iteration 1: exit 0 in 12.5 ms\nnoise ### iteration 9 started\n" +
		"### iteration 2 started\n### iteration 2: exit 1 in 3 ms\n### iteration x: exit 0 in 1 ms\n### iteration 3 started\n"
	for _, chunk := range []int{1, 3, 7, len(stream)} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			p := &iterLines{notify: make(chan struct{}, 1), last: time.Now()}
			for i := 0; i < len(stream); i += chunk {
				_, _ = p.Write([]byte(stream[i:min(i+chunk, len(stream))]))
			}
			cur, done := p.take()
			if cur != 3 {
				t.Errorf("current iteration %d, want 3", cur)
			}
			var got []string
			for _, d := range done {
				got = append(got, fmt.Sprintf("%d:%d:%v", d.n, d.code, d.guest))
			}
			if want := "1:0:12.5ms 2:1:3ms"; strings.Join(got, " ") != want {
				t.Errorf("iterations %q, want %q", strings.Join(got, " "), want)
			}
			if _, again := p.take(); len(again) != 0 {
				t.Errorf("take returned %d iterations twice", len(again))
			}
		})
	}
}

func TestSetupGroups(t *testing.T) {
	swap := spec.Step{DmcryptSwap: &spec.DmcryptSwap{Disk: "swap"}}
	ext4 := spec.Step{Ext4Mount: &spec.Ext4Mount{Disk: "data", Path: "/mnt/ext4"}}
	ext4b := spec.Step{Ext4Mount: &spec.Ext4Mount{Disk: "data", Path: "/mnt/other"}}
	fill := spec.Step{TmpfsFill: &spec.TmpfsFill{Path: "/mnt/fill", Size: 200 << 20, Readers: 1}}
	shell := spec.Step{Shell: "echo hi"}
	for _, tc := range []struct {
		name  string
		steps []spec.Step
		want  string
	}{
		{"seed: swap and ext4 together, the fill after", []spec.Step{swap, ext4, fill}, "2 1"},
		{"same disk twice: in order", []spec.Step{ext4, ext4b}, "1 1"},
		{"a shell step is a barrier", []spec.Step{swap, shell, ext4}, "1 1 1"},
		{"none", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sizes []string
			for _, g := range setupGroups(tc.steps) {
				sizes = append(sizes, fmt.Sprint(len(g)))
			}
			if got := strings.Join(sizes, " "); got != tc.want {
				t.Fatalf("groups %q, want %q", got, tc.want)
			}
		})
	}
	cmd := groupCommand([]spec.Step{swap, ext4})
	for _, want := range []string{"reprolab-agent dmcrypt-swap serial:swap", "reprolab-agent mount-ext4 serial:data /mnt/ext4", "wait $p0 || s=$?; wait $p1 || s=$?; exit $s"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("group command lacks %q:\n%s", want, cmd)
		}
	}
}
