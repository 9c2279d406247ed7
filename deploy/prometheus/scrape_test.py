#!/usr/bin/env python3
"""The shipped Kubernetes setup, scraped by a real Prometheus.

Runs `portalgate serve` on the configuration of deploy/kubernetes/configmap.yaml
(as the pod sees it, with the admin token set from the environment as the
Deployment does, addresses moved to 127.0.0.1 and free ports), and a real
`prometheus` that scrapes it the way the Deployment's `prometheus.io/*`
annotations say (port, path). Passes when Prometheus reports the target up
and has the proxy's series, and every query of the Grafana dashboard
(deploy/grafana/portalgate.json) runs on it; exits 1 otherwise.

Usage: python3 deploy/prometheus/scrape_test.py target/debug/portalgate
"""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_dashboard(root, query):
    """Every query of the Grafana dashboard is PromQL this Prometheus runs."""
    dash = json.load(open(root / "deploy/grafana/portalgate.json"))
    n = 0
    for panel in dash["panels"]:
        for t in panel["targets"]:
            expr = t["expr"].replace("$__rate_interval", "1m").replace("$instance", ".*")
            try:
                query(expr)
            except urllib.error.HTTPError as e:
                print(f"dashboard panel {panel['title']!r}: {expr}: {e.read().decode()}",
                      file=sys.stderr)
                return 1
            n += 1
    print(f"the dashboard's {n} queries run")
    return 0


def main():
    binary = os.path.abspath(sys.argv[1])
    root = pathlib.Path(__file__).resolve().parents[2]
    d = pathlib.Path(tempfile.mkdtemp(prefix="portalgate-scrape-"))
    procs = []
    try:
        (d / "conf").mkdir()
        shutil.copytree(root / "config/policies", d / "policies")
        cm = yaml.safe_load(open(root / "deploy/kubernetes/configmap.yaml"))
        deployment = yaml.safe_load(open(root / "deploy/kubernetes/deployment.yaml"))
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", annotations
        admin_port, port = free_port(), free_port()
        for name, text in cm["data"].items():
            text = text.replace(f"0.0.0.0:{annotations['prometheus.io/port']}", f"127.0.0.1:{admin_port}")
            text = text.replace("0.0.0.0:8080", f"127.0.0.1:{port}")
            (d / "conf" / name).write_text(text)
        env = dict(os.environ, PORTALGATE_ADMIN_TOKEN="a-token-the-scraper-does-not-know",
                   PORTALGATE_PSEUDONYM_KEY="scrape-test-pseudonym-key")
        procs.append(subprocess.Popen(
            [binary, "serve", "--config", str(d / "conf/portalgate.toml")], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        prom_port = free_port()
        (d / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [{
                "job_name": "portalgate",
                "metrics_path": annotations["prometheus.io/path"],
                "static_configs": [{"targets": [f"127.0.0.1:{admin_port}"]}],
            }],
        }))
        procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={d / 'prometheus.yml'}",
             f"--storage.tsdb.path={d / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def query(q):
            url = f"http://127.0.0.1:{prom_port}/api/v1/query?query={urllib.parse.quote(q)}"
            with urllib.request.urlopen(url, timeout=2) as r:
                return json.load(r)["data"]["result"]

        deadline = time.time() + 60
        last = None
        while time.time() < deadline:
            try:
                up = query('up{job="portalgate"}')
                rules = query("portalgate_rule_matches_total")
                last = (up, len(rules))
                if up and up[0]["value"][1] == "1" and rules:
                    print(f"prometheus scraped portalgate: up=1, {len(rules)} rule series")
                    return check_dashboard(root, query)
            except OSError as e:
                last = e
            time.sleep(0.5)
        print(f"prometheus never scraped portalgate: {last}", file=sys.stderr)
        return 1
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
