#!/usr/bin/env python3
"""User-space instructions per request, counted by callgrind.

The CPU-time figures of bench.py drift 2-7 % between runs on a shared
machine; an instruction count does not, so a change of a few percent in
the proxy's own work shows here when it cannot show there. Each scenario
of bench.py (pass, redirect, explain, h2) runs portalgate under
`valgrind --tool=callgrind`: a warm-up with wrk, the counters zeroed, a
measured wrk run, the counters dumped; the figure is the dump's
instructions (every thread, no kernel time) divided by the requests wrk
completed. Instructions are not time (a cache miss costs no instruction),
so this complements the CPU figures, never replaces them.

With --sim, callgrind also simulates the caches and the branch predictor
(`--cache-sim=yes --branch-sim=yes`), and the table gives per request the
first-level instruction and data cache misses (I1mr, D1mr + D1mw) and the
mispredicted branches (Bcm + Bim); last-level misses are near zero for
both servers in every scenario, and left out. Where two servers run the same number of instructions but not
in the same time, these say why: a simulated machine, but the same one for
both servers, and repeatable where `perf stat` has no hardware counters
(a VM).

For h2 (the redirect over TLS + HTTP/2, with h2load) each run opens its
connections anew, so two runs of different lengths are measured and the
figure is the difference of their instructions over the difference of
their requests: the TLS handshakes, the same in both, cancel out.

Beside each portalgate build, nginx in the same scenario (one process) is
counted the same way, and the table gives the ratio to it. portalgate runs
one worker too, as in bench.py's one-core runs (its configuration names
`server.workers`). Callgrind runs a process's threads one at a time on one
simulated cache, so with two workers the --sim figures would count misses
that two cores' own caches would not have.

Usage: benches/load/instructions.py --binary target/release/portalgate
       [--baseline OTHER_BINARY] [--only pass,redirect,explain] [--sim]
Needs valgrind, nginx, wrk and for h2 h2load and openssl
(apt-get install valgrind nginx wrk nghttp2-client).
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


SIM = ["--cache-sim=yes", "--branch-sim=yes"]
# Columns of the --sim table: a name and the callgrind events summed into it.
SIM_COLUMNS = [("I1 misses", ["I1mr"]), ("D1 misses", ["D1mr", "D1mw"]),
               ("mispredicted", ["Bcm", "Bim"])]


def count(cmd, port, url, d, script=None, sim=False):
    """Events per request of the server `cmd` serving `url`: a dict from
    callgrind's event name ("Ir", and with `sim` the cache and branch
    events) to its count divided by the requests, and the requests. An
    https `url` is loaded with h2load, twice (see the module's doc)."""
    out = os.path.join(d, "cg")
    for f in glob.glob(out + ".*"):
        os.remove(f)
    extra_args = SIM if sim else []
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p"]
                         + extra_args + cmd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    h2 = url.startswith("https:")

    def load(seconds):
        if h2:
            run = subprocess.run(["h2load", "-t1", "-c16", "-m10", "-D", str(seconds), url],
                                 check=True, capture_output=True, text=True).stdout
            return int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", run).group(1))
        extra = ["-s", script] if script else []
        run = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s"] + extra + [url], check=True,
                             capture_output=True, text=True).stdout
        return int(re.search(r"(\d+) requests in", run).group(1))

    def measured(seconds, part):
        subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True, capture_output=True)
        requests = load(seconds)
        subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True, capture_output=True)
        dump = f"{out}.{p.pid}.{part}"
        for _ in range(100):
            if os.path.exists(dump):
                break
            time.sleep(0.1)
        events, totals = None, None
        with open(dump) as f:
            for line in f:
                if line.startswith("events:"):
                    events = line.split()[1:]
                elif line.startswith(("summary:", "totals:")) and totals is None:
                    totals = [int(v) for v in line.split()[1:]]
        return dict(zip(events, totals)), requests

    try:
        bench.wait_port(port, timeout=120)
        load(2)  # warm-up
        if not h2:
            totals, requests = measured(4, 1)
            return {e: t / requests for e, t in totals.items()}, requests
        short, n_short = measured(2, 1)
        long, n_long = measured(6, 2)
        n = n_long - n_short
        return {e: (long[e] - short[e]) / n for e in long}, n
    finally:
        p.terminate()
        p.wait()


def peer_conf(d, name, port, bport, portalgate):
    """nginx in the scenario (one process, no master, as callgrind follows
    one): a proxy for pass, `return 302` for redirect, and for explain
    `return 403` with the body portalgate answers."""
    if name == "h2":
        # The certificate main made for portalgate.
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        body = f"""server {{ listen 127.0.0.1:{port} ssl http2; ssl_certificate {cert};
    ssl_certificate_key {key}; http2_max_requests 1000000;
    location / {{ return 302 {bench.PORTAL}; }} }}"""
    elif name == "pass":
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
    ap.add_argument("--only", default="pass,redirect,explain,h2")
    ap.add_argument("--sim", action="store_true",
                    help="simulate caches and branches too (slower)")
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
        "h2": ("", bench.REDIRECT_RULE, f"/dashboard/customers/{bench.GERMANY}/users/list", None),
    }
    cert, key = bench.self_signed(d)
    try:
        bport = bench.start_backend(d, procs)
        sim_head = "".join(f" {c} | ÷ nginx |" for c, _ in SIM_COLUMNS) if args.sim else ""
        print("| scenario | server | requests | instructions per request | ÷ nginx |" + sim_head)
        print("|---" * (5 + (2 * len(SIM_COLUMNS) if args.sim else 0)) + "|")
        for name in args.only.split(","):
            top, rest, path, script = scenarios[name]
            rows = []
            for label, binary in [("portalgate", args.binary), ("baseline", args.baseline)]:
                if binary:
                    port = bench.free_port()
                    listener = (f'[[listeners.tls.certificates]]\ncert = "{cert}"\nkey = "{key}"'
                                if name == "h2" else "")
                    cfg = bench.portalgate_conf(d, f"{name}-{label}", port, bport, top=top,
                                                listener=listener, rest=rest)
                    cmd = [binary, "--log-level", "warn", "serve", "--config", cfg]
                    rows.append((label, port, cmd))
            port = bench.free_port()
            rows.append(("nginx", port, ["nginx", "-c", peer_conf(d, name, port, bport, rows[0]),
                                         "-p", d]))
            scheme = "https" if name == "h2" else "http"
            counted = [(label, *count(cmd, port, f"{scheme}://127.0.0.1:{port}{path}", d, script,
                                      args.sim))
                       for label, port, cmd in rows]
            ng = counted[-1][1]
            for label, per, n in counted:
                cells = [per["Ir"], ng["Ir"]]
                if args.sim:
                    for _, evs in SIM_COLUMNS:
                        cells += [sum(per[e] for e in evs), sum(ng[e] for e in evs)]
                row = "".join(f" {a:,.0f} | {a / b if b else float('nan'):.2f} |"
                              for a, b in zip(cells[::2], cells[1::2]))
                print(f"| {name} | {label} | {n:,} |{row}", flush=True)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
