# shellcheck shell=bash
# Sourced by the load scripts' runners (run.sh, smoke.sh): installs what
# they drive and compare against, where it is missing (Debian packages):
# nginx, HAProxy, wrk, h2load, openssl, and with `tools valgrind` callgrind
# for instructions.py.
tools() {
  local need=()
  command -v nginx >/dev/null || need+=(nginx)
  command -v haproxy >/dev/null || need+=(haproxy)
  command -v wrk >/dev/null || need+=(wrk)
  command -v h2load >/dev/null || need+=(nghttp2-client)
  command -v openssl >/dev/null || need+=(openssl)
  for extra in "$@"; do
    command -v "$extra" >/dev/null || need+=("$extra")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  # Only the binaries are used; keep a packaged nginx service from holding port 80.
  if command -v systemctl >/dev/null; then
    systemctl stop nginx >/dev/null 2>&1 || true
  fi
}
