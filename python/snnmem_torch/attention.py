"""Spiking self-attention as Spikformer's reference code computes it (ZK-Zhou/spikformer, the Conv1d
variant of its ImageNet model), on SpikingJelly multi-step modules.

Tokens are [..., C, N] (multi-step [T, B, C, N], single-step [B, C, N]). q, k and v are each a
kernel-1 conv1d, a batch norm and a LIF neuron; the heads are split as the reference does
(`transpose(-1, -2).reshape(..., N, h, d).permute(...).contiguous()`: one copy each, which the
products keep for backward); `attn = (q @ k^T) * scale` with no softmax, `x = attn @ v`, the heads
joined again (`transpose(-1, -2).reshape(..., C, N).contiguous()`: one copy), the attention neuron,
then the projection conv1d, batch norm and neuron. Each sub-module is a profile layer of its own
(paths `<attention>/q_conv` ...), so the tracker attributes their saved tensors to them; the
products' (the four head tensors) belong to the attention layer itself.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class SpikingSelfAttention(nn.Module):
    def __init__(self, heads: int, scale: float, parts: dict):
        super().__init__()
        self.heads = heads
        self.scale = scale
        for name, module in parts.items():
            self.add_module(name, module)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        *lead, c, n = t.shape
        return t.transpose(-1, -2).reshape(*lead, n, self.heads, c // self.heads).transpose(-3, -2).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, c, n = x.shape
        q = self._split_heads(self.q_lif(self.q_bn(self.q_conv(x))))
        k = self._split_heads(self.k_lif(self.k_bn(self.k_conv(x))))
        v = self._split_heads(self.v_lif(self.v_bn(self.v_conv(x))))
        attn = (q @ k.transpose(-2, -1)) * self.scale
        y = attn @ v
        y = y.transpose(-1, -2).reshape(*lead, c, n).contiguous()
        y = self.attn_lif(y)
        return self.proj_lif(self.proj_bn(self.proj_conv(y)))


class SpikeDrivenSelfAttention(SpikingSelfAttention):
    """The Spike-driven Transformer's SDSA (BICLab/Spike-Driven-Transformer, `MS_SSA_Conv`): q, k, v
    as in SSA; `kv = k.mul(v).sum(dim=-2, keepdim=True)` (Hadamard product, column sums over the
    tokens), the talking-heads neuron (threshold 0.5) on it, `q.mul(kv)`, the heads joined by one
    copy, then the projection conv1d and batch norm (no neuron: the reference's next block fires
    first). The products keep q, k and v's head copies and the neuron's spikes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, c, n = x.shape
        q = self._split_heads(self.q_lif(self.q_bn(self.q_conv(x))))
        k = self._split_heads(self.k_lif(self.k_bn(self.k_conv(x))))
        v = self._split_heads(self.v_lif(self.v_bn(self.v_conv(x))))
        kv = k.mul(v).sum(dim=-2, keepdim=True)
        kv = self.talking_heads_lif(kv)
        y = q.mul(kv)
        y = y.transpose(-1, -2).reshape(*lead, c, n).contiguous()
        return self.proj_bn(self.proj_conv(y))


class Tokens(nn.Module):
    """[..., C, H, W] -> [..., C, H*W]: a view (the reference's `x.flatten(-2)`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(-2)


class TokenMean(nn.Module):
    """[..., C, N] -> [..., C]: the mean over tokens before the head (the reference's `x.mean(-1)`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(-1)
