#!/usr/bin/env bash
# Install everything reprolab needs on a Debian 12 host (run as root), then fetch Debian's
# prebuilt amd64/arm64 kernels and arm64 busybox into the cache (images/debian-kernels.sh).
# Idempotent: a second run only checks.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pkgs=(
	qemu-system-x86 qemu-system-arm      # the guests
	busybox-static e2fsprogs cryptsetup-bin kmod cpio xz-utils zstd lz4
	build-essential bc bison flex libssl-dev libelf-dev dwarves rsync python3
	gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu   # arm64 kernels
	linux-source-6.1                      # the kernel CI builds
	llvm crash                            # symbolization, vmcore analysis
	chromium libxml2-utils                # HTML report rendering, JUnit XSD check (xmllint)
	git ca-certificates
	postgresql                            # the shared results DB and job queue (tests, multi-host labs)
	ccache                                # cheap incremental kernel rebuilds (bisection steps)
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup-host: installing ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! command -v go >/dev/null; then
	echo "setup-host: Go is not installed: install Go 1.26 from https://go.dev/dl and put it on PATH" >&2
	exit 1
fi
"$here/debian-kernels.sh"
