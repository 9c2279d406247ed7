#!/usr/bin/env python3
"""User-space instructions per request, counted by callgrind.

The CPU-time figures of bench.py drift 2-7 % between runs on a shared
machine; an instruction count does not, so a change of a few percent in
the proxy's own work shows here when it cannot show there. Each scenario
of bench.py (pass, redirect, explain) runs portalgate under
`valgrind --tool=callgrind`: a warm-up with wrk, the counters zeroed, a
measured wrk run, the counters dumped; the figure is the dump's
instructions (every thread, no kernel time) divided by the requests wrk
completed. Instructions are not time (a cache miss costs no instruction),
so this complements the CPU figures, never replaces them.

Beside each portalgate build, nginx in the same scenario (one process) is
counted the same way, and the table gives the ratio to it.

Usage: benches/load/instructions.py --binary target/release/portalgate
       [--baseline OTHER_BINARY] [--only pass,redirect,explain]
Needs valgrind, nginx and wrk (apt-get install valgrind nginx wrk).
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the scenarios' configurations)


def count(cmd, port, url, d, script=None):
    """Instructions per request of the server `cmd` serving `url`."""
    out = os.path.join(d, "cg")
    for f in glob.glob(out + ".*"):
        os.remove(f)
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p"] + cmd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bench.wait_port(port, timeout=120)
        extra = ["-s", script] if script else []
        subprocess.run(["wrk", "-t1", "-c16", "-d2s"] + extra + [url], check=True,
                       capture_output=True)
        subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True, capture_output=True)
        run = subprocess.run(["wrk", "-t1", "-c16", "-d4s"] + extra + [url], check=True,
                             capture_output=True, text=True).stdout
        subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True, capture_output=True)
        requests = int(re.search(r"(\d+) requests in", run).group(1))
        dump = f"{out}.{p.pid}.1"
        for _ in range(100):
            if os.path.exists(dump):
                break
            time.sleep(0.1)
        with open(dump) as f:
            total = next(int(l.split()[1]) for l in f if l.startswith(("summary:", "totals:")))
        return total / requests, requests
    finally:
        p.terminate()
        p.wait()


def peer_conf(d, name, port, bport, portalgate):
    """nginx in the scenario (one process, no master, as callgrind follows
    one): a proxy for pass, `return 302` for redirect, and for explain
    `return 403` with the body portalgate answers."""
    if name == "pass":
        body = f"""upstream backend {{ server 127.0.0.1:{bport}; keepalive 64; }}
  server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://backend;
    proxy_http_version 1.1; proxy_set_header Connection ""; }} }}"""
    elif name == "redirect":
        body = f"server {{ listen 127.0.0.1:{port}; location / {{ return 302 {bench.PORTAL}; }} }}"
    else:
        _, pg_port, pg_cmd = portalgate
        text = bench.explanation(bench.Procs(), pg_cmd, pg_port)
        body = (f"server {{ listen 127.0.0.1:{port}; location / {{ default_type application/json; "
                f"return 403 '{text}\n'; }} }}")
    conf = bench.nginx_conf(d, f"{name}-nginx", body)
    with open(conf) as f:
        text = f.read().replace("master_process on;", "master_process off;")
    with open(conf, "w") as f:
        f.write(text)
    return conf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--baseline")
    ap.add_argument("--only", default="pass,redirect,explain")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="portalgate-instructions-")
    procs = bench.Procs()
    pack = os.path.abspath("config/policies/germany.toml")
    post = bench.post_script(d)
    scenarios = {
        "pass": ("", "", f"/v1/customers/{bench.GLOBAL}/users", None),
        "redirect": ("", bench.REDIRECT_RULE,
                     f"/dashboard/customers/{bench.GERMANY}/users/list", None),
        "explain": (f'include = ["{pack}"]', bench.GERMANY_TENANTS,
                    f"/v1/customers/{bench.GERMANY}/users", post),
    }
    try:
        bport = bench.start_backend(d, procs)
        print("| scenario | server | requests | instructions per request | ÷ nginx |")
        print("|----------|--------|----------|--------------------------|---------|")
        for name in args.only.split(","):
            top, rest, path, script = scenarios[name]
            rows = []
            for label, binary in [("portalgate", args.binary), ("baseline", args.baseline)]:
                if binary:
                    port = bench.free_port()
                    cfg = bench.portalgate_conf(d, f"{name}-{label}", port, bport, top=top, rest=rest)
                    cmd = [binary, "--log-level", "warn", "serve", "--config", cfg]
                    rows.append((label, port, cmd))
            port = bench.free_port()
            rows.append(("nginx", port, ["nginx", "-c", peer_conf(d, name, port, bport, rows[0]),
                                         "-p", d]))
            counted = [(label, *count(cmd, port, f"http://127.0.0.1:{port}{path}", d, script))
                       for label, port, cmd in rows]
            ng = counted[-1][1]
            for label, per, n in counted:
                print(f"| {name} | {label} | {n:,} | {per:,.0f} | {per / ng:.2f} |", flush=True)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
