#!/usr/bin/env bash
# Runs every load script once, briefly, against BINARY: that each still
# starts its targets, loads them and prints its whole table. The figures
# mean nothing at this size; what fails is a script that no longer runs
# (a configuration it writes that portalgate now refuses, a target that
# exits at start, a table row that went missing). CI runs it on the debug
# build. Not covered: pgo.sh (two release builds with LTO; it drives
# bench.py, which is).
#
# Usage: benches/load/smoke.sh BINARY
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:?usage: benches/load/smoke.sh BINARY}

# shellcheck source=benches/load/tools.sh
. benches/load/tools.sh
tools valgrind

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
# expect FILE PATTERN...: each pattern (an extended regex) matches a line.
expect() {
  local file=$1
  shift
  for pattern in "$@"; do
    grep -Eq "$pattern" "$file" || {
      echo "smoke: ${file##*/}: no line matches: $pattern" >&2
      status=1
    }
  done
}

python3 benches/load/bench.py --binary "$bin" --duration 1 --latency-duration 1 --rounds 1 \
  | tee "$out/bench"
rows=()
for target in portalgate portalgate\\+policy nginx nginx\\+headers haproxy; do
  rows+=("^\| pass +\| $target +\| +[0-9,]+ ")
done
for scenario in redirect explain h2; do
  rows+=("^\| $scenario +\| portalgate +\| +[0-9,]+ " "^\| $scenario +\| nginx +\| +[0-9,]+ ")
done
rows+=("^\| redirect +\| nginx\+bytes +\| +[0-9,]+ " "^  redirect / portalgate: [0-9.]+ \(. of 1\)$")
expect "$out/bench" "${rows[@]}"

python3 benches/load/idle.py --binary "$bin" --connections 100 --settle 0.2 | tee "$out/idle"
expect "$out/idle" "^portalgate( +[0-9.-]+){5}$" "^nginx( +[0-9.-]+){5}$"

python3 benches/load/chunks.py --binary "$bin" --chunks 1000 | tee "$out/chunks"
expect "$out/chunks" "^1000 chunks of 1 byte +200 " "^1 chunk of 1000 bytes +200 " \
  "^1000 chunks, Expect +200 "

python3 benches/load/instructions.py --binary "$bin" --only redirect | tee "$out/instructions"
expect "$out/instructions" "redirect.*portalgate" "redirect.*nginx"

exit $status
