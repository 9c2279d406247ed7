#!/usr/bin/env python3
"""Driver for benches/load/run.sh: start, measure, print, stop.

Everything binds to 127.0.0.1 on ports the kernel hands out. Each started
process is tracked by PID and stopped in a finally block.
"""
import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def tree(pid):
    """pid and all its descendants."""
    out = [pid]
    try:
        kids = open(f"/proc/{pid}/task/{pid}/children").read().split()
    except OSError:
        kids = []
    for k in kids:
        out += tree(int(k))
    return out


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total


def peak_rss_kib(pids):
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def to_ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "us" else n * 1000 if unit == "s" else n


def wrk(url, connections, duration):
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    if errors or sock:
        print(f"warning: {url}: {errors.group(0) if errors else ''} {sock.group(0) if sock else ''}", file=sys.stderr)
    return rps, total, p50, p99


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, cmd, **kw):
        p = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)


def nginx_conf(d, name, body):
    path = os.path.join(d, f"{name}.conf")
    with open(path, "w") as f:
        f.write(f"""daemon off;
master_process on;
worker_processes 1;
pid {d}/{name}.pid;
error_log {d}/{name}.error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/{name}-body;
  proxy_temp_path {d}/{name}-proxy;
  fastcgi_temp_path {d}/{name}-fcgi;
  uwsgi_temp_path {d}/{name}-uwsgi;
  scgi_temp_path {d}/{name}-scgi;
  keepalive_requests 1000000;
  {body}
}}
""")
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--latency-duration", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds of every proxy in turn; the table shows medians, so a noisy "
                         "neighbour on a shared machine moves one round, not the comparison")
    args = ap.parse_args()

    d = tempfile.mkdtemp(prefix="portalgate-bench-")
    procs = Procs()
    results = []
    try:
        bport = free_port()
        backend_conf = nginx_conf(d, "backend", f"""
  server {{
    listen 127.0.0.1:{bport} backlog=4096;
    location / {{ default_type application/json; return 200 '{{"totalCount":1,"items":[{{"id":"7f4b1c2e"}}]}}'; }}
  }}""")
        procs.start(["nginx", "-c", backend_conf, "-p", d])
        wait_port(bport)

        proxies = []
        port = free_port()
        cfg = os.path.join(d, "portalgate.toml")
        with open(cfg, "w") as f:
            f.write(f"""[[listeners]]
address = "127.0.0.1:{port}"
[upstream]
url = "http://127.0.0.1:{bport}"
[admin]
address = "off"
""")
        proxies.append(("portalgate", port, [args.binary, "--log-level", "warn", "serve", "--config", cfg]))

        # The same, judging every request against the shipped Germany pack
        # (the benchmark path is a candidate of a rule, so the policy runs).
        port = free_port()
        pack = os.path.abspath("config/policies/germany.toml")
        cfg = os.path.join(d, "portalgate-policy.toml")
        with open(cfg, "w") as f:
            f.write(f"""include = ["{pack}"]
[[listeners]]
address = "127.0.0.1:{port}"
[upstream]
url = "http://127.0.0.1:{bport}"
[admin]
address = "off"
[tenants]
default_region = "global"
[[tenants.entries]]
id = "0a1b2c3d-0000-4000-8000-00000000de01"
region = "germany"
[[tenants.entries]]
id = "0a1b2c3d-0000-4000-8000-0000000000a1"
region = "global"
""")
        proxies.append(("portalgate+policy", port, [args.binary, "--log-level", "warn", "serve", "--config", cfg]))

        port = free_port()
        conf = nginx_conf(d, "proxy", f"""
  upstream backend {{ server 127.0.0.1:{bport}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}""")
        proxies.append(("nginx", port, ["nginx", "-c", conf, "-p", d]))

        # nginx doing the header work portalgate does on every request.
        port = free_port()
        conf = nginx_conf(d, "proxy-headers", f"""
  upstream backend {{ server 127.0.0.1:{bport}; keepalive 64; }}
  map $http_x_request_id $rid {{ default $http_x_request_id; "" $request_id; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header Forwarded "for=$remote_addr;host=\\"$http_host\\";proto=$scheme";
      proxy_set_header Via "1.1 nginx";
      proxy_set_header X-Request-Id $rid;
      add_header X-Request-Id $rid always;
      add_header Via "1.1 nginx" always;
    }}
  }}""")
        proxies.append(("nginx+headers", port, ["nginx", "-c", conf, "-p", d]))

        port = free_port()
        hcfg = os.path.join(d, "haproxy.cfg")
        with open(hcfg, "w") as f:
            f.write(f"""global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  server b1 127.0.0.1:{bport}
""")
        proxies.append(("haproxy", port, ["haproxy", "-db", "-f", hcfg]))

        runs = {name: [] for name, _, _ in proxies}
        for _ in range(args.rounds):
            for name, port, cmd in proxies:
                p = procs.start(cmd)
                wait_port(port)
                url = f"http://127.0.0.1:{port}/v1/customers/0a1b2c3d-0000-4000-8000-0000000000a1/users"
                wrk(url, args.connections, 1)  # warm-up: pools, caches
                pids = tree(p.pid)
                t0 = cpu_ticks(pids)
                rps, total, p50, p99 = wrk(url, args.connections, args.duration)
                t1 = cpu_ticks(tree(p.pid))
                _, _, l50, l99 = wrk(url, 1, args.latency_duration)
                rss = peak_rss_kib(tree(p.pid))
                cpu_us = (t1 - t0) / CLK_TCK * 1e6 / max(total, 1)
                runs[name].append((rps, p50, p99, l50, l99, cpu_us, rss / 1024))
                procs.stop(p)
        for name, _, _ in proxies:
            cols = list(zip(*runs[name]))
            med = [statistics.median(c) for c in cols[:6]]
            results.append((name, *med, max(cols[6])))
    finally:
        procs.stop_all()

    ref = {r[0]: r for r in results}.get("nginx")
    hdr = ("proxy", "req/s", "p50 ms", "p99 ms", "1c p50", "1c p99", "CPU µs/req", "peak RSS MiB", "req/s ÷ nginx", "CPU ÷ nginx")
    rows = []
    for name, rps, p50, p99, l50, l99, cpu, rss in results:
        rows.append((name, f"{rps:,.0f}", f"{p50:.3f}", f"{p99:.3f}", f"{l50:.3f}", f"{l99:.3f}",
                     f"{cpu:.1f}", f"{rss:.1f}",
                     f"{rps / ref[1]:.2f}" if ref else "-", f"{cpu / ref[6]:.2f}" if ref else "-"))
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
    line = lambda r: "| " + " | ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(f"\nwrk -t1 -c{args.connections} -d{args.duration}s (keep-alive) and -c1 -d{args.latency_duration}s; "
          f"proxy+backend on cpu0, wrk on cpu1; backend: nginx returning 58 bytes of JSON.\n"
          f"Medians of {args.rounds} rounds (every proxy in turn each round); peak RSS is the largest.\n"
          f"portalgate+policy judges every request against the Germany pack.\n"
          f"nginx+headers also sets X-Forwarded-For/-Proto/-Host, Forwarded, Via and X-Request-Id like portalgate; ratios are to plain nginx.\n")
    print(line(hdr))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


if __name__ == "__main__":
    main()
