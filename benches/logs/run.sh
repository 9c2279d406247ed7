#!/usr/bin/env bash
# Summarising a generated 1 GiB decision log with `portalgate logs --summary`:
# prints the wall time and the peak memory (GNU time). Usage:
#   benches/logs/run.sh [SIZE_MIB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir/decisions.jsonl" "$size_mib" <<'PY'
import json, sys
path, mib = sys.argv[1], int(sys.argv[2])
rules = ["germany-customer-user-create", "germany-password-reset", "germany-customer-user-update",
         "germany-license-update", "germany-license-read", "germany-ui-customer-users"]
tenants = [f"0a1b2c3d-0000-4000-8000-{i:012x}" for i in range(200)]
target = mib * 1024 * 1024
lines = []
for i in range(20000):
    rule = rules[i % len(rules)]
    lines.append(json.dumps({
        "ts": f"2026-11-{20 + (i // 5000):02d}T{(i // 200) % 24:02d}:{i % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
        "decision_id": f"{i:032x}", "request_id": f"{i * 7:032x}", "rule": rule,
        "mode": "report-only" if rule == "germany-license-read" else "enforce",
        "action": "redirect" if rule.startswith("germany-ui") else "explain",
        "status": 200 if rule == "germany-license-read" else (303 if rule.startswith("germany-ui") else 403),
        "reason": None, "method": "POST", "host": "api.partnercenter.microsoft.com",
        "route": "/v1/customers/{tenant}/users/{user}",
        "path": f"/v1/customers/{tenants[i % 200]}/users/~{i:016x}",
        "target": f"/v1/customers/{tenants[i % 200]}/users/~{i:016x}?api-version=",
        "tenant": tenants[i % 200], "tenant_source": "path:tenant", "region": "germany",
        "region_source": "directory", "portal": "https://portal.microsoftazure.de",
        "client": "10.1.2.0/24", "user_agent": "PartnerCenter.SDK/3.4", "protocol": "HTTP/1.1",
        "duration_ms": 0.42}) + "\n")
block = "".join(lines).encode()
with open(path, "wb") as f:
    written = 0
    while written < target:
        f.write(block)
        written += len(block)
print(f"generated {written / 2**20:.0f} MiB, {written // (len(block) // len(lines)):,} records (approx.)")
PY
/usr/bin/time -f "wall %e s, peak RSS %M KiB" ./target/release/portalgate logs --summary "$dir/decisions.jsonl" > "$dir/summary.txt"
head -1 "$dir/summary.txt"
