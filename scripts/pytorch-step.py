#!/usr/bin/env python3
"""PyTorch eager reference for one training step of CIFARNet or VGG-11 (T=4, batch 16 by default), for
the side-by-side speed comparison with `snnmem run profiles/cifarnet.yaml` / `profiles/vgg11.yaml`. Not
part of the project's build or tests: it needs PyTorch from PyPI (`pip install torch`), which the
project never depends on.

The networks are the profiles written out by hand: 3x3 convs without bias (padding 1), each followed by
batch norm (training mode) and a LIF neuron (tau 2, threshold 1, hard reset to 0, reset not detached,
atan surrogate with alpha 2, SpikingJelly's decay_input charge), 2x2 average pooling where the profile
pools, a linear head, cross-entropy on the time-averaged logits, SGD with momentum 0.9 and weight
decay 5e-4. --network cifarnet: convs 64, 128, 256, 256, pooling after the last three;
--network vgg11: convs 64, 128, 256, 256, 512, 512, 512, 512, pooling after convs 1, 2, 4, 6 and 8.

--mode step runs what snnmem's engine runs: the whole network once per timestep, batch norm
statistics per timestep (SpikingJelly's single-step mode). --mode layer runs each conv and batch
norm over all T*B samples at once (larger GEMMs; batch norm then normalizes over T*B, a different
computation), as SpikingJelly's multi-step mode does (scripts/spikingjelly-step.py runs
SpikingJelly's own modules). Prints one JSON line per run with every step's milliseconds and their
median.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ATanSpike(torch.autograd.Function):
    """Heaviside(x) forward; alpha/2 / (1 + (pi/2 alpha x)^2) backward (SpikingJelly's ATan)."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        u = math.pi / 2 * ctx.alpha * x
        return grad * (ctx.alpha / 2 / (1 + u * u)), None


def lif_step(x, v, tau=2.0, threshold=1.0, alpha=2.0):
    """One timestep: charge h = v + (x - v)/tau, fire s = H(h - threshold), hard reset v' = h (1 - s)."""
    h = v + (x - v) / tau
    s = ATanSpike.apply(h - threshold, alpha)
    return s, h * (1 - s)


# Per network: the conv widths (input channels first), the convs followed by 2x2 average pooling, and
# the feature-map side at the head (32 halved once per pooling).
NETWORKS = {
    "cifarnet": ([3, 64, 128, 256, 256], [False, True, True, True]),
    "vgg11": ([3, 64, 128, 256, 256, 512, 512, 512, 512], [True, True, False, True, False, True, False, True]),
}


class SpikingCNN(nn.Module):
    def __init__(self, network):
        super().__init__()
        widths, pool_after = NETWORKS[network]
        convs = len(widths) - 1
        self.convs = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False) for i in range(convs))
        self.bns = nn.ModuleList(nn.BatchNorm2d(widths[i + 1]) for i in range(convs))
        self.pool_after = pool_after
        side = 32 >> sum(pool_after)
        self.fc = nn.Linear(widths[-1] * side * side, 10)

    def forward_step(self, x):
        """Single-step mode: x [T, B, C, H, W]; the whole network per timestep, membranes carried over."""
        v = [0.0] * len(self.convs)
        out_sum = 0
        for t in range(x.shape[0]):
            y = x[t]
            for i in range(len(self.convs)):
                y, v[i] = lif_step(self.bns[i](self.convs[i](y)), v[i])
                if self.pool_after[i]:
                    y = F.avg_pool2d(y, 2)
            out_sum = out_sum + self.fc(torch.flatten(y, 1))
        return out_sum / x.shape[0]

    def forward_layer(self, x):
        """Multi-step mode: conv, batch norm and pooling over [T*B, ...] at once; the LIF loops over T."""
        steps, batch = x.shape[:2]
        y = x.flatten(0, 1)
        for i in range(len(self.convs)):
            z = self.bns[i](self.convs[i](y)).unflatten(0, (steps, batch))
            v, spikes = 0.0, []
            for t in range(steps):
                s, v = lif_step(z[t], v)
                spikes.append(s)
            y = torch.stack(spikes).flatten(0, 1)
            if self.pool_after[i]:
                y = F.avg_pool2d(y, 2)
        return self.fc(torch.flatten(y, 1)).unflatten(0, (steps, batch)).mean(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", choices=sorted(NETWORKS), default="cifarnet")
    parser.add_argument("--mode", choices=["step", "layer"], default="step")
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = SpikingCNN(args.network)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(args.timesteps, args.batch, 3, 32, 32)
    labels = torch.randint(0, 10, (args.batch,))
    forward = model.forward_step if args.mode == "step" else model.forward_layer

    times_ms, losses = [], []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x), labels)
        loss.backward()
        optimizer.step()
        elapsed = (time.perf_counter() - start) * 1e3
        if step >= args.warmup:
            times_ms.append(elapsed)
            losses.append(loss.item())

    print(json.dumps({
        "torch": torch.__version__, "network": args.network, "mode": args.mode, "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(), "timesteps": args.timesteps, "batch": args.batch,
        "medianStepMs": round(statistics.median(times_ms), 1), "stepMs": [round(t, 1) for t in times_ms],
        "finalLoss": round(losses[-1], 4),
    }))


if __name__ == "__main__":
    main()
