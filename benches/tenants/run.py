#!/usr/bin/env python3
"""A large tenant directory: load time and memory of check, serve and reload.

Generates a tenant CSV (`id,region,name`, 1,000,000 lines by default, one in
ten in Germany) beside the Germany policy pack, then measures:

- `portalgate check`: wall time and peak RSS;
- `portalgate serve`: time until the listener accepts, RSS and peak RSS;
- a SIGHUP reload: time until `/config` says generation 2, RSS and peak
  after, and RSS again a few seconds later;
- SIGHUP sent while the configuration is still loading, and again during a
  reload: the process must live on and serve.

Usage: python3 benches/tenants/run.py --binary target/release/portalgate [--tenants N]
"""
import argparse
import json
import os
import pathlib
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid):
    """VmRSS and VmHWM of a process, in MiB."""
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) / 1024
    return out["VmRSS"], out["VmHWM"]


def generation(admin):
    try:
        with urllib.request.urlopen(f"http://{admin}/config", timeout=2) as r:
            return json.load(r)["generation"]
    except OSError:
        return None


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def wait(what, check, timeout=120):
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.005)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--tenants", type=int, default=1_000_000)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    root = pathlib.Path(__file__).resolve().parents[2]
    d = pathlib.Path(tempfile.mkdtemp(prefix="portalgate-tenants-"))
    try:
        shutil.copytree(root / "config/policies", d / "policies")
        rng = random.Random(7)
        started = time.time()
        with open(d / "tenants.csv", "w") as f:
            f.write("id,region,name\n")
            for i in range(args.tenants):
                region = "germany" if i % 10 == 0 else "global"
                h = f"{rng.getrandbits(128):032x}"
                f.write(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]},{region},Customer {i}\n")
        size = (d / "tenants.csv").stat().st_size
        print(f"tenants.csv: {args.tenants} tenants, {size / 2**20:.1f} MiB "
              f"(generated in {time.time() - started:.1f} s)")
        port, admin_port = free_port(), free_port()
        admin = f"127.0.0.1:{admin_port}"
        (d / "portalgate.toml").write_text(f"""
include = ["policies/germany.toml"]
[[listeners]]
address = "127.0.0.1:{port}"
[upstream]
url = "http://127.0.0.1:9"
[admin]
address = "{admin}"
[server]
watch = false
[tenants]
default_region = "global"
files = ["tenants.csv"]
""")
        config = str(d / "portalgate.toml")

        # check
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t = time.time()
        r = subprocess.run([binary, "check", "--config", config], capture_output=True, text=True)
        check_s = time.time() - t
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        assert r.returncode == 0, r.stdout + r.stderr
        print(f"check: {check_s:.2f} s, peak RSS {peak / 1024:.1f} MiB"
              + ("" if peak > before else " (peak of an earlier child)"))

        env = dict(os.environ, PORTALGATE_LOG="warn")
        # serve until listening
        t = time.time()
        p = subprocess.Popen([binary, "serve", "--config", config], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait("the listener", lambda: accepts(port) or p.poll() is not None)
            assert p.poll() is None, "serve exited"
            serve_s = time.time() - t
            wait("the admin listener", lambda: generation(admin) == 1)
            rss, hwm = status(p.pid)
            print(f"serve: listening after {serve_s:.2f} s; RSS {rss:.1f} MiB (peak {hwm:.1f})")

            # reload
            t = time.time()
            p.send_signal(signal.SIGHUP)
            wait("generation 2", lambda: generation(admin) == 2)
            reload_s = time.time() - t
            rss2, hwm2 = status(p.pid)
            time.sleep(3)
            rss3, _ = status(p.pid)
            print(f"SIGHUP reload: {reload_s:.2f} s; RSS {rss2:.1f} MiB after (peak {hwm2:.1f}), "
                  f"{rss3:.1f} MiB 3 s later")
            # SIGHUP during a reload: queued, never a crash.
            p.send_signal(signal.SIGHUP)
            time.sleep(0.05)
            p.send_signal(signal.SIGHUP)
            wait("generation 3 or 4", lambda: (generation(admin) or 0) >= 3)
            assert p.poll() is None, "died on SIGHUP during a reload"
            print(f"SIGHUP during a reload: still serving, generation {generation(admin)}")
            for _ in range(3):
                g = generation(admin)
                p.send_signal(signal.SIGHUP)
                wait("the next generation", lambda: (generation(admin) or 0) > g)
            time.sleep(1)
            rss4, hwm4 = status(p.pid)
            print(f"after 3 more reloads (generation {generation(admin)}): RSS {rss4:.1f} MiB "
                  f"(peak {hwm4:.1f})")
        finally:
            p.terminate()
            p.wait(30)

        # SIGHUP while the configuration is still loading.
        p = subprocess.Popen([binary, "serve", "--config", config], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.05)
            p.send_signal(signal.SIGHUP)
            wait("the listener after an early SIGHUP", lambda: accepts(port) or p.poll() is not None)
            alive = p.poll() is None
            print("SIGHUP during startup: " + ("still serving" if alive else
                                                f"the process died ({p.returncode})"))
        finally:
            if p.poll() is None:
                p.terminate()
                p.wait(30)
        return 0 if alive else 1
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
