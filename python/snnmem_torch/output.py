"""The measurement JSON (schema `snnmem-torch-measurement/1`): atomic writing, reading, a table."""

from __future__ import annotations

import json
import os
import tempfile

SCHEMA = "snnmem-torch-measurement/1"

REQUIRED_KEYS = ["schema", "profile", "profileFile", "profileSHA256", "runtime", "device", "strategy", "segment",
                 "batch", "timesteps", "dtype", "torch", "spikingjelly", "savedBytes", "savedByLayer",
                 "neuronStateBytes", "liveAtStartBytes", "stepPeakBytes", "peak", "allocations", "cuda"]


def _flat(value) -> bool:
    """A dict of scalars (or of scalars and short scalar lists): written on one line."""
    return isinstance(value, dict) and all(
        not isinstance(v, (dict, list)) or (isinstance(v, list) and all(not isinstance(i, (dict, list)) for i in v))
        for v in value.values())


def _format(value, indent: int) -> str:
    pad = " " * indent
    inner = " " * (indent + 1)
    if isinstance(value, dict) and value and not _flat(value):
        items = [f"{inner}{json.dumps(k)}: {_format(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        items = [inner + _format(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, separators=(", ", ": "))


STREAM_FORMS = ("full", "compact", "minimal")


def _stream_events(events: list, form: str) -> list:
    """The allocation events as `form` writes them (see `dumps`)."""
    if form == "compact":
        return [{k: v for k, v in e.items() if not (k == "timestep" and v is None)} for e in events]
    ids: dict = {}
    out = []
    for e in events:
        slim = {k: v for k, v in e.items() if k != "kernel" and not (k == "timestep" and v is None)}
        if slim.get("address") is not None:
            slim["address"] = ids.setdefault(slim["address"], len(ids) + 1)
        out.append(slim)
    return out


def dumps(measurement: dict, stream_form: str = "full") -> str:
    """JSON with one line per allocation event and per saved tensor (diff-friendly, compact).

    `stream_form`, for a stream that would not fit a size limit otherwise: "compact" writes each
    allocation event without spaces and without a null `timestep` (a reader takes a missing timestep
    as null); "minimal" also leaves `kernel` out (readers use `op`) and numbers the addresses 1, 2, ...
    in order of first appearance (a free still names its allocation's number, a reused address its
    number again). Everything else is written as in "full"."""
    if stream_form not in STREAM_FORMS:
        raise ValueError(f"stream form {stream_form!r}: use one of {', '.join(STREAM_FORMS)}")
    if stream_form == "full" or not measurement.get("allocations"):
        return _format(measurement, 0) + "\n"
    placeholder = "\u0000stream\u0000"
    text = _format({**measurement, "allocations": placeholder}, 0)
    events = _stream_events(measurement["allocations"], stream_form)
    stream = "[\n" + ",\n".join("  " + json.dumps(e, separators=(",", ":")) for e in events) + "\n ]"
    return text.replace(json.dumps(placeholder), stream, 1) + "\n"


def write_atomic(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file in the same folder and a rename, so that a
    reader never sees a half-written file and an interrupted run leaves the old file intact."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def write(path: str, measurement: dict, stream_form: str = "full") -> None:
    write_atomic(path, dumps(measurement, stream_form))


def read(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema is {data.get('schema')!r}, expected {SCHEMA!r}")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ValueError(f"{path}: missing keys {', '.join(missing)}")
    return data


def human(n: int) -> str:
    value = float(abs(n))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            text = f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
            return ("-" if n < 0 else "") + text
        value /= 1024
    return str(n)


def table(m: dict) -> str:
    """A short summary: saved bytes per layer (non-zero ones), then the totals and the peak."""
    rows = [("layer", "saved", "tensors", "not counted")]
    for entry in m["savedByLayer"]:
        counted = [t for t in entry["tensors"] if t["role"] == "activation"]
        others = [t for t in entry["tensors"] if t["role"] != "activation"]
        if not entry["tensors"]:
            continue
        rows.append((entry["layer"], human(entry["bytes"]), str(len(counted)),
                     ", ".join(f"{t['role']} {human(t['bytes'])}" for t in others)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"{m['profile']} ({m['profileFile']}): {m['strategy']}"
             + (f" k={m['segment']}" if m.get("segment") else "")
             + f", T={m['timesteps']}, B={m['batch']}, {m['dtype']}, {m['runtime']}, torch {m['torch']}, "
             f"spikingjelly {m['spikingjelly']}"]
    for i, r in enumerate(rows):
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    peak = m["peak"]
    state = sum(e["bytes"] for e in m["neuronStateBytes"])
    lines.append("")
    lines.append(f"saved for backward {human(m['savedBytes'])} ({m['savedBytes']} B); neuron state {human(state)}")
    lines.append(f"live at step start {human(m['liveAtStartBytes'])} ({m['liveAtStartBytes']} B)")
    where = f"{peak['phase']}" + (f" t={peak['timestep']}" if peak.get("timestep") is not None else "")
    lines.append(f"step peak          {human(m['stepPeakBytes'])} ({m['stepPeakBytes']} B) at {where}, "
                 f"layer {peak.get('layer')}, {peak['op']} (event {peak['index']} of {m.get('allocationCount')})")
    if m.get("cuda"):
        c = m["cuda"]
        lines.append(f"cuda max allocated {human(c['maxAllocatedBytes'])}, max reserved {human(c['maxReservedBytes'])}")
    if m.get("verification"):
        v = m["verification"]
        lines.append(f"gradients vs {v['reference']}: max |diff| {v['maxAbsGradDiff']:.3g}")
    return "\n".join(lines)
