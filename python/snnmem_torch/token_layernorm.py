"""A profile's `layernorm` on [C, N] tokens in PyTorch: nn.LayerNorm(C) over each token's channels,
written as spiking transformers write it (x.transpose(-1, -2), normalise, transpose back), so its
output is a non-contiguous view of the [..., N, C] result."""

import torch.nn as nn


class TokenLayerNorm(nn.LayerNorm):
    """nn.LayerNorm(channels) on [..., C, N] tokens; the exporter reads it back as `layernorm`."""

    def forward(self, x):
        return super().forward(x.transpose(-1, -2)).transpose(-1, -2)
