"""Prints a measurement's allocations layer by layer: `python -m snnmem_torch.layout FILE.json [LAYER ...]`.

For each (phase, layer) run of the stream, in order: every allocation (+bytes) and free (-bytes)
with the kernel that made it, a free marked with the event that allocated the block ("frees #i
<layer> <kernel>"), and the bytes the run leaves live. Then the saved tensors of those layers.
This is how LAYOUT-NOTES.md was read off the fixtures.
"""

from __future__ import annotations

import argparse
import sys

from .streamfile import read  # the stream inline or in FILE.stream.json.gz


def runs(stream: list) -> list:
    """[(phase, timestep, layer, [(index, event)])] for consecutive events of one layer and phase."""
    out = []
    for index, event in enumerate(stream):
        key = (event["phase"], event.get("timestep"), event["layer"])
        if not out or out[-1][:3] != key:
            out.append((*key, []))
        out[-1][3].append((index, event))
    return out


def describe(m: dict, layers=None, phases=None) -> str:
    stream = m.get("allocations")
    if stream is None:
        return "this file has no allocation stream (written with --no-stream or over --stream-limit)"
    made = {}
    lines = []
    running = 0
    peak_index = m["peak"]["index"]
    for phase, timestep, layer, events in runs(stream):
        before = running
        body = []
        for index, e in events:
            running += e["bytes"]
            if e["bytes"] > 0:
                made[e["address"]] = index
                what = ""
            else:
                origin = made.pop(e["address"], None)
                what = (f"  frees #{origin} {stream[origin]['layer']} {stream[origin].get('kernel', stream[origin]['op'])}"
                        if origin is not None else "  frees a block from before the step")
            mark = "  <== step peak" if index == peak_index else ""
            body.append(f"    #{index:<5d} {e['bytes']:>+12d}  {e['op']} / {e.get('kernel', e['op'])}{what}{mark}")
        if layers and layer not in layers:
            continue
        if phases and phase not in phases:
            continue
        t = "" if timestep is None else f" t={timestep}"
        lines.append(f"{phase}{t} {layer}: {running - before:+d} B (running {running} B above the start)")
        lines.extend(body)
    return "\n".join(lines)


def summary(m: dict) -> str:
    """One line per (phase, layer) run: events, net bytes, and the transient high-water mark above
    the run's start (the most the run had live at once beyond what it started with)."""
    stream = m.get("allocations")
    if stream is None:
        return "this file has no allocation stream"
    rows = [("phase", "layer", "events", "net", "high-water", "peak?")]
    running = 0
    for phase, timestep, layer, events in runs(stream):
        start = running
        high = 0
        has_peak = False
        for index, e in events:
            running += e["bytes"]
            high = max(high, running - start)
            has_peak |= index == m["peak"]["index"]
        t = "" if timestep is None else f" t={timestep}"
        rows.append((phase + t, str(layer), str(len(events)), f"{running - start:+d}", str(high), "<== peak" if has_peak else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  "
                     f"{r[4]:>{widths[4]}}  {r[5]}".rstrip() for r in rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m snnmem_torch.layout", description=__doc__.splitlines()[0])
    p.add_argument("file")
    p.add_argument("layers", nargs="*", help="only these layers (default: all)")
    p.add_argument("--phase", action="append", help="only these phases (forward, backward, recompute, optimizer, reset)")
    p.add_argument("--summary", action="store_true", help="one line per (phase, layer) run: net and high-water bytes")
    args = p.parse_args(argv)
    m = read(args.file)
    print(summary(m) if args.summary else describe(m, set(args.layers) or None, set(args.phase or []) or None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
