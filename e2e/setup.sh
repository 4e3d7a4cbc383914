#!/usr/bin/env bash
# Installs everything samizdat's demo and tests need on a fresh machine, idempotently:
# the Python venv with the package and its dev tools, and the sandbox's Kubernetes binaries
# (built from pinned Go modules into ~/.cache/samizdat/bin, reused when already there).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in python3 go npm; do
    command -v "$tool" >/dev/null || { echo "setup: $tool is required" >&2; exit 1; }
done
# promtool and prometheus, for the alert-rule tests and the e2e scrape of a real Prometheus
if ! command -v promtool >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
# BIND (named) and dig/nsupdate, for the sandbox's DNS server that external-dns writes into (e2e/sandbox/dns.py)
if ! command -v named >/dev/null || ! command -v dig >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bind9 bind9-dnsutils
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
binaries=$(.venv/bin/python -m e2e.sandbox build)
# The kubectl and helm built for the sandbox, on PATH wherever the venv is: the README's tour needs no
# kubectl of the machine's own (and uses the client that matches the sandbox's servers).
for tool in kubectl helm; do
    ln -sfn "$binaries/$tool" ".venv/bin/$tool"
done
