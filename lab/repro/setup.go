package repro

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/reprolab/reprolab/lab/spec"
)

// setup runs the spec's setup steps, timing each. Consecutive disk steps (dm-crypt swap,
// ext4 mounts) on different disks are independent and run side by side in one command;
// every other step (a fill needs its swap, a shell step may need anything) waits for
// everything before it. A non-empty Outcome ends the run.
func (r *run) setup(ctx context.Context) (Outcome, error) {
	at := time.Now()
	defer func() { r.res.Timings.SetupSeconds = secs(time.Since(at)) }()
	if o, err := r.waitModules(ctx); o != "" {
		return o, err
	}
	groups := setupGroups(r.cfg.Repro.Setup)
	n := len(r.cfg.Repro.Setup)
	first := 1
	for _, g := range groups {
		var names []string
		for _, s := range g {
			names = append(names, s.String())
		}
		name := strings.Join(names, " ∥ ")
		label := fmt.Sprintf("%d", first)
		if len(g) > 1 {
			label = fmt.Sprintf("%d-%d", first, first+len(g)-1)
		}
		cmd := groupCommand(g)
		r.say("setup %s/%d: %s", label, n, name)
		fmt.Fprintf(r.guestLg, "### setup %s: %s\n$ %s\n", label, name, cmd)
		t := time.Now()
		code, o, err := r.guestRun(ctx, cmd, 0)
		d := time.Since(t)
		r.res.Timings.Setup = append(r.res.Timings.Setup, Step{Step: name, Seconds: secs(d)})
		fmt.Fprintf(r.guestLg, "### setup %s: exit %d in %.2fs\n", label, code, d.Seconds())
		if o != "" {
			return o, err
		}
		if code != 0 {
			return InfraError, fmt.Errorf("setup step %s (%s) exited %d: %s", label, name, code, r.lastGuestOutput())
		}
		first += len(g)
	}
	return "", nil
}

// modulesStep names the wait for late modules in Timings.Setup.
const modulesStep = "modules (loaded after the agent answered)"

// waitModules is setup's step 0 when the guest loads modules after its agent answered
// (cmd/reprolab-agent/modules.go): it waits until they are all in and prints what loading
// them did, so their time shows as a step of its own instead of hiding in the first one.
// Every guest command would wait for them anyway.
func (r *run) waitModules(ctx context.Context) (Outcome, error) {
	if !r.lateModules {
		return "", nil
	}
	const name, cmd = modulesStep, "reprolab-agent modules"
	r.status("setup: waiting for modules")
	fmt.Fprintf(r.guestLg, "### setup 0: %s\n$ %s\n", name, cmd)
	t := time.Now()
	code, o, err := r.guestRun(ctx, cmd, 0)
	d := time.Since(t)
	r.res.Timings.Setup = append(r.res.Timings.Setup, Step{Step: name, Seconds: secs(d)})
	fmt.Fprintf(r.guestLg, "### setup 0: exit %d in %.2fs\n", code, d.Seconds())
	if o != "" {
		return o, err
	}
	if code != 0 {
		return InfraError, fmt.Errorf("waiting for the guest's modules exited %d: %s", code, r.lastGuestOutput())
	}
	return "", nil
}

// setupGroups splits steps into groups run one after the other; the steps of a group are
// independent of each other.
func setupGroups(steps []spec.Step) [][]spec.Step {
	var out [][]spec.Step
	var cur []spec.Step
	disks := map[string]bool{}
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur, disks = nil, map[string]bool{}
	}
	for _, s := range steps {
		disk := diskOf(s)
		if disk == "" || disks[disk] {
			flush()
			if disk == "" {
				out = append(out, []spec.Step{s})
				continue
			}
		}
		cur = append(cur, s)
		disks[disk] = true
	}
	flush()
	return out
}

// diskOf is the disk a step sets up alone, or "" for a step that may depend on others.
func diskOf(s spec.Step) string {
	switch {
	case s.DmcryptSwap != nil:
		return s.DmcryptSwap.Disk
	case s.Ext4Mount != nil:
		return s.Ext4Mount.Disk
	}
	return ""
}

// groupCommand is one shell command running a group's steps concurrently; it fails, naming
// the step, if any of them fails.
func groupCommand(g []spec.Step) string {
	if len(g) == 1 {
		return g[0].Command()
	}
	var b strings.Builder
	for i, s := range g {
		name := strings.Map(func(r rune) rune {
			if strings.ContainsRune("\"$`\\", r) {
				return '_'
			}
			return r
		}, s.String())
		fmt.Fprintf(&b, "(%s || { e=$?; echo \"setup: %s exited $e\" >&2; exit $e; }) & p%d=$!; ", s.Command(), name, i)
	}
	b.WriteString("s=0;")
	for i := range g {
		fmt.Fprintf(&b, " wait $p%d || s=$?;", i)
	}
	b.WriteString(" exit $s")
	return b.String()
}
