"""What PyTorch's CPU ConvTranspose2d allocates, over a grid of shapes and thread counts, against the rule
found for its forward scratchpad (python/LAYOUT-NOTES.md §9). Not a test: a measurement for whoever models
the pytorch-cpu transposed conv (the planner still refuses it, the backward's rules are not derived).

Usage: .venv-torch/bin/python scripts/probe-convtranspose-cpu.py [--threads 1 2] [--verbose]
(ONEDNN_VERBOSE=1 in the environment names the primitives: brg_deconv:avx512_core+brgconv_strided for a
stride above 1, jit:avx512_core for stride 1, jit:avx2 or jit:avx512_core for the weight gradient.)
"""

import argparse

import torch
from torch.profiler import ProfilerActivity, profile
from torch._C._profiler import _EventType

# (in, out, kernel, stride, padding, batch, input height = width)
GRID = [(16, 8, 2, 2, 0, 2, 8), (16, 8, 2, 2, 0, 4, 8), (16, 8, 2, 2, 0, 2, 32), (64, 32, 2, 2, 0, 2, 8),
        (3, 8, 2, 2, 0, 2, 8), (128, 64, 2, 2, 0, 2, 8), (8, 16, 2, 2, 0, 2, 8), (16, 8, 4, 2, 1, 2, 8),
        (16, 8, 3, 2, 0, 2, 8), (16, 8, 3, 2, 1, 2, 8), (16, 8, 4, 4, 0, 2, 8), (16, 8, 3, 3, 0, 2, 8),
        (32, 32, 2, 2, 0, 2, 8), (256, 128, 2, 2, 0, 2, 4), (16, 16, 2, 2, 0, 2, 8), (32, 16, 2, 2, 0, 4, 8)]


def allocations(fn) -> list:
    """The sizes of the CPU allocations (positive) and frees (negative) `fn` makes, in order."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    sizes = []

    def walk(node):
        if node.tag == _EventType.Allocation:
            sizes.append(node.extra_fields.alloc_size)
        for child in node.children:
            walk(child)
    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    return sizes


def forward_scratchpad_rule(threads: int, cin: int, stride: int, kernel: int, height: int) -> int:
    """oneDNN's brgconv_strided (bwd-data convolution inside brg_deconv) books, per thread, a batch of
    brgemm elements (103 x 40 B: 4 KiB rounded up to whole 40-byte elements), the deconvolution's input
    copied to [H, W, channels rounded up to 16] (rounded up to 4096 floats) and a 4096-byte mask; each of
    the three bookings adds 4096 bytes of alignment and the nested scratchpad 128. A kernel that is not a
    multiple of the stride adds a per-thread accumulation buffer whose size this rule does not give."""
    def rnd(x, a):
        return -(-x // a) * a
    per_thread = 4120 + 4 * rnd(height * height * rnd(cin, 16), 4096) + 4096
    return threads * per_thread + 3 * 4096 + 128 if stride > 1 else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--verbose", action="store_true", help="print every allocation of forward and backward")
    args = parser.parse_args()
    for threads in args.threads:
        torch.set_num_threads(threads)
        for cin, cout, k, s, p, batch, h in GRID:
            module = torch.nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p, bias=False)
            x = torch.randn(batch, cin, h, h, requires_grad=True)
            for _ in range(2):  # oneDNN's primitive cache and PyTorch's allocator warm
                module(x).backward(torch.ones(module(x).shape))
            out = {}
            forward = allocations(lambda: out.setdefault("y", module(x)))
            gradient = torch.randn_like(out["y"])
            backward = allocations(lambda: out["y"].backward(gradient))
            measured = forward[0] if s > 1 else 0
            rule = forward_scratchpad_rule(threads, cin, s, k, h)
            verdict = "equal" if measured == rule else ("not given (kernel % stride != 0)" if k % s else "DIFFERS")
            print(f"threads {threads} in {cin} out {cout} k{k} s{s} p{p} B{batch} {h}x{h}: forward scratchpad "
                  f"{measured} B, rule {rule} B: {verdict}", flush=True)
            if args.verbose:
                print("  forward ", forward)
                print("  backward", backward)


if __name__ == "__main__":
    main()
