#!/usr/bin/env bash
# Installs what the tests need besides Go, when it is missing: the servers
# they start on free loopback ports (redis-server for the Redis state
# store, nats-server for the NATS JetStream source) and the browser the
# HTML report's test renders it in (chromium, headless), from Debian's
# packages. The tests never use a server the machine already runs, and
# fail, never skip, when a server or the browser is missing.
#
# Usage: scripts/test-deps.sh    (as root, or with sudo available)
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
# chromium is installed with its recommended packages (its fonts).
browser=()
command -v chromium >/dev/null 2>&1 || browser+=(chromium)

if [ ${#missing[@]} -eq 0 ] && [ ${#browser[@]} -eq 0 ]; then
  exit 0
fi

echo "test-deps: installing ${missing[*]} ${browser[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "test-deps: ${missing[*]} missing and not root (no sudo): install them" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ${#browser[@]} -gt 0 ]; then
  "${sudo[@]}" apt-get install -y -qq "${browser[@]}" >/dev/null
fi
# The packages may start services of their own on the standard ports; the
# tests never use them.
for p in "${missing[@]}" "${browser[@]}"; do
  command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || { echo "test-deps: $p is still missing after apt-get install" >&2; exit 1; }
done
