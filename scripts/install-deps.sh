#!/usr/bin/env bash
# Installs what snnmem needs and this machine lacks: Debian packages for jemalloc, OpenBLAS and
# pkg-config (the allocator and the engine link them), and checks that a Swift 6 toolchain is there.
set -euo pipefail

packages=(libjemalloc-dev libopenblas-dev zlib1g-dev pkg-config strace)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo_cmd=(sudo)
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null; then
  for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
    if [ -x "$candidate/swift" ]; then export PATH="$candidate:$PATH"; break; fi
  done
fi
if ! command -v swift >/dev/null; then
  echo "error: no Swift toolchain found. Install Swift 6.x for Debian 12 from swift.org and put its usr/bin on PATH." >&2
  exit 1
fi
