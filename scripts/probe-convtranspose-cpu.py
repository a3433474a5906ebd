"""What PyTorch's CPU ConvTranspose2d allocates, forward and backward, over a grid of shapes and thread counts,
against the rules the pytorch-cpu layout declares (python/LAYOUT-NOTES.md §9, OneDNNDeconvolutionScratchpad.swift).
Not a test: a measurement for whoever changes the rules; a small grid of its cases is a Swift test's data.

Each case runs one float32 ConvTranspose2d step on [N, Cin, H, W] the way the measured networks do (an input
that needs a gradient, fresh parameter gradients) and compares the ordered allocation sizes of the forward
and of the backward with the ones the rules predict, event for event.

Usage: .venv-torch/bin/python scripts/probe-convtranspose-cpu.py [--threads 1 2 4] [--cases N] [--seed S] [--json FILE]
(ONEDNN_VERBOSE=1 in the environment names the primitives: brg_deconv:avx512_core+brgconv_strided for a
stride above 1, conv:any+jit:avx512_core for the input and weight gradients when both channel counts are
multiples of 16; other channel counts take jit:avx2 and 8-channel layouts, which the rules do not cover.)
"""

import argparse
import itertools
import json
import random

import torch
from torch.profiler import ProfilerActivity, profile
from torch._C._profiler import _EventType


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


def rnd(x, a):
    return -(-x // a) * a


def forward_scratchpad(threads, cin, cout, k, s, p, h, w):
    """brg_deconv's nested bwd-data brgemm convolution (`brgemm_convolution_bwd_utils`): per thread a brgemm
    batch (4 KiB of 40-byte elements: 103 of them), the deconvolution's input copied with its kernel overflow
    rows and columns ((k - 1 - p) // s each side) and all channels, rounded up to 4096 floats, and a 4096-byte
    mask; when the output width is not a multiple of the stride, an output row buffer (the output width rounded
    up to the stride, times the stride and the output channels, rounded up to 4096 floats). Each booking adds
    4096 bytes of alignment, the nested scratchpad 128."""
    hout, wout = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
    ovf = max(0, k - 1 - p) // s  # (an output padding op would shrink the far side's padding to p - op)
    per_thread = 4120 + 4 * rnd((h + 2 * ovf) * (w + 2 * ovf) * cin, 4096) + 4096
    booked = 3
    if wout % s:
        per_thread += 4 * rnd(rnd(wout, s) * s * cout, 4096)
        booked += 1
    return threads * per_thread + booked * 4096 + 128


def minibatch_threads(threads, n, cin, cout, k, s, p, h, w):
    """jit_avx512_common_convolution_bwd_weights_t's `balance` on the deconvolution's weight gradient, a convolution
    from the output gradient (cout channels, hout x wout) to the input (cin channels, h x w): how many threads split
    the minibatch (each one but the first accumulates a weight gradient of its own). Rows are reduced too (the
    2-d harness) when the input is more than 9 rows high."""
    hout, wout = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
    nb_ic, nb_oc = rnd(cout, 16) // 16, rnd(cin, 16) // 16  # the convolution's input is the output gradient
    ih, iw, oh, ow = hout, wout, h, w
    two_d = oh > 9
    ih_reduce, oh_reduce = (ih, oh) if two_d else (1, 1)
    ih_no, oh_no = (1, 1) if two_d else (ih, oh)
    nthr_oh_reduce = max(1, oh_reduce // 9)

    def div_up(a, b):
        return -(-a // b)

    def mem(m, o, i):
        src = div_up(n * ih_reduce, m) * div_up(nb_ic, i) * 16 * ih_no * iw // s // s
        dst = div_up(n * oh_reduce, m) * div_up(nb_oc, o) * 16 * oh_no * ow
        wei = 8 * div_up(nb_oc, o) * div_up(nb_ic, i) * k * k * 256
        return src + dst + wei

    def comp(m, o, i):
        return div_up(n * oh_reduce, m) * div_up(nb_oc, o) * div_up(nb_ic, i)

    best = (1, 1, 1)
    best_mem = mem(*best)
    mb_max = min(threads, n * nthr_oh_reduce)
    candidates = []
    for m in range(1, mb_max + 1):
        par = threads // m
        for o in range(1, min(par, nb_oc) + 1):
            i = min(par // o, nb_ic)
            candidates.append((m, o, i))
    for c in candidates:
        if mem(*c) <= best_mem:
            best, best_mem = c, mem(*c)
    best_comp = comp(*best)
    for c in candidates:
        if (comp(*c) <= best_comp and mem(*c) < 1.1 * best_mem) or 4 * comp(*c) <= 3 * best_comp:
            best, best_comp = c, comp(*c)
    m = best[0]
    if threads // 2 < m < threads:
        m = min(n * nthr_oh_reduce, threads)
    return m


def weight_gradient_scratchpad(threads, n, cin, cout, k, s, p, h, w):
    """Bytes of the weight gradient's scratchpad, 0 when one thread does the whole minibatch: a float32 weight
    and bias gradient (the bias sized by the convolution's output channels, the deconvolution's cin) for each
    thread after the first, 128 bytes of alignment, a page-aligned barrier (4096 + 4096) and the 128 of the
    scratchpad."""
    m = minibatch_threads(threads, n, cin, cout, k, s, p, h, w)
    if m == 1:
        return 0
    return (cin * cout * k * k + cin) * 4 * (m - 1) + 128 + 8192 + 128


def predicted(threads, n, cin, cout, k, s, p, h, w, bias):
    hout, wout = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
    X, Y, W, b = 4 * n * cin * h * w, 4 * n * cout * hout * wout, 4 * cin * cout * k * k, 4 * cout
    S = forward_scratchpad(threads, cin, cout, k, s, p, h, w)
    forward = [S, X, W, Y, -W, -X, -S, Y, Y, -Y, -Y]
    data = [Y, W, X, -W, -Y, X, -X]
    R = weight_gradient_scratchpad(threads, n, cin, cout, k, s, p, h, w)
    weights = [Y, X, W] + ([R] if R else []) + ([b] if bias else []) + ([-R] if R else []) + [-X, -Y] \
        + ([b] if bias else []) + [W, -W] + ([-b] if bias else [])
    return forward, data + weights


def measure(threads, n, cin, cout, k, s, p, h, w, bias):
    torch.set_num_threads(threads)
    module = torch.nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p, bias=bias)
    source = torch.randn(n, cin, h, w, requires_grad=True)
    for _ in range(2):  # oneDNN's primitive cache warm
        x = source * 1.0
        module(x).sum().backward()
    module.zero_grad(set_to_none=True)
    x = (source * 1.0).detach().requires_grad_(True)
    out = {}
    forward = allocations(lambda: out.setdefault("y", module(x)))
    gradient = torch.randn_like(out["y"])
    backward = allocations(lambda: out["y"].backward(gradient))
    return forward, backward


def refusal(n, cin, cout, k, s, p, h, w):
    """Why the rules do not cover a case (the planner refuses it the same way), or None."""
    hout, wout = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
    if n == 1 and k <= 3 and cin * h * w <= 20480:
        return "one sample: PyTorch's native slow_conv_transpose2d, not oneDNN"
    if s < 2:
        return "stride 1: jit:avx512_core forward, not measured"
    if cin % 16 or not (cout == 16 or cout % 32 == 0):
        return "channels: other blockings and layouts"
    if k > 10 or p > k // 2:
        return "kernel or padding outside the jit weight-gradient primitive"
    if -(-hout // s) * -(-wout // s) > 4096 or (wout % s and rnd(wout, s) * s * cout > 4096):
        return "output too large: the mask and row buffer depend on a blocking heuristic"
    return None


def cases(count, seed=0):
    grid = list(itertools.product([16, 32, 48, 64], [16, 32, 64], [(2, 2, 0), (3, 2, 1), (4, 2, 1), (3, 2, 0),
                                                                        (4, 4, 0), (3, 3, 0), (5, 2, 2), (2, 2, 1)],
                                  [1, 2, 4, 8, 16], [4, 8, 12, 16], [False, True]))
    random.Random(seed).shuffle(grid)
    return grid[:count]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0, help="which random cases of the grid")
    parser.add_argument("--json", help="write the measured cases here")
    args = parser.parse_args()
    rows, failures = [], 0
    for threads in args.threads:
        for cin, cout, (k, s, p), n, h, bias in cases(args.cases, args.seed):
            if refusal(n, cin, cout, k, s, p, h, h):
                print(f"threads {threads} N{n} {cin}->{cout} k{k} s{s} p{p} {h}x{h}: refused ({refusal(n, cin, cout, k, s, p, h, h)})")
                continue
            f, b = measure(threads, n, cin, cout, k, s, p, h, h, bias)
            pf, pb = predicted(threads, n, cin, cout, k, s, p, h, h, bias)
            b = b[:len(pb)]  # then autograd frees the graph's tensors (not the layer's)
            ok = f == pf and b == pb
            failures += not ok
            wgrad = weight_gradient_scratchpad(threads, n, cin, cout, k, s, p, h, h)
            rows.append({"threads": threads, "batch": n, "in": cin, "out": cout, "kernel": k, "stride": s, "padding": p,
                         "height": h, "width": h, "bias": bias, "forwardScratchpadBytes": f[0],
                         # measured: after the input gradient's 7 events, the reorders of grad_output and the
                         # input and the blocked weight gradient, when the rule books one
                         "weightGradientScratchpadBytes": (b[10] if wgrad else 0) if ok else None,
                         "equal": ok})
            print(f"threads {threads} N{n} {cin}->{cout} k{k} s{s} p{p} {h}x{h} bias {bias}: "
                  f"forward scratchpad {f[0]} B (rule {pf[0]}), weight-gradient scratchpad "
                  f"{weight_gradient_scratchpad(threads, n, cin, cout, k, s, p, h, h)} B by the rule: "
                  f"{'equal' if ok else 'DIFFERS'}", flush=True)
            if not ok:
                print("  forward  measured", f, "\n           rule    ", pf)
                print("  backward measured", b, "\n           rule    ", pb)
    print(f"{len(rows) - failures} of {len(rows)} cases equal, event for event")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)


if __name__ == "__main__":
    main()
