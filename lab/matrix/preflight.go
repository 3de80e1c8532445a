package matrix

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-multierror"

	"github.com/reprolab/reprolab/lab/kbuild/kconfig"
	"github.com/reprolab/reprolab/lab/kbuild/patch"
	"github.com/reprolab/reprolab/lab/kbuild/source"
	"github.com/reprolab/reprolab/lab/qemu"
	"github.com/reprolab/reprolab/lab/repro"
)

// Preflight checks everything a run of these cells would read, without downloading,
// building or booting anything: each kernel source (a git ref that exists, a tarball with
// the right sha256, exactly one kind of source), each config fragment, each patch file,
// each prebuilt image (its glob matches one file of the cell's arch). `--dry-run` runs it,
// and a real run runs it before it opens the database or takes the matrix lock, so a typo
// costs seconds and leaves nothing behind. All problems are reported at once.
func (s *Spec) Preflight(ctx context.Context, cells []*Cell) error {
	var errs *multierror.Error
	seen := map[string]bool{}
	once := func(key string) bool {
		if seen[key] {
			return false
		}
		seen[key] = true
		return true
	}
	for _, c := range cells {
		k, err := s.kernel(c)
		if err != nil {
			if once(err.Error()) {
				errs = multierror.Append(errs, err)
			}
			continue
		}
		if k.Prebuilt != nil {
			if once("image " + k.Prebuilt.Image) {
				if err := repro.CheckKernelImage(k.Prebuilt.Image, qemu.Arch(c.Arch)); err != nil {
					errs = multierror.Append(errs, bad("kernel %s (%s): %v", k.Name, c.Arch, err))
				}
			}
			continue
		}
		if once("source " + k.Name) {
			if err := source.Check(ctx, *k.Source); err != nil {
				errs = multierror.Append(errs, bad("kernel %s: %v", k.Name, err))
			}
		}
		for _, name := range k.Fragments {
			if name == "arch" {
				name = "arch-" + c.Arch
			}
			if once("fragment " + name) {
				if _, err := kconfig.LoadFragment(name, k.FragmentDirs); err != nil {
					errs = multierror.Append(errs, bad("axes.config %q: %v", c.Config.Name, err))
				}
			}
		}
		for _, p := range k.Patches {
			if once("patch " + p) {
				if _, err := patch.Load(p); err != nil {
					errs = multierror.Append(errs, bad("axes.patches %q: %v", c.Patches.Name, err))
				}
			}
		}
	}
	if errs.ErrorOrNil() == nil {
		return nil
	}
	errs.ErrorFormat = func(es []error) string {
		if len(es) == 1 {
			return es[0].Error()
		}
		msg := fmt.Sprintf("matrix %s: %d problems:", s.Name, len(es))
		for _, e := range es {
			msg += "\n  " + e.Error()
		}
		return msg
	}
	return bad("%v", errs)
}
