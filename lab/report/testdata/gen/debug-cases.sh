#!/usr/bin/env bash
# Run the debug-kernel cases of cases3.txt (debug.sh's kernel) through gen.sh into OUTDIR.
set -euo pipefail
out=${1:?usage: debug-cases.sh OUTDIR [FILTER]}
filter=${2:-.}
here=$(cd "$(dirname "$0")" && pwd)
tree=${REPROLAB_CACHE:-$HOME/.cache/reprolab}/report-gen/debug/linux-source-6.1
grep -v '^#' "$here/cases3.txt" | grep -E -- "$filter" | while read -r arch name cases cpu secs; do
	[ -z "${UNTIL:-}" ] || [ "$(date +%s)" -lt "$UNTIL" ] || break
	extra="kmemleak.verbose=1"
	reboot=
	case $name in *reboot*) extra="$extra earlyprintk=serial"; reboot=1 ;; esac
	KERNEL=$tree/arch/x86/boot/bzImage KMOD_TREE=$tree APPEND="$extra" REBOOT=$reboot \
		"$here/gen.sh" "$out" "$arch" "$name" "$cases" "$cpu" "${secs:-8}"
done
