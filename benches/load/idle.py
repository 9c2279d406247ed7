#!/usr/bin/env python3
"""Memory of idle keep-alive connections, side by side with nginx.

For each proxy (portalgate, and nginx as a reverse proxy with upstream
keep-alive), one worker on cpu0 in front of an nginx backend:

1. RSS of the proxy's process tree at rest (after a warm-up request);
2. N client connections, each sends one request, reads the answer and
   stays open and idle: RSS again, and the cost per idle connection;
3. all N closed, a hundred more requests, a few seconds' rest: RSS
   again, and what stayed.

Usage: python3 benches/load/idle.py --binary target/release/portalgate [--connections 10000]
"""
import argparse
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def request(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v1/customers HTTP/1.1\r\nHost: portal\r\n\r\n")
    bench.read_answer(s)
    return s


def measure(name, cmd, port, n, procs, settle):
    p = procs.start(cmd)
    bench.wait_port(port)
    request(port).close()
    time.sleep(settle)
    pids = bench.tree(p.pid)
    rest = rss_kib(pids)
    conns = [request(port) for _ in range(n)]
    time.sleep(settle)
    held = rss_kib(bench.tree(p.pid))
    for c in conns:
        c.close()
    time.sleep(settle)
    # A server that goes on serving: a few requests after the burst.
    for _ in range(100):
        request(port).close()
    time.sleep(settle)
    after = rss_kib(bench.tree(p.pid))
    procs.stop(p)
    return name, rest, held, after


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds of rest before each reading (idle connections free their buffers after 1 s)")
    args = ap.parse_args()
    n = args.connections
    d = tempfile.mkdtemp(prefix="portalgate-idle-")
    procs = bench.Procs()
    rows = []
    try:
        bport = bench.start_backend(d, procs, body='{"totalCount":0,"items":[]}')

        port = bench.free_port()
        cfg = bench.portalgate_conf(d, "pg", port, bport)
        # One worker (bench.WORKERS), and connections kept idle for the
        # whole run.
        text = open(cfg).read().replace(
            "[server]\n", "[server]\nheader_read_timeout = \"120s\"\n")
        open(cfg, "w").write(text)
        rows.append(measure("portalgate", [args.binary, "--log-level", "warn", "serve", "--config", cfg],
                            port, n, procs, args.settle))

        port = bench.free_port()
        conf = bench.nginx_conf(d, "nginx", f"""
  keepalive_timeout 120s;
  upstream backend {{ server 127.0.0.1:{bport}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}""").replace("worker_connections 4096", f"worker_connections {n + 256}")
        rows.append(measure("nginx", ["nginx", "-c", conf, "-p", d], port, n, procs, args.settle))
    finally:
        procs.stop_all()

    print(f"{n} idle keep-alive connections, one worker on cpu0 (RSS of the process tree, KiB)")
    print(f"{'proxy':<12} {'at rest':>9} {'held':>9} {'per conn':>9} {'after close':>12} {'kept':>8}")
    for name, rest, held, after in rows:
        print(f"{name:<12} {rest:>9} {held:>9} {(held - rest) / n:>9.2f} {after:>12} {after - rest:>8}")


if __name__ == "__main__":
    main()
