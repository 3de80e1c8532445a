#!/usr/bin/env bash
# Build the debug x86-64 kernel used for the lockdep, kmemleak, KFENCE, KASAN, atomic-sleep,
# ODEBUG, usercopy and stack-check test logs (Debian's kernels have none of these on):
# Debian's linux-source-6.1, tinyconfig + debug.config (no ACPI, PCI or net: the build is
# half the size; guests end by reboot -f under QEMU's -no-reboot, and have one CPU, as
# SeaBIOS's MP table lists only the boot CPU), under the machine's heavy-work lock.
# Then
#   KERNEL=$tree/arch/x86/boot/bzImage KMOD_TREE=$tree gen.sh OUT amd64 NAME CASES
#
# debug.sh kcsan builds kcsan.config instead into report-gen/kcsan (KCSAN excludes KASAN;
# it has ACPI, so its guests get both CPUs, which a data race needs).
set -euo pipefail
flavour=${1:-debug}
here=$(cd "$(dirname "$0")" && pwd)
cache=${REPROLAB_CACHE:-$HOME/.cache/reprolab}
dir=$cache/report-gen/$flavour
tree=$dir/linux-source-6.1
mkdir -p "$dir"
[ -d "$tree" ] || nice tar -C "$dir" -xf /usr/src/linux-source-6.1.tar.xz
cd "$tree"
make -s tinyconfig
scripts/kconfig/merge_config.sh -m .config "$here/$flavour.config" >/dev/null
make -s olddefconfig
# Every option asked for must have survived olddefconfig (a missing dependency drops it).
missing=0
while IFS= read -r l; do
	case $l in CONFIG_*=y) grep -qx "$l" .config || { echo "debug.sh: $l dropped"; missing=1; } ;; esac
done < "$here/$flavour.config"
[ $missing = 0 ]
# The machine's heavy-work lock, unless the caller holds it already (debug-all.sh).
lock=(flock /tmp/reprolab-heavy.lock)
[ -z "${REPROLAB_HEAVY_HELD:-}" ] || lock=()
"${lock[@]}" nice make -j2 CC="ccache gcc" bzImage modules_prepare
echo "debug.sh: $tree/arch/x86/boot/bzImage"
