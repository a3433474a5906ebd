#!/usr/bin/env python3
"""SpikingJelly's multi-step modules on the CPU, for the side-by-side speed comparison with
`snnmem run PROFILE --strategy bptt`: one training step (forward over all T timesteps, backward, the
profile's optimizer, functional.reset_net) of a bundled profile's network, built layer for layer by
this project's Python package (python/snnmem_torch: `layer.Conv2d`, `BatchNorm2d`, `LIFNode`, ... with
step_mode='m', so each conv and batch norm runs over all T*B samples at once and batch norm normalizes
over T*B). The input is the image repeated over T, the loss cross-entropy on the time-averaged logits,
as `snnmem-torch measure` runs a bptt step. Prints one JSON line with every step's milliseconds and
their median, in the shape of scripts/pytorch-step.py's.

  PYTHONPATH=python .venv-torch/bin/python scripts/spikingjelly-step.py profiles/vgg11.yaml --batch 16 [--steps 10]

Not part of the project's build or tests: it needs PyTorch and SpikingJelly (bash scripts/install-python.sh).
"""
import argparse
import importlib.metadata
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from snnmem_torch.build import build, optimizer_for  # noqa: E402
from snnmem_torch.profile import load  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile")
    parser.add_argument("--batch", type=int, help="the profile's batch unless given")
    parser.add_argument("--timesteps", type=int, help="the profile's T unless given")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from spikingjelly.activation_based import functional


    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    profile = load(args.profile)
    batch = args.batch or profile.batch
    timesteps = args.timesteps or profile.timesteps
    net = build(profile, step_mode="m")
    net.train()
    optimizer = optimizer_for(profile, net.parameters())
    x = torch.rand(batch, *profile.input_shape)
    labels = torch.randint(0, profile.classes, (batch,))

    times_ms, losses = [], []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        x_seq = x.unsqueeze(0).repeat(timesteps, 1, 1, 1, 1)
        loss = F.cross_entropy(net(x_seq).mean(0), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        functional.reset_net(net)
        elapsed = (time.perf_counter() - start) * 1e3
        if step >= args.warmup:
            times_ms.append(elapsed)
            losses.append(loss.item())

    print(json.dumps({
        "torch": torch.__version__, "spikingjelly": importlib.metadata.version("spikingjelly"), "network": profile.name,
        "mode": "spikingjelly-multistep", "threads": torch.get_num_threads(), "timesteps": timesteps, "batch": batch,
        "medianStepMs": round(statistics.median(times_ms), 1), "stepMs": [round(t, 1) for t in times_ms],
        "finalLoss": round(losses[-1], 4),
    }))


if __name__ == "__main__":
    main()
