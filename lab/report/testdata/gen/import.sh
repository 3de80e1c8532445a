#!/usr/bin/env bash
# Turn gen-all.sh output into test cases: testdata/linux/<name>.txt = a comment naming the
# run + an empty line + the raw console. Expectations are then filled with
#   go test ./lab/report -run TestParse -update
# and every header diff is reviewed by hand before it is committed.
set -euo pipefail
src=${1:?usage: import.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
dst=$here/../linux
grep -hv "^#" "$here"/cases*.txt | while read -r arch name cases cpu secs; do
	[ -f "$src/$name.log" ] || continue
	[ -f "$dst/$name.txt" ] && continue
	# gen.sh may still be writing it (its guest times out after 180 s)
	[ $(( $(date +%s) - $(stat -c %Y "$src/$name.log") )) -gt 200 ] || continue
	ver=$(grep -m1 -o 'Linux version [^ ]*' "$src/$name.log" | cut -d' ' -f3)
	kernel="Debian $ver"
	case $name in # our own builds of Debian's linux-source-6.1
	dbg-*) kernel="debug.sh kernel (Debian linux-source-6.1 $ver, tinyconfig + gen/debug.config)" ;;
	kcsan-*) kernel="debug.sh kcsan kernel (Debian linux-source-6.1 $ver, tinyconfig + gen/kcsan.config)" ;;
	esac
	{
		echo "# gen.sh $arch $name $cases ${cpu:-} ${secs:-}: $kernel, QEMU TCG, rlcrash.ko"
		echo
		cat "$src/$name.log"
	} > "$dst/$name.txt"
done
