#!/usr/bin/env bash
# Run the debug-kernel cases of cases3.txt (debug.sh's kernel) through gen.sh into OUTDIR;
# FLAVOUR=kcsan runs cases5.txt on debug.sh kcsan's kernel.
set -euo pipefail
out=${1:?usage: debug-cases.sh OUTDIR [FILTER]}
filter=${2:-.}
here=$(cd "$(dirname "$0")" && pwd)
flavour=${FLAVOUR:-debug}
list=cases3.txt
[ "$flavour" = debug ] || list=cases5.txt
tree=${REPROLAB_CACHE:-$HOME/.cache/reprolab}/report-gen/$flavour/linux-source-6.1
grep -v '^#' "$here/$list" | grep -E -- "$filter" | while read -r arch name cases cpu secs; do
	[ -z "${UNTIL:-}" ] || [ "$(date +%s)" -lt "$UNTIL" ] || break
	# KFENCE only where it is the point: elsewhere it would take KASAN's objects (and
	# report their double free itself); init.sh's kfence-* steps sample every allocation.
	# The leak cases keep debug.config's sampling: booted with KFENCE off, kmemleak
	# found rlcrash's leak in none of 3 runs, with it on in 3 of 3 (cause not known).
	extra="kfence.sample_interval=0" reboot=
	case $name in
	*kfence*) extra="kfence.sample_interval=100" ;;
	*reboot*) extra="$extra earlyprintk=serial"; reboot=1 ;;
	*leak-console*) extra="kmemleak.verbose=1" ;; # the kernel prints the leaks itself
	*leak*) extra= ;;
	esac
	KERNEL=$tree/arch/x86/boot/bzImage KMOD_TREE=$tree APPEND="$extra" REBOOT=$reboot \
		"$here/gen.sh" "$out" "$arch" "$name" "$cases" "$cpu" "${secs:-8}"
done
