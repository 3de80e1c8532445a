#!/usr/bin/env bash
# Every guest run and kernel build for the newer test logs, in one turn of the machine's
# heavy-work lock (it is taken here, so nothing else waits in between):
#   debug-all.sh OUTDIR [UNTIL]
# 1. cases4.txt on Debian's prebuilt 6.1 kernel (gen.sh), 2. debug.sh's debug kernel,
# 3. cases3.txt on it (debug-cases.sh). Then import.sh OUTDIR adds the logs. UNTIL (a
# date(1) time) stops starting steps after it, so the lock is not held past it.
set -euo pipefail
out=${1:?usage: debug-all.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
until=$(date -d "${2:-tomorrow}" +%s)
left() { [ "$(date +%s)" -lt "$until" ]; }
exec 9>/tmp/reprolab-heavy.lock
flock 9
export REPROLAB_HEAVY_HELD=1
grep -v '^#' "$here/cases4.txt" | while read -r arch name cases cpu secs; do
	extra= reboot=
	case $name in *reboot*) extra="earlyprintk=serial"; reboot=1 ;; esac
	left || exit 0
	APPEND="$extra" REBOOT=$reboot nice "$here/gen.sh" "$out" "$arch" "$name" "$cases" "$cpu" "${secs:-8}"
done
# the build takes about 25 minutes on two busy cores: only when it can finish in time
[ "$(( until - $(date +%s) ))" -gt 2400 ] || exit 0
timeout $(( until - $(date +%s) )) "$here/debug.sh"
UNTIL=$until nice "$here/debug-cases.sh" "$out"
