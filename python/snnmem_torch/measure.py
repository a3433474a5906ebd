"""Measures one training step of a profile in PyTorch + SpikingJelly: what autograd keeps per
layer, the neuron states, and every allocation and free with the step's peak.

Order: a warm-up step (so that optimizer state exists, as in steady state; under a float16
GradScaler as many as it takes to get a step whose update was not skipped), the measured step
under the profiler, then one more step recording the saved tensors (the recorder holds
references, so it must not run in the measured step). All three steps run the same code on the
same batch, so what the third step saves is what the second one saved.
"""

from __future__ import annotations

import platform
from typing import Optional

import torch

from . import allocations as alloc
from .output import SCHEMA
from .profile import load
from .saved import dtype_name, record_saved, storage_bytes, storage_key
from .strategies import Trainer, reference_gradients


def live_bytes(trainer: Trainer) -> dict:
    """Bytes of every storage live outside the step, by role, each storage once."""
    seen = set()
    by_role = {"parameters": 0, "gradients": 0, "buffers": 0, "optimizerState": 0, "input": 0, "neuronState": 0}
    if trainer.scaler is not None:
        by_role["gradScaler"] = 0

    def add(role, tensor):
        if not isinstance(tensor, torch.Tensor):
            return
        key = storage_key(tensor)
        if key in seen or tensor.untyped_storage().data_ptr() == 0:
            return
        seen.add(key)
        by_role[role] += storage_bytes(tensor)

    for p in trainer.net.parameters():
        add("parameters", p)
    for p in trainer.net.parameters():
        add("gradients", p.grad)
    for b in trainer.net.buffers():
        add("buffers", b)
    for state in trainer.optimizer.state.values():
        for value in state.values():
            add("optimizerState", value)
    add("input", trainer.x)
    add("input", trainer.labels)
    for _, module in trainer.neurons:
        add("neuronState", module.v)
    for tensor in scaler_tensors(trainer):
        add("gradScaler", tensor)
    return by_role


def scaler_tensors(trainer: Trainer) -> list:
    """The GradScaler's persistent tensors: its scale (float32 []) and growth tracker (int32 [])."""
    scaler = trainer.scaler
    if scaler is None:
        return []
    return [t for t in (scaler._scale, scaler._growth_tracker) if isinstance(t, torch.Tensor)]


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory} B)"
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {torch.get_num_threads()} threads"


def _layer_order(trainer: Trainer) -> list:
    return ["input"] + list(trainer.net.layers.keys()) + ["loss"]


def measure(profile_path: str, strategy: str = "bptt", batch: Optional[int] = None, timesteps: Optional[int] = None,
            segment: Optional[int] = None, device: str = "cpu", stream: bool = True, verify: bool = False,
            seed: int = 0, dtype: Optional[str] = None, net=None) -> dict:
    """`dtype` overrides the profile's (float16/bfloat16: autocast over an float32 model, see strategies).
    `net`: measure this network (the user's model, from `snnmem-torch check`) instead of the profile's."""
    from importlib import metadata

    profile = load(profile_path)
    trainer = Trainer(profile, strategy, batch, timesteps, segment, device, seed, dtype, net=net)
    dev = trainer.device
    cuda = dev.type == "cuda"

    warm_up_steps = trainer.warm_up()  # optimizer state, lazy initialization, a settled loss scale
    scale_before = trainer.scaler.get_scale() if trainer.scaler is not None else None
    if cuda:
        torch.cuda.synchronize(dev)

    # The measured step.
    start = live_bytes(trainer)
    live_at_start = sum(start.values())
    cuda_result = None
    history = None
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
        allocated_at_start = torch.cuda.memory_allocated(dev)
        reserved_at_start = torch.cuda.memory_reserved(dev)
        try:
            torch.cuda.memory._record_memory_history(max_entries=1_000_000)
        except Exception as error:  # pragma: no cover - depends on the CUDA build
            history = {"error": str(error)}
    steps_before = trainer.optimizer_steps
    trainer.recompute_autocast = []
    trainer.tracker.ranges = True
    try:
        events = alloc.record(trainer.step, dev.type)
    finally:
        trainer.tracker.ranges = False
    measured_step_taken = trainer.optimizer_steps > steps_before
    recompute_autocast = list(trainer.recompute_autocast)
    if cuda:
        torch.cuda.synchronize(dev)
        cuda_result = {
            "maxAllocatedBytes": int(torch.cuda.max_memory_allocated(dev)),
            "maxReservedBytes": int(torch.cuda.max_memory_reserved(dev)),
            "allocatedAtStartBytes": int(allocated_at_start),
            "reservedAtStartBytes": int(reserved_at_start),
        }
        if history is None:
            cuda_result["history"] = _cuda_history(dev)
            torch.cuda.memory._record_memory_history(enabled=None)
        else:
            cuda_result["history"] = history
    end = live_bytes(trainer)
    peak_running, peak_index = events.peak

    # The saved tensors, in a step of their own.
    recorder = record_saved(trainer)
    groups = recorder.groups
    chosen = max(groups, key=lambda g: g.saved_bytes)

    # Layers in forward order; a layer that saves nothing (flatten, a residual add, global pooling)
    # has no entry.
    saved_by_layer = []
    order = _layer_order(trainer)
    for layer in order + [name for name in chosen.by_layer if name not in order]:
        tensors = chosen.by_layer.get(layer, [])
        if tensors:
            saved_by_layer.append({"layer": layer, "bytes": sum(t["bytes"] for t in tensors if t["role"] == "activation"),
                                   "tensors": tensors})

    peak_event = events.events[peak_index] if peak_index >= 0 else None
    peak = {"phase": peak_event.phase if peak_event else "start", "op": peak_event.op if peak_event else "",
            "kernel": peak_event.kernel if peak_event else "", "layer": peak_event.layer if peak_event else None,
            "timestep": peak_event.timestep if peak_event else None, "index": peak_index,
            "runningBytes": peak_running}

    verification = None
    if verify and strategy == "checkpoint":
        diff, reference = reference_gradients(profile, trainer.batch, trainer.timesteps, trainer.segment, device, seed,
                                              trainer.dtype_name)
        verification = {"reference": reference, "maxAbsGradDiff": diff}
    elif verify and strategy == "revsnn":
        from .reversible import verify as verify_revsnn
        verification = verify_revsnn(profile, trainer.batch, trainer.timesteps, device, seed, trainer.dtype_name)
    elif verify and strategy == "trevsnn":
        from .trevsnn import verify as verify_trevsnn
        verification = verify_trevsnn(profile, trainer.batch, trainer.timesteps, device, seed)

    result = {
        "schema": SCHEMA,
        "profile": profile.name,
        "profileFile": profile_path,
        "profileSHA256": profile.sha256,
        "runtime": "pytorch-cuda" if cuda else "pytorch-cpu",
        "device": device_description(dev),
        # oneDNN's bfloat16 weight-gradient scratchpads grow with the threads: the plan needs them.
        "threads": torch.get_num_threads(),
        "strategy": strategy,
        "segment": trainer.segment,
        "batch": trainer.batch,
        "timesteps": trainer.timesteps,
        "dtype": trainer.dtype_name,
        "autocast": _autocast_description(trainer, recompute_autocast),
        "torch": torch.__version__,
        "spikingjelly": metadata.version("spikingjelly"),
        "savedBytes": chosen.saved_bytes,
        "savedTimestep": chosen.group if strategy == "sltt" else None,
        "savedBytesPerTimestep": [g.saved_bytes for g in groups] if strategy == "sltt" else None,
        "savedByLayer": saved_by_layer,
        "neuronStateBytes": chosen.neuron_state,
        "liveAtStartBytes": live_at_start,
        "liveAtStart": start,
        "stepPeakBytes": live_at_start + peak_running,
        "peak": peak,
        "liveAtPeak": _live_at_peak(events, peak_index),
        "allocationCount": len(events.events),
        "streamSumBytes": events.total,
        "liveAtEndBytes": sum(end.values()),
        "allocations": [e.to_json() for e in events.events] if stream else None,
        "allocationsOmitted": None if stream else "--no-stream",
        "allocationsForm": "full" if stream else None,
        "cuda": cuda_result,
        "verification": verification,
        "gradScaler": None if trainer.scaler is None else {
            "scale": scale_before, "warmUpSteps": warm_up_steps, "measuredStepTaken": measured_step_taken},
        "threads": torch.get_num_threads(),
    }
    if events.total != result["liveAtEndBytes"] - live_at_start:
        result["warning"] = ("the allocation stream does not sum to the change in live bytes over the step: "
                             "some storage allocated before the step was freed in it (PyTorch reports no such free)")
    if not measured_step_taken:
        result["warning"] = (f"the GradScaler skipped the measured step's optimizer update (inf/NaN gradients after "
                             f"{warm_up_steps} warm-up steps): its stream has no optimizer updates")
    return result


def _autocast_description(trainer: Trainer, recompute: list) -> Optional[dict]:
    """How mixed precision ran (None for float32): the autocast dtype, where its regions were, and for
    checkpoint the autocast dtype each recomputation of the measured step ran under."""
    if trainer.autocast_dtype is None:
        return None
    return {"device": trainer.device.type, "dtype": trainer.dtype_name,
            "regions": "per timestep (forward + loss)" if trainer.strategy == "sltt" else "forward + loss",
            "parameters": "float32", "gradScaler": trainer.scaler is not None,
            "recomputeAutocast": recompute if trainer.strategy == "checkpoint" else None}


def _live_at_peak(events: alloc.Stream, peak_index: int) -> list:
    """Storages live at the peak that the step allocated, grouped by (phase, layer, op) of their allocation."""
    live: dict = {}
    for index, event in enumerate(events.events[:peak_index + 1]):
        if event.bytes > 0:
            live[event.address] = event
        else:
            live.pop(event.address, None)
    groups: dict = {}
    for event in live.values():
        key = (event.phase, event.timestep, event.layer, event.op)
        entry = groups.setdefault(key, {"phase": event.phase, "timestep": event.timestep, "layer": event.layer,
                                        "op": event.op, "bytes": 0, "count": 0})
        entry["bytes"] += event.bytes
        entry["count"] += 1
    return list(groups.values())


def _cuda_history(device: torch.device) -> dict:  # pragma: no cover - needs a GPU
    """Peak of the CUDA caching allocator's own trace (block sizes as it rounds them)."""
    snapshot = torch.cuda.memory._snapshot(device)
    running = best = 0
    count = 0
    for trace in snapshot.get("device_traces", []):
        for entry in trace:
            action = entry.get("action")
            if action == "alloc":
                running += entry["size"]
            elif action == "free_completed":
                running -= entry["size"]
            else:
                continue
            count += 1
            best = max(best, running)
    return {"events": count, "peakAboveStartBytes": best}


__all__ = ["measure", "live_bytes", "dtype_name"]
