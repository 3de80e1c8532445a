package qemu

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// SaveState stops the guest and writes its whole device and memory state to path through
// QEMU's migration stream; the guest stays paused (Cont resumes it). Disks are not in the
// stream: the guest's block devices are flushed, so their files can be copied while it is
// paused. Config.Incoming restores the state into a fresh QEMU with the same Config.
//
// A migration stream rather than savevm into qcow2: it needs no qemu-img (not on every
// lab host) and no qcow2 disks, and one state file serves any number of concurrent trials,
// each restoring onto its own copy of the disks.
func (inst *Instance) SaveState(ctx context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := inst.QMP.Execute(ctx, "stop", nil, nil); err != nil {
		return fmt.Errorf("qemu: stop before saving state: %w", err)
	}
	if err := inst.QMP.Execute(ctx, "migrate", map[string]any{"uri": "exec:cat > " + shellQuote(abs)}, nil); err != nil {
		return fmt.Errorf("qemu: save state: %w", err)
	}
	for {
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := inst.QMP.Execute(ctx, "query-migrate", nil, &st); err != nil {
			return fmt.Errorf("qemu: save state: %w", err)
		}
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("qemu: save state to %s: %s %s", abs, st.Status, st.ErrorDesc)
		}
		select {
		case <-ctx.Done():
			_ = inst.QMP.Execute(context.Background(), "migrate_cancel", nil, nil)
			return ctx.Err()
		case <-inst.done:
			return inst.ExitError()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Cont resumes a paused guest.
func (inst *Instance) Cont(ctx context.Context) error {
	return inst.QMP.Execute(ctx, "cont", nil, nil)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ResumeIncoming waits until a QEMU started with Config.Incoming has loaded the state and
// runs the guest: the stream carries the saved guest's run state, and SaveState stopped it
// first, so the restored guest would otherwise stay paused.
func (inst *Instance) ResumeIncoming(ctx context.Context) error {
	for {
		st, err := inst.Status(ctx)
		if err != nil {
			return fmt.Errorf("qemu: restoring state: %w", err)
		}
		switch st {
		case "running":
			return nil
		case "paused", "postmigrate", "prelaunch":
			return inst.Cont(ctx)
		case "inmigrate":
		default:
			return fmt.Errorf("qemu: restoring state: the guest is %q", st)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-inst.done:
			return inst.ExitError()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
