#!/usr/bin/env bash
# Load benchmark: portalgate side by side with nginx (and HAProxy), in four
# scenarios: pass-through, a redirect rule against nginx's `return 302`, the
# Germany pack's JSON explanation against nginx's `return 403` with a body
# of the same size, and the redirect over TLS + HTTP/2 (h2load).
#
# Proxies and backend pinned to cpu0 (--cores N: cpus 0..N-1 and N
# workers), the load generator to cpu1. Every target runs for the whole
# benchmark; each round measures the targets of a scenario back to back,
# and the ratios are medians of the per-round ratios (on a shared machine a
# noisy neighbour then moves one round, not the comparison). Prints one
# table: req/s, p50/p99, CPU time per request, peak RSS, and the ratios to
# the scenario's nginx. Stops everything it started by PID.
#
# Usage: benches/load/run.sh [--duration 10] [--rounds 2] [--cores 1]
#        [--only pass,redirect,explain,h2] [--baseline OTHER_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=benches/load/tools.sh
. benches/load/tools.sh
# The standard set (smoke.sh adds valgrind); not this script's arguments.
# shellcheck disable=SC2119
tools

cargo build --release --quiet
exec python3 benches/load/bench.py --binary target/release/portalgate "$@"
