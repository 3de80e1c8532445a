package qemu

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SerialSysrq sends a break on the serial console followed by key, which the kernel's
// serial magic sysrq (CONFIG_MAGIC_SYSRQ_SERIAL) takes as sysrq-key. It reaches a kernel
// whose user space, agent included, no longer runs; the kernel must still take the UART
// interrupt, and the sysrq mask must allow the key (the lab boots with
// sysrq_always_enabled).
func (inst *Instance) SerialSysrq(key byte) error {
	inst.serialMu.Lock()
	defer inst.serialMu.Unlock()
	if inst.serialIn == nil {
		return errors.New("qemu: serial console closed (QEMU exited)")
	}
	// "C-a b" is the mux chardev's break; the key must follow within 5 s.
	if _, err := inst.serialIn.Write([]byte{0x01, 'b'}); err != nil {
		return fmt.Errorf("qemu: serial break: %w", err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := inst.serialIn.Write([]byte{key}); err != nil {
		return fmt.Errorf("qemu: serial sysrq %c: %w", key, err)
	}
	return nil
}

// KeyboardSysrq presses Alt+SysRq+key on the guest's PS/2 keyboard through QMP send-key:
// the x86 way in when the serial console's break does not get through.
func (inst *Instance) KeyboardSysrq(ctx context.Context, key byte) error {
	if inst.arch != X86_64 {
		return fmt.Errorf("qemu: no keyboard on %s guests", inst.arch)
	}
	keys := []map[string]string{{"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "sysrq"}, {"type": "qcode", "data": string(key)}}
	return inst.QMP.Execute(ctx, "send-key", map[string]any{"keys": keys, "hold-time": 200}, nil)
}

// InjectNMI raises an NMI on every vCPU (x86): it reaches CPUs spinning with interrupts
// off, where no sysrq does.
func (inst *Instance) InjectNMI(ctx context.Context) error {
	return inst.QMP.Execute(ctx, "inject-nmi", nil, nil)
}
