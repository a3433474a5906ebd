#!/usr/bin/env bash
# Renders a report page to a PNG the way a reader's screen shows it (1280x800, headless
# Chromium), to check the layout by eye: ./scripts/render-report-png.sh REPORT_HTML OUT_PNG
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 REPORT_HTML OUT_PNG" >&2
  exit 2
fi
html=$1
out=$2
[ -f "$html" ] || { echo "error: no such file: $html" >&2; exit 1; }

if ! command -v chromium >/dev/null; then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: need root or sudo to install chromium" >&2; exit 1; }
    sudo_cmd=(sudo)
  fi
  echo "installing chromium"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null
fi

abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
mkdir -p "$(dirname "$out")"
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
# --no-sandbox: we run as root in containers, where Chromium's sandbox cannot start.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,800 \
  --screenshot="$abs_out" "file://$abs_html" 2>/dev/null
[ -s "$abs_out" ] || { echo "error: chromium wrote no screenshot to $abs_out" >&2; exit 1; }
echo "$abs_out"
