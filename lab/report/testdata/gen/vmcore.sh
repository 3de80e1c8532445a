#!/usr/bin/env bash
# Make a real vmcore for CrashBacktraces' test: boot Debian's x86-64 kernel with the
# test-data initramfs (gen.sh builds it), panic it with rl.case=CASES (default
# panic_on_oops,null), and when the console shows the end of the panic, have QEMU write
# the guest's memory as an ELF core (HMP dump-guest-memory), then quit.
#
#   vmcore.sh OUT.vmcore [CASES]       (console goes to OUT.vmcore.log)
set -euo pipefail
out=$1 cases=${2:-panic_on_oops,null}
cache=${REPROLAB_CACHE:-$HOME/.cache/reprolab}
kernel=$(ls "$cache"/debian/amd64/boot/vmlinuz-* | head -1)
initrd=$cache/report-gen/amd64/initramfs.gz
[ -f "$initrd" ] || { echo "vmcore.sh: no $initrd: run gen.sh for amd64 first" >&2; exit 2; }
mon=$(mktemp -u /tmp/rl-mon.XXXXXX)
# panic=0: the guest stays halted after the panic, so its memory can be dumped.
qemu-system-x86_64 -accel tcg,thread=multi -cpu qemu64 -smp 2 -m 512 \
	-kernel "$kernel" -initrd "$initrd" -append "console=ttyS0 nokaslr rl.case=$cases panic=0" \
	-display none -serial "file:$out.log" -monitor "unix:$mon,server,nowait" -no-reboot &
qpid=$!
trap 'kill $qpid 2>/dev/null || true; rm -f "$mon"' EXIT
for _ in $(seq 180); do
	grep -q 'end Kernel panic' "$out.log" 2>/dev/null && break
	sleep 1
done
grep -q 'end Kernel panic' "$out.log" || { echo "vmcore.sh: no panic within 180 s" >&2; exit 1; }
python3 - "$mon" "$out" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
def cmd(c, wait):
    s.sendall((c + "\n").encode())
    time.sleep(wait)
cmd("dump-guest-memory " + sys.argv[2], 0)
# HMP answers with a new prompt when the dump is written.
buf = b""
s.settimeout(300)
while buf.count(b"(qemu)") < 2:
    buf += s.recv(4096)
cmd("quit", 1)
PY
wait $qpid || true
ls -la "$out"
