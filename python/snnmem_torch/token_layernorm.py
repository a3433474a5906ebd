"""A profile's `layernorm` on [C, N] tokens in PyTorch: nn.LayerNorm(C) over each token's channels,
written as spiking transformers write it (x.transpose(-1, -2), normalise, transpose back, no
.contiguous()), so its output, and the input gradient it hands back, are transposed views of [..., N, C]
tensors: what that costs it and its neighbours in PyTorch is python/LAYOUT-NOTES.md §12. The exporter
reads a plain nn.LayerNorm(C) between the same two transposes as this module."""

import torch.nn as nn


class TokenLayerNorm(nn.LayerNorm):
    """nn.LayerNorm(channels) on [..., C, N] tokens; the exporter reads it back as `layernorm`."""

    def forward(self, x):
        return super().forward(x.transpose(-1, -2)).transpose(-1, -2)
