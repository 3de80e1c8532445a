package qemu

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// IOError is a host I/O error on one of the guest's disks: QEMU stopped the guest
// (werror=stop, rerror=stop) instead of passing the error to it, where it would look like a
// kernel or file system bug.
type IOError struct {
	Disk      string // the spec's disk name
	Path      string // the image file on the host
	Operation string // "read" or "write"
	NoSpace   bool   // ENOSPC: the host file system holding Path is full
	Reason    string // QEMU's strerror text
}

func (e *IOError) Error() string {
	if e.NoSpace {
		return fmt.Sprintf("host disk full (%s): QEMU paused the guest on a %s to its disk %s: %s; free space there (or point TMPDIR elsewhere) and run again", e.Path, e.Operation, e.Disk, e.Reason)
	}
	return fmt.Sprintf("host I/O error on %s (%s, guest disk %s): %s; QEMU paused the guest", e.Path, e.Operation, e.Disk, e.Reason)
}

// ioWatch turns QMP's BLOCK_IO_ERROR events into one IOError and a closed channel.
type ioWatch struct {
	once sync.Once
	ch   chan struct{}
	mu   sync.Mutex
	err  *IOError
}

// IOErrorSeen is closed when QEMU reported a host I/O error on a guest disk.
func (inst *Instance) IOErrorSeen() <-chan struct{} { return inst.io.ch }

// IOError is the first host I/O error QEMU reported, nil if none.
func (inst *Instance) IOError() *IOError {
	inst.io.mu.Lock()
	defer inst.io.mu.Unlock()
	return inst.io.err
}

// watchIOErrors follows QMP events for the life of the connection.
func (inst *Instance) watchIOErrors(disks []Disk) {
	inst.io.ch = make(chan struct{})
	evs, err := inst.QMP.Events(context.Background())
	if err != nil {
		return
	}
	go func() {
		for ev := range evs {
			if ev.Event != "BLOCK_IO_ERROR" {
				continue
			}
			inst.setIOError(ioErrorFrom(ev.Data, disks))
		}
	}()
}

func (inst *Instance) setIOError(e *IOError) {
	inst.io.mu.Lock()
	if inst.io.err == nil {
		inst.io.err = e
	}
	inst.io.mu.Unlock()
	inst.io.once.Do(func() { close(inst.io.ch) })
}

// CheckIOStatus asks QEMU whether the guest is paused on an I/O error (query-status
// "io-error"): the event may have been missed, and a guest that stopped answering should
// be asked why before it is called lost. It returns the error, or nil.
func (inst *Instance) CheckIOStatus(ctx context.Context) *IOError {
	if e := inst.IOError(); e != nil {
		return e
	}
	st, err := inst.Status(ctx)
	if err != nil || st != "io-error" {
		return nil
	}
	// Which disk: query-block's io-status says per device.
	var blocks []struct {
		Device   string `json:"device"`
		IOStatus string `json:"io-status"`
		Inserted struct {
			File string `json:"file"`
		} `json:"inserted"`
	}
	e := &IOError{Disk: "?", Operation: "access", Reason: "QEMU reports run state io-error"}
	if inst.QMP.Execute(ctx, "query-block", nil, &blocks) == nil {
		for _, b := range blocks {
			if b.IOStatus != "" && b.IOStatus != "ok" {
				e.Path, e.Disk = b.Inserted.File, diskName(b.Device, inst.disks)
				e.NoSpace = b.IOStatus == "nospace"
				if e.NoSpace {
					e.Reason = "No space left on device"
				}
				break
			}
		}
	}
	inst.setIOError(e)
	return e
}

func ioErrorFrom(data map[string]any, disks []Disk) *IOError {
	str := func(k string) string { s, _ := data[k].(string); return s }
	e := &IOError{Operation: str("operation"), Reason: str("reason")}
	e.NoSpace, _ = data["nospace"].(bool)
	if e.Reason == "" && e.NoSpace {
		e.Reason = "No space left on device"
	}
	dev := str("device")
	if dev == "" {
		dev = str("node-name")
	}
	e.Disk = diskName(dev, disks)
	for i, d := range disks {
		if dev == driveID(i) || dev == d.Name {
			e.Path = d.Path
		}
	}
	if e.Path == "" {
		e.Path = "drive " + dev
	}
	return e
}

func driveID(i int) string { return fmt.Sprintf("disk%d", i) }

func diskName(dev string, disks []Disk) string {
	for i, d := range disks {
		if dev == driveID(i) || dev == d.Name {
			return d.Name
		}
	}
	return strings.TrimPrefix(dev, "#block")
}
