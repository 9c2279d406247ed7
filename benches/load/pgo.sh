#!/usr/bin/env bash
# Profile-guided release build: what better inlining and code layout give
# the proxy, measured side by side with the plain build. The shipped build
# (deploy/build-release.sh, which deploy/Dockerfile runs) uses the profile
# this script saves with --save, committed as pgo/portalgate.profdata;
# `cargo build --release` stays the plain build (the README's commands).
# On the 2-core VM (README, Performance; docs/performance.md): about a
# sixth fewer instructions per request, three quarters fewer simulated
# instruction-cache misses, and 4-18 % less user time per request in
# interleaved runs beside the plain build (whole CPU: pass-through and
# HTTP/2 lower, the intercepts within the VM's noise).
#
# 1. builds an instrumented binary (target/pgo-gen), with -Cprofile-generate;
# 2. trains it on this directory's load bench, every scenario (pass-through
#    with and without the Germany pack, the redirect, the explanation, TLS +
#    HTTP/2), one short round; each proxy process writes its profile when
#    it stops;
# 3. merges the profiles with the toolchain's own llvm-profdata (rustup's
#    llvm-tools component: a distribution's llvm-profdata reads another
#    LLVM's format only when the versions agree);
# 4. builds the release binary again with -Cprofile-use:
#    target/pgo/release/portalgate;
# 5. with --save, also writes the profile (sparse: functions the training
#    never ran are left out) to pgo/portalgate.profdata, to commit.
#
# The profile is made here, from this tree, every time: a profile kept from
# an older tree matches fewer and fewer functions as the code changes
# (deploy/build-release.sh's build warns for each one; CI counts them).
# Side by side: benches/load/bench.py --binary target/pgo/release/portalgate
# --baseline target/release/portalgate, and instructions.py the same way.
#
# Usage: benches/load/pgo.sh [--save]   (needs what run.sh installs, and rustup)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
save=false
case "${1:-}" in
  --save) save=true ;;
  "") ;;
  *) echo "usage: benches/load/pgo.sh [--save]" >&2; exit 64 ;;
esac

rustup component list --installed 2>/dev/null | grep -q '^llvm-tools' || rustup component add llvm-tools
profdata=$(find "$(rustc --print sysroot)/lib/rustlib" -name llvm-profdata -type f | head -n 1)
[ -x "$profdata" ] || { echo "pgo.sh: no llvm-profdata in the toolchain" >&2; exit 1; }

data=$root/target/pgo-data
rm -rf "$data"
mkdir -p "$data"

echo "== instrumented build" >&2
RUSTFLAGS="-Cprofile-generate=$data" CARGO_TARGET_DIR=$root/target/pgo-gen \
  cargo build --release --locked --quiet

echo "== training (benches/load/bench.py, one round of every scenario)" >&2
LLVM_PROFILE_FILE="$data/portalgate-%p-%m.profraw" \
  python3 benches/load/bench.py --binary "$root/target/pgo-gen/release/portalgate" \
  --duration 3 --rounds 1 --latency-duration 1 > "$data/training.txt"
# Only the proxy's profiles: the instrumented build's own build scripts
# write theirs (default_*.profraw) here too.
ls "$data"/portalgate-*.profraw >/dev/null 2>&1 || { echo "pgo.sh: training wrote no profile" >&2; exit 1; }
"$profdata" merge -o "$data/merged.profdata" "$data"/portalgate-*.profraw
if $save; then
  mkdir -p "$root/pgo"
  "$profdata" merge --sparse -o "$root/pgo/portalgate.profdata" "$data"/portalgate-*.profraw
  echo "pgo/portalgate.profdata written: commit it" >&2
fi

echo "== optimised build" >&2
RUSTFLAGS="-Cprofile-use=$data/merged.profdata" CARGO_TARGET_DIR=$root/target/pgo \
  cargo build --release --locked --quiet
echo "target/pgo/release/portalgate" >&2
