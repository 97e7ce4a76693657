#!/bin/bash
# Installs what building and testing cfgm needs on a fresh Debian 12 machine:
# a C toolchain and headers for the bundled libgit2/libssh2 builds, and the
# tools the tests drive (git, dpkg/apt for module tests, promtool from the
# prometheus package for the agent's metrics test). Idempotent; only
# runs apt-get when something is missing. Mirrors come from the machine's
# own apt configuration.
set -euo pipefail
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in build-essential pkg-config libssl-dev zlib1g-dev git prometheus; do
  have "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "[deps] installing: ${need[*]}" >&2
  if [ "$(id -u)" != 0 ]; then echo "[deps] run as root (apt-get)" >&2; exit 1; fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
command -v cargo >/dev/null || { echo "[deps] cargo not found: install Rust (rustup) first" >&2; exit 1; }
