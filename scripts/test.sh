#!/usr/bin/env bash
# The test suite: the Swift package in release mode (numeric loops are slow in debug builds),
# then the PyTorch side (python/, installed with PyTorch and SpikingJelly into .venv-torch when
# missing), whose tests measure PyTorch itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
swift build -c release --build-tests
swift test -c release --skip-build --disable-swift-testing
bash scripts/install-python.sh
PYTHONWARNINGS=ignore .venv-torch/bin/python -m pytest python/tests -q -p no:cacheprovider
