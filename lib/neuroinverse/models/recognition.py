"""Recognition networks q_φ(s | f) for spike inference from fluorescence traces.

The factorised CNN of Speiser et al., NIPS 2017 (DeepSpike): a stack of 1-D convolutions
with "same" padding and LeakyReLU(0.2), He-normal initialisation, and an output convolution
whose sigmoid gives an independent Bernoulli probability per frame,
``q(s | f) = Π_t Bern(s_t; p_t)``. The output bias starts at −3 so that the initial spike
probability (≈ 0.05) is near the prior's.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .._checks import check_finite, check_ndim

__all__ = ["FactorisedSpikeCNN"]


class FactorisedSpikeCNN(nn.Module):
    """1-D CNN mapping traces ``(B, T)`` to per-frame spike logits ``(B, T)``.

    Args:
        channels: hidden channels per layer, e.g. ``(30, 25, 25, 20, 15)`` (reference) or
            ``(16, 16, 16)`` (the book's ci profile).
        kernels: kernel size per hidden layer (odd), same length as ``channels``.
        out_kernel: kernel size of the output convolution (odd).
        negative_slope: LeakyReLU slope (0.2 in the paper's code).
        out_bias: initial bias of the output layer (logit of the initial spike probability).
    """

    def __init__(self, channels: Sequence[int] = (30, 25, 25, 20, 15),
                 kernels: Sequence[int] = (31, 21, 21, 13, 11), out_kernel: int = 11,
                 negative_slope: float = 0.2, out_bias: float = -3.0) -> None:
        super().__init__()
        if len(channels) != len(kernels) or not channels:
            raise ValueError(f"channels and kernels must be non-empty and equally long; got {channels}, {kernels}")
        if any(k % 2 == 0 for k in (*kernels, out_kernel)):
            raise ValueError(f"kernel sizes must be odd for 'same' padding; got {kernels}, {out_kernel}")
        layers: list[nn.Module] = []
        c_in = 1
        gain = (2.0 / (1.0 + negative_slope**2)) ** 0.5
        for c, k in zip(channels, kernels):
            conv = nn.Conv1d(c_in, c, k, padding=k // 2)
            nn.init.normal_(conv.weight, 0.0, gain / (c_in * k) ** 0.5)
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.LeakyReLU(negative_slope)]
            c_in = c
        out = nn.Conv1d(c_in, 1, out_kernel, padding=out_kernel // 2)
        nn.init.normal_(out.weight, 0.0, 1.0 / (c_in * out_kernel) ** 0.5)
        nn.init.constant_(out.bias, out_bias)
        layers.append(out)
        self.net = nn.Sequential(*layers)

    def forward(self, traces: torch.Tensor) -> torch.Tensor:
        """Spike logits ``(B, T)`` for traces ``(B, T)``."""
        check_ndim(traces, "traces", 2, "(batch, frames)")
        check_finite(traces, "traces")
        return self.net(traces[:, None, :])[:, 0, :]

    @torch.no_grad()
    def spike_probability(self, traces: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Posterior spike probabilities ``(B, T)``: one batched forward pass (in chunks)."""
        check_ndim(traces, "traces", 2, "(batch, frames)")
        dev = next(self.parameters()).device
        out = [torch.sigmoid(self(traces[i:i + batch_size].to(dev))).cpu()
               for i in range(0, traces.shape[0], batch_size)]
        return torch.cat(out)
