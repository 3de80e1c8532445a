#!/usr/bin/env bash
# Produce real crash-report console logs for lab/report's tests: boot Debian's prebuilt
# 6.1 kernels (images/debian-kernels.sh) in QEMU/TCG with a busybox initramfs holding
# rlcrash.ko (./rlcrash, built here against Debian's headers), provoke one or more crashes
# and keep the serial console.
#
#   gen.sh OUTDIR ARCH NAME CASES [CPU] [SECS]
#     ARCH  amd64 | arm64
#     CASES comma-separated rl.case steps (see init.sh): null, bug, warn, sysrq-c, ...
#     CPU   pin the trigger to this CPU (taskset), to vary CPU numbers between runs
#
# KERNEL=path boots another kernel (a reprolab kbuild bzImage/Image, e.g. v4.11) instead
# of Debian's; rlcrash.ko is then left out (it is built for Debian's 6.1), so only the
# sysrq-* steps apply, unless KMOD_TREE=<that kernel's build tree> is given to build
# rlcrash against it (the KASAN/UBSAN kernel of kasan.sh).
#
# Needs: qemu-system-{x86_64,aarch64}, linux-headers-<ver>-amd64 (apt), and for arm64 the
# arm64 headers unpacked under CACHE/debian/arm64hdr (see build_module) plus
# gcc-aarch64-linux-gnu.
set -euo pipefail
out=$1 arch=$2 name=$3 cases=$4 cpu=${5:-} secs=${6:-8}
here=$(cd "$(dirname "$0")" && pwd)
cache=${REPROLAB_CACHE:-$HOME/.cache/reprolab}
deb=$cache/debian/$arch
kernel=${KERNEL:-$(ls "$deb"/boot/vmlinuz-* | head -1)}
ver=$(ls "$deb"/boot/vmlinuz-* | head -1)
ver=${ver##*/vmlinuz-}
# one work dir (module, initramfs) per kernel tree rlcrash is built against
work=$cache/report-gen/$arch${KERNEL:+-kernel}${KMOD_TREE:+-$(basename "$(dirname "$KMOD_TREE")")}
mkdir -p "$work" "$out"

build_module() {
	local b=$work/rlcrash
	# rebuilt when the source changed, or the kernel it was built against was rebuilt
	[ -f "$b/rlcrash.ko" ] && [ "$b/rlcrash.ko" -nt "$here/rlcrash/rlcrash.c" ] &&
		{ [ -z "${KMOD_TREE:-}" ] || [ "$b/rlcrash.ko" -nt "$KMOD_TREE/vmlinux" ]; } && return 0
	rm -rf "$b" && cp -r "$here/rlcrash" "$b"
	if [ -n "${KMOD_TREE:-}" ]; then
		make -s -C "$KMOD_TREE" M="$b" modules
	elif [ "$arch" = amd64 ]; then
		make -s -C "/usr/src/linux-headers-$ver" M="$b" modules
	else
		# Debian's arm64 headers package, unpacked (not installed); its scripts link is
		# pointed at the host's (amd64) linux-kbuild so the host tools run here.
		local h=$cache/debian/arm64hdr/usr/src/linux-headers-$ver
		if [ ! -d "$h" ]; then
			(cd "$cache/debian/debs" && apt-get download -q "linux-headers-$ver:arm64")
			dpkg-deb -x "$cache"/debian/debs/linux-headers-"$ver"_*_arm64.deb "$cache/debian/arm64hdr"
			ln -sfn /usr/lib/linux-kbuild-6.1/scripts "$h/scripts"
			ln -sfn /usr/lib/linux-kbuild-6.1/tools "$h/tools"
		fi
		make -s -C "$h" M="$b" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- \
			DEB_BUILD_ARCH=amd64 DEB_HOST_ARCH=arm64 DEB_HOST_GNU_TYPE=aarch64-linux-gnu modules
	fi
}

build_initramfs() {
	local r=$work/root
	rm -rf "$r" && mkdir -p "$r"/{bin,proc,sys,dev}
	if [ "$arch" = amd64 ]; then cp /bin/busybox "$r/bin/busybox"; else cp "$deb/bin/busybox" "$r/bin/busybox"; fi
	ln -s busybox "$r/bin/sh"
	cp "$here/init.sh" "$r/init" && chmod +x "$r/init"
	[ -n "${KERNEL:-}" ] && [ -z "${KMOD_TREE:-}" ] || cp "$work/rlcrash/rlcrash.ko" "$r/"
	(cd "$r" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initramfs.gz"
}

[ -n "${KERNEL:-}" ] && [ -z "${KMOD_TREE:-}" ] || build_module
build_initramfs
# APPEND= adds kernel parameters (kmemleak.verbose=1, earlyprintk=serial); REBOOT=1 lets
# the guest reboot (the "unexpected kernel reboot" case), so the run ends by timeout.
append="nokaslr rl.case=$cases rl.secs=$secs panic=-1 ${cpu:+rl.cpu=$cpu} ${APPEND:-}"
noreboot=-no-reboot limit=180
[ -z "${REBOOT:-}" ] || noreboot= limit=40
limit=${LIMIT:-$limit} # LIMIT= seconds for cases that never end (a netdev waiting forever)
if [ "$arch" = amd64 ]; then
	qemu=(qemu-system-x86_64 -accel tcg,thread=multi -cpu qemu64 -smp 2 -m 512
		-append "console=ttyS0 $append")
else
	qemu=(qemu-system-aarch64 -M virt -cpu cortex-a57 -accel tcg,thread=multi -smp 2 -m 512
		-append "console=ttyAMA0 $append")
fi
timeout $limit "${qemu[@]}" -kernel "$kernel" -initrd "$work/initramfs.gz" \
	-display none -serial stdio -monitor none $noreboot </dev/null \
	| tr -d '\r' > "$out/$name.log" || true
echo "gen: $out/$name.log ($(wc -c < "$out/$name.log") bytes)"
