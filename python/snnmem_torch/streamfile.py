"""A measurement's allocation stream in a gzip file of its own, for streams too long for the JSON.

RevSNN's step has thousands of events (each F and G runs twice), so its stream alone is several
times the 300 KB a committed fixture may have. `split` moves it out of FILE.json into
FILE.stream.json.gz (a JSON list of the events, gzip with no timestamp, so the bytes depend only
on the events) and leaves in FILE.json `"allocations": null`, `"allocationsFile"` (the sidecar's
name, relative to FILE.json) and `"allocationsOmitted"` (why). `read` loads a measurement and its
sidecar, if any, so that tools see the stream as if it were inline.

    python -m snnmem_torch.streamfile FILE.json [--limit BYTES]   # split when FILE.json is over BYTES
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys

from . import output

SUFFIX = ".stream.json.gz"


def sidecar_path(path: str) -> str:
    base = path[:-len(".json")] if path.endswith(".json") else path
    return base + SUFFIX


def split(path: str, limit: int = 300_000) -> bool:
    """Moves the stream of `path` into its sidecar when the file is larger than `limit` bytes.

    Returns whether it did. A file without a stream, or small enough, is left as it is."""
    m = output.read(path)
    events = m.get("allocations")
    if not events or os.path.getsize(path) <= limit:
        return False
    target = sidecar_path(path)
    data = json.dumps(events, separators=(",", ":")).encode("utf-8")
    _write_bytes(target, gzip.compress(data, mtime=0))
    size = os.path.getsize(path)
    m["allocations"] = None
    m["allocationsFile"] = os.path.basename(target)
    m["allocationsOmitted"] = (f"the {len(events)} events would make this file {size} bytes, over {limit}: they are in "
                               f"{os.path.basename(target)} (gzip JSON list)")
    output.write(path, m)
    return True


def _write_bytes(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def read(path: str) -> dict:
    """The measurement at `path` with its stream, read from the sidecar when it was split off."""
    m = output.read(path)
    name = m.get("allocationsFile")
    if m.get("allocations") is None and name:
        with gzip.open(os.path.join(os.path.dirname(path), name), "rt", encoding="utf-8") as handle:
            m["allocations"] = json.load(handle)
    return m


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m snnmem_torch.streamfile",
                                description="Move a measurement's allocation stream into FILE.stream.json.gz")
    p.add_argument("files", nargs="+")
    p.add_argument("--limit", type=int, default=300_000, help="split only files larger than this (bytes)")
    args = p.parse_args(argv)
    for path in args.files:
        if split(path, args.limit):
            print(f"{path}: stream moved to {sidecar_path(path)} ({os.path.getsize(sidecar_path(path))} bytes); "
                  f"{os.path.getsize(path)} bytes left")
        else:
            print(f"{path}: left as it is")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
