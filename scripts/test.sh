#!/usr/bin/env bash
# The test suite, in release mode (numeric loops are slow in debug builds).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
swift build -c release --build-tests
swift test -c release --skip-build --disable-swift-testing
