#!/usr/bin/env bash
# Run every case of cases.txt through gen.sh, one guest at a time, into OUTDIR.
set -euo pipefail
out=${1:?usage: gen-all.sh OUTDIR [FILTER]}
filter=${2:-.}
here=$(cd "$(dirname "$0")" && pwd)
grep -v '^#' "$here/cases.txt" | grep -E -- "$filter" | while read -r arch name cases cpu secs; do
	"$here/gen.sh" "$out" "$arch" "$name" "$cases" "$cpu" "${secs:-8}"
done
