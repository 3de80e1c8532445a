package repro

import (
	"context"
	"time"
)

// hostIOError asks QEMU whether a guest that stopped answering is paused on a host I/O
// error (a full disk under the run's scratch dir): that is the lab's fault, and saying so
// at once beats "the agent stopped answering".
func (r *run) hostIOError(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if e := r.vm.CheckIOStatus(qctx); e != nil {
		return e
	}
	return nil
}
