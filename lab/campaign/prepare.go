package campaign

import (
	"context"
	"fmt"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/kbuild"
)

// Prepare checks a kernel's inputs the cheap way before a campaign commits to slow
// builds: it makes only the verified .config (source extracted, compat fixes, patches
// and probes applied, no compiler run), so a patch for another tree or a probe anchor the
// tree lacks is bad input within seconds instead of after a baseline's 20-minute
// compile. Bad input is a fault.Input error; any other failure is returned unclassified.
// Nothing is recorded; a prebuilt kernel has nothing to check.
func (e *Engine) Prepare(ctx context.Context, k Kernel) error {
	if k.Source == nil {
		return nil
	}
	build := e.Build
	if build == nil {
		build = kbuild.Build
	}
	_, err := build(ctx, kbuild.Spec{
		Name: k.Name, Arch: k.Arch, Source: *k.Source, Base: k.Base, Fragments: k.Fragments, Patches: k.Patches, Probes: k.Probes,
		FragmentDirs: k.FragmentDirs, CacheDir: e.cacheDir(), ConfigOnly: true,
		Progress: PrefixWriter(e.progress(), "check "+k.BuildKey()+": "),
	})
	switch {
	case err == nil:
		return nil
	case fault.IsInput(err):
		return fault.Inputf("kernel %s (%s): %w", k.Name, k.BuildKey(), err)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	// Not classified: a tree that does not even configure is the caller's to judge (a
	// validation refuses it as a baseline that does not build).
	return fmt.Errorf("kernel %s (%s) does not configure: %w", k.Name, k.BuildKey(), err)
}
