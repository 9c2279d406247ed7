#!/usr/bin/env python3
"""Driver for benches/load/run.sh: start, measure, print, stop.

Scenarios, each a set of targets measured side by side and shown as ratios
to the scenario's nginx:

- pass:     pass-through proxying of a 58-byte JSON answer from an nginx
            backend (portalgate plain and with the Germany pack, nginx,
            nginx doing portalgate's header work, HAProxy);
- redirect: an intercepted browser request answered with a redirect
            (portalgate: a redirect rule; nginx: `return 302`, and
            nginx+bytes: the same padded by a header to portalgate's
            answer's length);
- explain:  the Germany pack's JSON explanation for a customer-user create
            (POST with a JSON body; nginx: `return 403` with a JSON body of
            the same size);
- h2:       the redirect over TLS + HTTP/2 with h2load (-c64 -m10).

Proxy and backend share cpu0, the load generator runs on cpu1. Every target
of every chosen scenario runs in turn, for --rounds rounds, and the tables
show medians: on a shared machine a noisy neighbour then moves one round,
not the comparison. CPU is the proxy's own (all its processes and threads)
per request, user and system time; "user" is the user time alone, the
proxy's own code (the kernel's share, the sockets, is much the same for
every proxy). Everything binds to 127.0.0.1 on free ports below the
ephemeral range; each started process is tracked by PID and stopped in a
finally block.
"""
import argparse
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Where the proxies run and how many workers they get (--cores); the load
# generator stays on the last CPU.
PROXY_CPUS = "0"
WORKERS = 1
GLOBAL = "0a1b2c3d-0000-4000-8000-0000000000a1"
GERMANY = "0a1b2c3d-0000-4000-8000-00000000de01"
PORTAL = "https://portal.office.de/adminportal"


HANDED = set()


def free_port():
    """A free port below the kernel's ephemeral range. Every target's port
    is chosen before the targets start, and the warm-ups' own connections
    take ephemeral ports: one of them could take a port chosen from that
    range before its server binds it (the server then fails to start, and
    whatever else answers there is measured)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(1000):
        port = random.randrange(10000, max(low, 10001))
        if port in HANDED:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        HANDED.add(port)
        return port
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
    """User and system CPU ticks of `pids`, together."""
    user = system = 0
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except OSError:
            pass
    return user, system


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


def wrk(url, connections, duration, script=None, quiet=False):
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    if (errors and not quiet) or sock:
        print(f"warning: {url}: {errors.group(0) if errors else ''} {sock.group(0) if sock else ''}",
              file=sys.stderr)
    return rps, total, p50, p99


def h2load(url, duration):
    cmd = ["taskset", "-c", "1", "h2load", "-t1", "-c64", "-m10", "-D", str(duration), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", out).group(1))
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    failed = int(re.search(r"(\d+) failed", out).group(1))
    if failed or done == 0:
        print(f"warning: {url}: {failed} failed, {done} done", file=sys.stderr)
    return rps, done


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, cmd, **kw):
        p = subprocess.Popen(["taskset", "-c", PROXY_CPUS] + cmd, stdout=subprocess.DEVNULL,
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


def self_signed(d):
    """A P-256 certificate for localhost and 127.0.0.1 in `d`: (cert, key)."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def nginx_conf(d, name, body):
    path = os.path.join(d, f"{name}.conf")
    with open(path, "w") as f:
        f.write(f"""daemon off;
master_process on;
worker_processes {WORKERS};
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


def portalgate_conf(d, name, port, bport, top="", listener="", rest=""):
    """top: top-level keys (include); listener: the listener's subtables; rest: more tables.
    Its workers are nginx's worker processes (WORKERS), named rather than
    left to the CPUs it may run on: under callgrind (instructions.py), which
    runs it without taskset, it would otherwise start one per CPU."""
    path = os.path.join(d, f"{name}.toml")
    with open(path, "w") as f:
        f.write(f"""{top}
[[listeners]]
address = "127.0.0.1:{port}"
{listener}
{rest}
[upstream]
url = "http://127.0.0.1:{bport}"
[admin]
address = "off"
[server]
watch = false
workers = {WORKERS}
""")
    return path


def start_backend(d, procs, body='{"totalCount":1,"items":[{"id":"7f4b1c2e"}]}'):
    """An nginx backend answering every request with `body` (JSON); its port."""
    bport = free_port()
    conf = nginx_conf(d, "backend", f"""
  server {{
    listen 127.0.0.1:{bport} backlog=4096;
    location / {{ default_type application/json; return 200 '{body}'; }}
  }}""")
    procs.start(["nginx", "-c", conf, "-p", d])
    wait_port(bport)
    return bport


EXPLAIN_BODY = b'{"userPrincipalName":"x@contoso.example"}'


def post_script(d):
    """The wrk script of the explain scenario: a customer-user creation."""
    script = os.path.join(d, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n'
                f"wrk.body = '{EXPLAIN_BODY.decode()}'\n"
                'wrk.headers["Content-Type"] = "application/json"\n'
                'wrk.headers["Accept"] = "application/json"\n')
    return script


def per_round(rs, ref, i):
    """Column `i` of a target's rounds `rs` divided by the same round's
    nginx (`ref`), round by round; empty without nginx, and a round nginx
    has no figure for (NaN or 0) left out."""
    if not ref:
        return []
    return [a[i] / b[i] for a, b in zip(rs, ref) if b[i] == b[i] and b[i] > 0]


def read_answer(s):
    """One whole answer (head and `Content-Length` body) read from the
    socket `s`, as bytes."""
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("closed before an answer")
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("closed within an answer's body")
        body += chunk
    return head + b"\r\n\r\n" + body


def answer_bytes(procs, cmd, port, path):
    """The length of the whole answer (head and body) the server `cmd`,
    listening on `port`, gives wrk's request for `path`."""
    p = procs.start(cmd)
    try:
        wait_port(port)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            return len(read_answer(s))
    finally:
        procs.stop(p)


def explanation(procs, cmd, port):
    """The explanation portalgate (`cmd`, listening on `port`) answers the
    explain scenario's request with, escaped for an nginx `return`: nginx
    answers with a JSON body of the same size."""
    p = procs.start(cmd)
    try:
        wait_port(port)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/customers/{GERMANY}/users",
                                     method="POST", data=EXPLAIN_BODY,
                                     headers={"Content-Type": "application/json",
                                              "Accept": "application/json"})
        try:
            urllib.request.urlopen(req)
            raise RuntimeError("the explain scenario's request was forwarded")
        except urllib.error.HTTPError as e:
            body = e.read().decode().rstrip("\n")
    finally:
        procs.stop(p)
    return body.replace("\\", "\\\\").replace("'", "\\'")


GERMANY_TENANTS = f"""
[tenants]
default_region = "global"
[[tenants.entries]]
id = "{GERMANY}"
region = "germany"
[[tenants.entries]]
id = "{GLOBAL}"
region = "global"
"""

REDIRECT_RULE = f"""
[[rules]]
id = "bench-redirect"
match.path = "/dashboard/customers/{{c}}/users/**"
action.type = "redirect"
action.status = 302
action.location = "{PORTAL}"
"""


class Target:
    """One proxy in one scenario: how to start it and how to load it."""

    def __init__(self, name, cmd, port, url, kind="wrk", script=None):
        self.name, self.cmd, self.port, self.url = name, cmd, port, url
        self.kind, self.script = kind, script


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--latency-duration", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds of every target in turn; the tables show medians")
    ap.add_argument("--baseline", help="another portalgate binary, measured beside this one "
                    "in every scenario (e.g. the build before a change)")
    ap.add_argument("--only", default="pass,redirect,explain,h2",
                    help="comma-separated scenarios: pass, redirect, explain, h2")
    ap.add_argument("--cores", type=int, default=1,
                    help="CPUs (and workers: nginx processes, HAProxy threads, portalgate "
                         "runtime threads) the proxies get; the load generator shares the last")
    args = ap.parse_args()
    chosen = args.only.split(",")
    global PROXY_CPUS, WORKERS
    PROXY_CPUS = ",".join(str(c) for c in range(args.cores))
    WORKERS = args.cores

    d = tempfile.mkdtemp(prefix="portalgate-bench-")
    procs = Procs()
    pack = os.path.abspath("config/policies/germany.toml")
    scenarios = {}
    try:
        bport = start_backend(d, procs)

        def pg(name, top="", listener="", rest="", binary=None):
            port = free_port()
            cfg = portalgate_conf(d, name, port, bport, top, listener, rest)
            return port, [binary or args.binary, "--log-level", "warn", "serve", "--config", cfg]

        def with_baseline(ts):
            """The scenario's portalgate targets again, run from --baseline."""
            if not args.baseline:
                return ts
            more = []
            for t in ts:
                if t.cmd[0] == args.binary:
                    port = free_port()
                    cfg = t.cmd[-1].replace(".toml", "-baseline.toml")
                    text = open(t.cmd[-1]).read().replace(f"127.0.0.1:{t.port}", f"127.0.0.1:{port}")
                    open(cfg, "w").write(text)
                    more.append(Target(t.name + " (baseline)",
                                       [args.baseline] + t.cmd[1:-1] + [cfg], port,
                                       t.url.replace(f":{t.port}/", f":{port}/"), t.kind, t.script))
            return ts + more

        def ng(name, server_body):
            port = free_port()
            conf = nginx_conf(d, name, server_body.replace("PORT", str(port)))
            return port, ["nginx", "-c", conf, "-p", d]

        if "pass" in chosen:
            path = f"/v1/customers/{GLOBAL}/users"
            t = []
            port, cmd = pg("pass")
            t.append(Target("portalgate", cmd, port, f"http://127.0.0.1:{port}{path}"))
            port, cmd = pg("pass-policy", top=f'include = ["{pack}"]', rest=GERMANY_TENANTS)
            t.append(Target("portalgate+policy", cmd, port, f"http://127.0.0.1:{port}{path}"))
            port, cmd = ng("pass-nginx", f"""
  upstream backend {{ server 127.0.0.1:{bport}; keepalive 64; }}
  server {{
    listen 127.0.0.1:PORT backlog=4096;
    location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}""")
            t.append(Target("nginx", cmd, port, f"http://127.0.0.1:{port}{path}"))
            port, cmd = ng("pass-nginx-headers", f"""
  upstream backend {{ server 127.0.0.1:{bport}; keepalive 64; }}
  map $http_x_request_id $rid {{ default $http_x_request_id; "" $request_id; }}
  server {{
    listen 127.0.0.1:PORT backlog=4096;
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
            t.append(Target("nginx+headers", cmd, port, f"http://127.0.0.1:{port}{path}"))
            port = free_port()
            hcfg = os.path.join(d, "haproxy.cfg")
            with open(hcfg, "w") as f:
                f.write(f"""global
  nbthread {WORKERS}
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
            t.append(Target("haproxy", ["haproxy", "-db", "-f", hcfg], port,
                            f"http://127.0.0.1:{port}{path}"))
            scenarios["pass"] = t

        if "redirect" in chosen:
            path = f"/dashboard/customers/{GERMANY}/users/list"
            t = []
            port, cmd = pg("redirect", rest=REDIRECT_RULE)
            t.append(Target("portalgate", cmd, port, f"http://127.0.0.1:{port}{path}"))
            port, cmd = ng("redirect-nginx", f"""
  server {{
    listen 127.0.0.1:PORT backlog=4096;
    location / {{ return 302 {PORTAL}; }}
  }}""")
            t.append(Target("nginx", cmd, port, f"http://127.0.0.1:{port}{path}"))
            # nginx answering as many bytes as portalgate (whose answer
            # carries a JSON body and its ids), the difference in a header:
            # what the answer's size alone costs nginx.
            pad = (answer_bytes(procs, t[0].cmd, t[0].port, path)
                   - answer_bytes(procs, cmd, port, path) - len("X-Pad: \r\n"))
            if pad > 0:
                port, cmd = ng("redirect-nginx-bytes", f"""
  server {{
    listen 127.0.0.1:PORT backlog=4096;
    location / {{ add_header X-Pad {"x" * pad}; return 302 {PORTAL}; }}
  }}""")
                t.append(Target("nginx+bytes", cmd, port, f"http://127.0.0.1:{port}{path}"))
            scenarios["redirect"] = t

        if "explain" in chosen:
            path = f"/v1/customers/{GERMANY}/users"
            script = post_script(d)
            port, cmd = pg("explain", top=f'include = ["{pack}"]', rest=GERMANY_TENANTS)
            nbody = explanation(procs, cmd, port)
            t = [Target("portalgate", cmd, port, f"http://127.0.0.1:{port}{path}", script=script)]
            port, cmd = ng("explain-nginx", f"""
  server {{
    listen 127.0.0.1:PORT backlog=4096;
    location / {{ default_type application/json; return 403 '{nbody}\n'; }}
  }}""")
            t.append(Target("nginx", cmd, port, f"http://127.0.0.1:{port}{path}", script=script))
            scenarios["explain"] = t

        if "h2" in chosen:
            cert, key = self_signed(d)
            path = f"/dashboard/customers/{GERMANY}/users/list"
            t = []
            port, cmd = pg("h2", listener=f'[[listeners.tls.certificates]]\ncert = "{cert}"\nkey = "{key}"',
                            rest=REDIRECT_RULE)
            t.append(Target("portalgate", cmd, port, f"https://127.0.0.1:{port}{path}", kind="h2"))
            port, cmd = ng("h2-nginx", f"""
  server {{
    listen 127.0.0.1:PORT ssl http2 backlog=4096;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    http2_max_requests 1000000;
    location / {{ return 302 {PORTAL}; }}
  }}""")
            t.append(Target("nginx", cmd, port, f"https://127.0.0.1:{port}{path}", kind="h2"))
            scenarios["h2"] = t

        scenarios = {s: with_baseline(ts) for s, ts in scenarios.items()}
        runs = {(s, t.name): [] for s, ts in scenarios.items() for t in ts}
        # Every target runs for the whole benchmark (idle ones cost nothing),
        # so a round is the targets of a scenario back to back: a noisy
        # neighbour then shifts a round, and the per-round ratios hold. The
        # order alternates from round to round.
        started = {}
        for s, ts in scenarios.items():
            for t in ts:
                p = procs.start(t.cmd)
                wait_port(t.port)
                if p.poll() is not None:
                    raise RuntimeError(f"{s}/{t.name} exited at start (status {p.returncode})")
                started[(s, t.name)] = p
                if t.kind == "h2":
                    h2load(t.url, 1)  # warm-up: pools, caches
                else:
                    wrk(t.url, args.connections, 1, t.script, True)
        for r in range(args.rounds):
            for s, ts in scenarios.items():
                # Every other round in reverse order, so that no target is
                # always the one that follows another scenario's load.
                for t in ts if r % 2 == 0 else ts[::-1]:
                    p = started[(s, t.name)]
                    quiet = s == "explain"
                    if t.kind == "h2":
                        t0 = cpu_ticks(tree(p.pid))
                        rps, total = h2load(t.url, args.duration)
                        t1 = cpu_ticks(tree(p.pid))
                        p50 = p99 = l50 = l99 = float("nan")
                    else:
                        t0 = cpu_ticks(tree(p.pid))
                        rps, total, p50, p99 = wrk(t.url, args.connections, args.duration,
                                                   t.script, quiet)
                        t1 = cpu_ticks(tree(p.pid))
                        _, _, l50, l99 = wrk(t.url, 1, args.latency_duration, t.script, quiet)
                    rss = peak_rss_kib(tree(p.pid))
                    if p.poll() is not None:
                        raise RuntimeError(f"{s}/{t.name} exited during the run "
                                           f"(status {p.returncode})")
                    per_req = lambda ticks: ticks / CLK_TCK * 1e6 / max(total, 1)
                    cpu_us = per_req(sum(t1) - sum(t0))
                    # The proxy's own code: the kernel's share (the
                    # sockets) is much the same for every proxy.
                    user_us = per_req(t1[0] - t0[0])
                    runs[(s, t.name)].append((rps, p50, p99, l50, l99, cpu_us, rss / 1024,
                                              user_us))
    finally:
        procs.stop_all()

    print(f"\nwrk -t1 -c{args.connections} -d{args.duration}s (keep-alive) and -c1 "
          f"-d{args.latency_duration}s; h2: h2load -t1 -c64 -m10 -D{args.duration} over TLS.\n"
          f"Proxy (and backend) on cpu0, load generator on cpu1; backend: nginx returning 58 bytes "
          f"of JSON.\nMedians of {args.rounds} rounds (the targets of a scenario back to back each "
          f"round); peak RSS is the largest. Ratios are medians (and ranges) of the per-round "
          f"ratios to the scenario's nginx.")
    hdr = ("scenario", "target", "req/s", "p50 ms", "p99 ms", "1c p50", "1c p99", "CPU µs/req",
           "user µs/req", "peak RSS MiB", "req/s ÷ nginx", "CPU ÷ nginx", "CPU ÷ nginx range",
           "user ÷ nginx", "p99 ÷ nginx")
    rows = []
    for s, ts in scenarios.items():
        ref = runs.get((s, "nginx"))
        for t in ts:
            rs = runs[(s, t.name)]
            cols = list(zip(*rs))
            rps, p50, p99, l50, l99, cpu = [statistics.median(c) for c in cols[:6]]
            rss = max(cols[6])
            user = statistics.median(cols[7])

            def ratio(i):
                """The median and range of this target's per-round ratios to nginx."""
                v = per_round(rs, ref, i)
                return (statistics.median(v), min(v), max(v)) if v else None

            def show(r, spread=False):
                if r is None:
                    return "-"
                return f"{r[1]:.2f}–{r[2]:.2f}" if spread else f"{r[0]:.2f}"

            num = lambda v, f: "-" if v != v else f.format(v)
            rows.append((s, t.name, f"{rps:,.0f}", num(p50, "{:.3f}"), num(p99, "{:.3f}"),
                         num(l50, "{:.3f}"), num(l99, "{:.3f}"), f"{cpu:.1f}", f"{user:.2f}",
                         f"{rss:.1f}", show(ratio(0)), show(ratio(5)), show(ratio(5), True),
                         show(ratio(7)), show(ratio(2))))
    widths = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
    line = lambda r: "| " + " | ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w)
                                       for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(line(hdr))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    # The rounds themselves: whether a median at or under nginx's is most
    # rounds or a few, which a median and a range do not say.
    print("\nCPU ÷ nginx, round by round (rounds at or under 1.00 of all):")
    for s, ts in scenarios.items():
        ref = runs.get((s, "nginx"))
        for t in ts:
            v = per_round(runs[(s, t.name)], ref, 5)
            if t.name == "nginx" or not v:
                continue
            under = sum(1 for x in v if x <= 1.0)
            print(f"  {s} / {t.name}: {' '.join(f'{x:.2f}' for x in v)} ({under} of {len(v)})")


if __name__ == "__main__":
    main()
