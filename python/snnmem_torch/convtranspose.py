"""`convtranspose`: a transposed convolution (upsampling), the loader half mirroring Swift's
`ConvTransposeBuilder.swift` (same checks and messages). Output (H - 1) * stride - 2 * padding +
kernel; weight [in, out, k, k] as torch.nn.ConvTranspose2d; no output padding, groups or dilation.
The builder makes SpikingJelly's `layer.ConvTranspose2d`. snnmem plans it on its own engine and on
pytorch-cuda (cuDNN keeps the input and the weight); pytorch-cpu (oneDNN's deconvolution) is not
measured yet and is refused by the planner."""

from __future__ import annotations

KEYS = ["out", "in", "kernel", "stride", "padding", "bias", "name"]


def build_convtranspose(builder, p, inp: tuple, path: str, location: tuple) -> tuple:
    """(params, output shape) of a `convtranspose` entry, or the loader's ProfileError."""
    from .profile import _loc, integer

    c, h, w = builder.require_spatial(inp, "convtranspose", path, location)
    out = p.int("out", example="16")
    kernel = p.int("kernel", example="2")
    stride = p.int("stride", 1)
    padding = p.int("padding", 0, min_value=0)
    bias = p.bool("bias", False)
    in_node = p.value("in")
    if in_node is not None:
        declared = integer(in_node, "in", 1, builder.file, path, "convtranspose")
        if declared != c:
            raise builder.fail(f"convtranspose declares {declared} input channels but receives {c}",
                               f"set `in: {c}` or remove `in:` to infer it", path, _loc(in_node))
    p.reject_unknown_keys(KEYS)
    if padding >= kernel:
        raise builder.fail(f"padding {padding} is not smaller than the kernel {kernel}", f"use padding at most {kernel - 1}",
                           path, location)
    h_out = (h - 1) * stride - 2 * padding + kernel
    w_out = (w - 1) * stride - 2 * padding + kernel
    if h_out < 1 or w_out < 1 or h_out > 1 << 24 or w_out > 1 << 24:
        raise builder.fail(f"a {kernel}x{kernel} transposed conv with stride {stride} and padding {padding} gives a "
                           f"{h_out}x{w_out} output from {h}x{w}", "use less padding or a smaller stride", path, location)
    params = dict(in_channels=c, out_channels=out, kernel=kernel, stride=stride, padding=padding, bias=bias)
    return params, (out, h_out, w_out)
