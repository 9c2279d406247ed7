#!/usr/bin/env bash
# The release binary as shipped (deploy/Dockerfile builds it this way):
# `cargo build --release`, optimised with the committed profile
# pgo/portalgate.profdata. A profile-guided build lays out and inlines the
# code by what the load bench ran. Beside the plain build its user time
# per request was 4-18 % lower, and pass-through's CPU per request 0.87x
# nginx's against 0.91x (README, Performance).
#
# A function changed since the profile was made is built without it, and
# the compiler says so ("function control flow change detected (hash
# mismatch)"): a warning, not an error. benches/load/pgo.sh --save makes
# the profile again from the tree as it is.
#
# Usage: deploy/build-release.sh [more cargo build arguments]
#   -> target/release/portalgate
set -euo pipefail
cd "$(dirname "$0")/.."
profile=$PWD/pgo/portalgate.profdata
[ -f "$profile" ] || { echo "build-release.sh: no $profile" >&2; exit 1; }
# cargo hands RUSTFLAGS to every crate with the crate's own directory as the
# working directory: the path must be absolute.
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$profile" exec cargo build --release --locked "$@"
