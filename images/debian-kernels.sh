#!/usr/bin/env bash
# Fetch Debian bookworm's prebuilt kernels (amd64, arm64) and arm64 busybox-static with apt
# and unpack them, without installing, into the reprolab cache. The host stays untouched:
# packages are extracted with dpkg-deb, so no initramfs hooks run and no bootloader is touched.
#
#   images/debian-kernels.sh [CACHE]        (default: ${REPROLAB_CACHE:-~/.cache/reprolab})
#
# Result:  CACHE/debian/<arch>/boot/vmlinuz-<ver>
#          CACHE/debian/<arch>/lib/modules/<ver>/
#          CACHE/debian/arm64/bin/busybox        (the amd64 busybox comes from the host package)
set -euo pipefail
cache=${1:-${REPROLAB_CACHE:-$HOME/.cache/reprolab}}
dest=$cache/debian
mkdir -p "$dest/debs"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	dpkg --add-architecture arm64
	apt-get update -q
fi
# The meta packages (linux-image-amd64) only depend on the versioned image package;
# resolve that name so the download is the real kernel.
real_pkg() { apt-cache depends "$1" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
amd=$(real_pkg linux-image-amd64)
arm=$(real_pkg linux-image-arm64:arm64)
[ -n "$amd" ] && [ -n "$arm" ] || { echo "debian-kernels: cannot resolve linux-image-amd64/arm64 (run apt-get update)" >&2; exit 1; }
arm=${arm%:arm64}
cd "$dest/debs"
for p in "$amd:amd64" "$arm:arm64" "busybox-static:arm64"; do
	name=${p%:*}; arch=${p##*:}
	ls "${name}"_*_"${arch}".deb >/dev/null 2>&1 || apt-get download -q "$p"
done
extract() { # deb arch
	local stamp="$dest/$2/.$(basename "$1").done"
	[ -f "$stamp" ] && return 0
	mkdir -p "$dest/$2"
	dpkg-deb -x "$1" "$dest/$2"
	touch "$stamp"
}
extract "$(ls "${amd}"_*_amd64.deb)" amd64
extract "$(ls "${arm}"_*_arm64.deb)" arm64
extract "$(ls busybox-static_*_arm64.deb)" arm64
for a in amd64 arm64; do
	ls "$dest/$a"/boot/vmlinuz-* "$dest/$a"/lib/modules/
done
