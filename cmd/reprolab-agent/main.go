//go:build linux

// Command reprolab-agent is the guest side of reprolab: PID 1 of the test initramfs, the SSH
// server the host drives the guest through, and a few setup helpers the reproducers call.
//
// One static binary plays every part, chosen by how it is invoked:
//
//	/init                          as PID 1: mounts, modules, then supervises "/init serve"
//	/init serve                    SSH server on the virtio-serial port org.reprolab.agent
//	reprolab-agent dmcrypt-swap <dev|serial:NAME> [dm-name]
//	reprolab-agent mount-ext4 <dev|serial:NAME> <dir>
//	reprolab-agent fill-tmpfs <dir> <size-MiB> <tmpfs-MiB>
//	reprolab-agent loop [-n N] [-d DURATION] <command>
//	reprolab-agent resolve serial:NAME
//	reprolab-agent info
//	reprolab-agent modules
//
// PID 1 only mounts, loads modules, reaps and restarts the server: if it ran commands itself,
// its reaping of orphans would race the command runner for exit statuses. The server starts
// before the modules are in: it answers once its virtio-serial port exists, and the
// commands it runs wait for the rest (modules.go).
package main

import (
	"fmt"
	"os"
)

func main() {
	if os.Getpid() == 1 {
		runInit() // never returns
	}
	args := os.Args[1:]
	if len(args) == 0 {
		usage()
		os.Exit(2)
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve()
	case shimCommand:
		err = runShim(args[1:])
	case "dmcrypt-swap":
		err = cmdDmcryptSwap(args[1:])
	case "mount-ext4":
		err = cmdMountExt4(args[1:])
	case "fill-tmpfs":
		err = cmdFillTmpfs(args[1:])
	case "loop":
		err = cmdLoop(args[1:])
	case "reseed":
		err = cmdReseed(args[1:])
	case "resolve":
		err = cmdResolve(args[1:])
	case "info":
		err = cmdInfo()
	case "modules":
		err = cmdModules(args[1:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "reprolab-agent: unknown command %q\n", args[0])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "reprolab-agent %s: %v\n", args[0], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: reprolab-agent <command> [args]
  dmcrypt-swap <dev|serial:NAME> [dm-name]   swap on dm-crypt (aes-xts-plain64, random key); prints the dm device
  mount-ext4 <dev|serial:NAME> <dir>         mkdir -p dir and mount the ext4 file system there
  fill-tmpfs <dir> <size-MiB> <tmpfs-MiB>    mount a tmpfs and fill it with size-MiB files of 1 MiB of random data
  loop [-n N] [-d DURATION] <command>        run sh -c command N times or for DURATION, one progress line per iteration
  reseed < seed [authorized_keys line]       after a snapshot restore: new randomness and a new client key
  resolve serial:NAME                        print the /dev node of the virtio disk with that serial
  info                                       kernel version, swaps and mounts
  modules                                    wait until /init has loaded every module; print what it did
  serve                                      the SSH server (started by /init)
`)
}
