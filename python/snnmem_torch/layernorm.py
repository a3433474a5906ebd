"""`layernorm`: torch.nn.LayerNorm over one sample's whole input (flat features [F] or a [C, H, W]
map) or, on [C, N] tokens, over each token's C channels (`token_layernorm.TokenLayerNorm`), the loader half mirroring Swift's `LayerBuilder+LayerNorm.swift` (same checks and messages)
and the exporter half reading an nn.LayerNorm back (on tokens: TokenLayerNorm, or nn.LayerNorm(C) between
two x.transpose(-1, -2), `swaps_last_two`). PyTorch keeps the input and one float32 mean
and rstd per row; the CPU backward reduces the weight and bias gradients through a
[2 * threads, N] buffer (`PyTorchLayerTable+LayerNorm.swift`)."""

from __future__ import annotations

KEYS = ["eps", "affine", "name"]
MAX_LAYER_PARAMETERS = 1 << 36  # PlanningLimits.maxLayerParameters


def build_layernorm(builder, p, inp: tuple, path: str, location: tuple) -> dict:
    """The params of a `layernorm` entry, or the loader's ProfileError."""
    from .profile import _shape_text

    eps = p.double("eps", 1e-5, positive=True)
    affine = p.bool("affine", True)
    p.reject_unknown_keys(KEYS)
    # [C, N] tokens: normalised per token over its C channels, as a transformer's nn.LayerNorm(C)
    # on the transposed tokens, not over channels and tokens together.
    if len(inp) not in (1, 2, 3):
        raise builder.fail(f"layernorm normalises one sample's flat features [F], its [C, H, W] map or each token of [C, N] tokens, "
                           f"but receives {_shape_text(inp)}", "put `layernorm` after a layer giving [F], [C, N] or [C, H, W]",
                           path, location)
    shape = (inp[0],) if len(inp) == 2 else tuple(inp)
    elements = 1
    for d in shape:
        elements *= d
    if 2 * elements > MAX_LAYER_PARAMETERS:
        raise builder.fail(f"a layernorm over {_shape_text(shape)} has more than the {MAX_LAYER_PARAMETERS:,} weights one layer may have",
                           "normalise a smaller tensor", path, location)
    if len(inp) == 2:
        return dict(normalized_shape=shape, eps=eps, affine=affine, tokens=inp[1])
    return dict(normalized_shape=tuple(inp), eps=eps, affine=affine)


def swaps_last_two(node) -> bool:
    """An fx node `x.transpose(-1, -2)` (or torch.transpose) of a [T, B, C, N] token tensor."""
    import torch
    if node.op == "call_method" and node.target == "transpose":
        dims = node.args[1:]
    elif node.op == "call_function" and node.target is torch.transpose:
        dims = node.args[1:]
    else:
        return False
    meta = node.meta.get("tensor_meta")
    rank = len(meta.shape) if meta is not None else 0
    if rank != 4 or len(dims) != 2 or not all(isinstance(d, int) for d in dims):
        return False
    return {d % rank for d in dims} == {rank - 2, rank - 1}


def export_layernorm(module, inner: tuple, refuse, over_tokens: bool = False) -> dict:
    """The fields of the `layernorm` entry an nn.LayerNorm on a per-sample `inner` input becomes,
    or `refuse(why, fix)`'s error. `over_tokens`: the model calls it on `x.transpose(-1, -2)` of
    [C, N] tokens and transposes back, as `TokenLayerNorm` does (`inner` is then [C, N])."""
    from .token_layernorm import TokenLayerNorm
    shape = tuple(int(d) for d in module.normalized_shape)
    if type(module) is TokenLayerNorm or over_tokens:
        if len(inner) != 2 or shape != (inner[0],):
            raise refuse(f"normalises the {list(shape)} channels of each token but receives a {list(inner)} input; a profile's "
                         "token layer norm normalises the C channels of [C, N] tokens",
                         f"use nn.LayerNorm({inner[0]}) on x.transpose(-1, -2), or TokenLayerNorm({inner[0]})"
                         if len(inner) == 2 else "put TokenLayerNorm after `tokens`")
    elif shape != tuple(inner) or len(shape) not in (1, 3):
        raise refuse(f"normalises the last {list(shape)} of a {list(inner)} input; a profile's layer norm normalises "
                     "a sample's whole flat features or [C, H, W] map", "use nn.LayerNorm(x.shape[1:]) after flatten or on a "
                     "[C, H, W] map, or snnmem_torch.token_layernorm.TokenLayerNorm(C) on [C, N] tokens")
    if module.elementwise_affine and module.bias is None:
        raise refuse("has a weight but no bias; a profile's layer norm has both or neither",
                     "use bias=True, or elementwise_affine=False")
    fields = {}
    if float(module.eps) != 1e-5:
        fields["eps"] = float(module.eps)
    if not module.elementwise_affine:
        fields["affine"] = False
    return fields

