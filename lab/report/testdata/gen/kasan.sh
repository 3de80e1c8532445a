#!/usr/bin/env bash
# Build the small KASAN + UBSAN x86-64 kernel used for the KASAN/UBSAN test logs (Debian's
# kernels have neither): Debian's linux-source-6.1, tinyconfig + kasan.config, waiting
# for lab/kbuild's make.lock so only one kernel build runs on the machine. Then
#   KERNEL=$tree/arch/x86/boot/bzImage KMOD_TREE=$tree gen.sh OUT amd64 NAME uaf|oob|shift|bounds
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${REPROLAB_CACHE:-$HOME/.cache/reprolab}
dir=$cache/report-gen/kasan
tree=$dir/linux-source-6.1
mkdir -p "$dir"
[ -d "$tree" ] || tar -C "$dir" -xf /usr/src/linux-source-6.1.tar.xz
cd "$tree"
make -s tinyconfig
scripts/kconfig/merge_config.sh -m .config "$here/kasan.config" >/dev/null
make -s olddefconfig
mkdir -p "$cache/kbuild"
flock "$cache/kbuild/make.lock" nice make -j2 bzImage modules_prepare
echo "kasan.sh: $tree/arch/x86/boot/bzImage"
