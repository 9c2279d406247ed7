#!/usr/bin/env python3
"""CPU cost of a chunked upload in tiny chunks, beside the same bytes in one
chunk: one proxy worker on cpu0 in front of an nginx backend (which reads
and drops the body), a POST of N one-byte chunks, then of one N-byte chunk.

Usage: python3 benches/load/chunks.py --binary target/release/portalgate [--chunks 1000000]
"""
import argparse
import os
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def upload(port, body, expect=False):
    s = socket.create_connection(("127.0.0.1", port))
    extra = b"Expect: 100-continue\r\n" if expect else b""
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: portal\r\nTransfer-Encoding: chunked\r\n"
              + extra + b"Connection: close\r\n\r\n" + body)
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    # The final status (after a 100 Continue, if any).
    return reply.split(b"HTTP/1.1 ")[-1].split(b" ", 1)[0].decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--chunks", type=int, default=1_000_000)
    args = ap.parse_args()
    n = args.chunks
    d = tempfile.mkdtemp(prefix="portalgate-chunks-")
    procs = bench.Procs()
    try:
        bport = bench.free_port()
        backend = bench.nginx_conf(d, "backend", f"""
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{bport};
    location / {{ return 200 'ok'; }}
  }}""")
        procs.start(["nginx", "-c", backend, "-p", d])
        bench.wait_port(bport)
        port = bench.free_port()
        cfg = bench.portalgate_conf(d, "pg", port, bport)
        p = procs.start([args.binary, "--log-level", "warn", "serve", "--config", cfg])
        bench.wait_port(port)
        tiny = b"1\r\nx\r\n" * n + b"0\r\n\r\n"
        whole = b"%x\r\n" % n + b"x" * n + b"\r\n0\r\n\r\n"
        rows = []
        for name, body, expect in [
            (f"{n} chunks of 1 byte", tiny, False),
            (f"1 chunk of {n} bytes", whole, False),
            (f"{n} chunks, Expect", tiny, True),
        ]:
            before = bench.cpu_ticks(bench.tree(p.pid))
            status = upload(port, body, expect)
            after = bench.cpu_ticks(bench.tree(p.pid))
            rows.append((name, status, (sum(after) - sum(before)) / bench.CLK_TCK))
    finally:
        procs.stop_all()
    print("upload                          status  proxy CPU s")  # noqa: T201
    for name, status, cpu in rows:
        print(f"{name:<32}{status:<8}{cpu:.2f}")


if __name__ == "__main__":
    main()
