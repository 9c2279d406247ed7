#!/usr/bin/env bash
# Profile-guided release build, opt-in: what better inlining and code layout
# give the proxy, measured side by side with the plain build
# (`cargo build --release`, which stays what the README, CI and
# deploy/Dockerfile build). On the 2-core VM (README, the eleventh round):
# about a sixth fewer instructions per request and three quarters fewer
# simulated instruction-cache misses, while CPU per request moved within
# the VM's noise for the intercepts and down in most runs for pass-through
# and HTTP/2. A packager who builds what they ship can use it as it is.
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
#    target/pgo/release/portalgate.
#
# The profile is made here, from this tree, every time: a profile kept from
# an older tree would match fewer and fewer functions as the code changes.
# Side by side: benches/load/bench.py --binary target/pgo/release/portalgate
# --baseline target/release/portalgate, and instructions.py the same way.
#
# Usage: benches/load/pgo.sh   (needs what run.sh installs, and rustup)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

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

echo "== optimised build" >&2
RUSTFLAGS="-Cprofile-use=$data/merged.profdata" CARGO_TARGET_DIR=$root/target/pgo \
  cargo build --release --locked --quiet
echo "target/pgo/release/portalgate" >&2
