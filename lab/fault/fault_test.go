package fault

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/go-multierror"
)

type parseErr struct{ line int }

func (p *parseErr) Error() string   { return fmt.Sprintf("line %d", p.line) }
func (p *parseErr) FaultKind() Kind { return Input }

func TestKindOf(t *testing.T) {
	plain := errors.New("socket closed")
	var me *multierror.Error
	me = multierror.Append(me, Infraf("qemu died"), Inputf("unknown key %q", "x"))
	for _, tc := range []struct {
		name string
		err  error
		kind Kind
		exit int
	}{
		{"nil", nil, None, ExitOK},
		{"plain error is infra", plain, Infra, ExitInfra},
		{"input", Inputf("missing %s", "f"), Input, ExitInput},
		{"input wrapped by fmt", fmt.Errorf("matrix: %w", Inputf("bad")), Input, ExitInput},
		{"boot", Bootf("no agent"), Boot, ExitBootFailed},
		{"crash", Crashf("oops"), Crash, ExitCrashed},
		{"kinder type", fmt.Errorf("spec: %w", &parseErr{3}), Input, ExitInput},
		{"multierror prefers input", me, Input, ExitInput},
		{"join prefers input", errors.Join(Bootf("b"), AsInput(plain)), Input, ExitInput},
		{"wrap keeps existing kind", AsInfra(Inputf("bad")), Input, ExitInput},
		{"wrap plain", AsInput(plain), Input, ExitInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := KindOf(tc.err); got != tc.kind {
				t.Errorf("KindOf = %v, want %v", got, tc.kind)
			}
			if got := ExitCode(tc.err); got != tc.exit {
				t.Errorf("ExitCode = %d, want %d", got, tc.exit)
			}
		})
	}
	if AsInput(nil) != nil {
		t.Error("AsInput(nil) != nil")
	}
	e := AsInput(plain)
	if !errors.Is(e, plain) || e.Error() != "socket closed" {
		t.Errorf("wrapping lost the cause: %v", e)
	}
}
