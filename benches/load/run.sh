#!/usr/bin/env bash
# Load benchmark: portalgate vs nginx vs HAProxy as pass-through proxies.
#
# A tiny nginx backend, then each proxy in turn on loopback; proxy and
# backend pinned to cpu0, wrk pinned to cpu1. Per proxy: wrk 1 thread,
# 64 keep-alive connections, 10 s, and a 1-connection latency run; all
# proxies in turn, for two rounds (medians: on a shared machine a noisy
# neighbour then moves one round, not the comparison). portalgate runs
# twice: plain, and judging every request against the Germany pack.
# Prints one table: req/s, p50/p99, CPU time per request, peak RSS, and the
# ratios to nginx from the same run. Stops everything it started by PID.
#
# Usage: benches/load/run.sh [--duration 10] [--connections 64] [--rounds 2]
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v nginx >/dev/null || need+=(nginx)
command -v haproxy >/dev/null || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Only the binaries are used; keep a packaged nginx service from holding port 80.
command -v systemctl >/dev/null && systemctl stop nginx >/dev/null 2>&1 || true

cargo build --release --quiet
exec python3 benches/load/bench.py --binary target/release/portalgate "$@"
