#!/usr/bin/env bash
# Installs the PyTorch side (python/, package snnmem_torch) into .venv-torch at the repository root:
# creates the venv when it is missing or when `import torch, spikingjelly` fails in it, installs
# torch==2.15.0, spikingjelly==2.0.0, pyyaml and pytest from PyPI, then `pip install -e python/`
# (no build isolation, no dependencies: it works offline once the packages are there).
# Idempotent and fast when everything is installed. Usage: bash scripts/install-python.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-torch
PY="$VENV/bin/python"
TORCH_VERSION=2.15.0
SJ_VERSION=2.0.0

# One interpreter start checks everything: 0 all there, 3 only the editable package missing, 1 packages.
check() {
    [ -x "$PY" ] || return 1
    "$PY" - "$TORCH_VERSION" "$SJ_VERSION" <<'PYEOF' 2>/dev/null
import importlib.metadata as m, os, sys
try:
    import torch, spikingjelly, yaml, pytest  # noqa: F401
    assert m.version("torch").split("+")[0] == sys.argv[1]
    assert m.version("spikingjelly") == sys.argv[2]
except Exception:
    sys.exit(1)
try:
    import snnmem_torch.cli  # noqa: F401
    here = os.path.realpath(os.path.dirname(snnmem_torch.cli.__file__))
    assert here == os.path.realpath("python/snnmem_torch")
    assert os.path.exists(os.path.join(os.path.dirname(sys.executable), "snnmem-torch"))
except Exception:
    sys.exit(3)
PYEOF
}

status=0
check || status=$?
if [ "$status" -eq 0 ]; then
    echo "install-python: $VENV ready"
    exit 0
fi

if [ "$status" -eq 1 ]; then
    if [ ! -x "$PY" ] || ! "$PY" -c "import sys" 2>/dev/null; then
        echo "install-python: creating $VENV"
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
    echo "install-python: installing torch==$TORCH_VERSION spikingjelly==$SJ_VERSION pyyaml pytest into $VENV"
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet "torch==$TORCH_VERSION" "spikingjelly==$SJ_VERSION" pyyaml pytest numpy
fi

echo "install-python: pip install -e python/"
"$PY" -m pip install --quiet --no-deps --no-build-isolation -e python/
status=0
check || status=$?
if [ "$status" -ne 0 ]; then
    echo "install-python: error: $VENV still lacks torch==$TORCH_VERSION, spikingjelly==$SJ_VERSION or snnmem_torch" >&2
    exit 1
fi
echo "install-python: $VENV ready"
