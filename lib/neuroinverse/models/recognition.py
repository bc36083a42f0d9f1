"""Recognition networks q_φ(s | f) for spike inference from fluorescence traces.

Two recognition models of Speiser et al., NIPS 2017 (DeepSpike):

* :class:`FactorisedSpikeCNN`: a stack of 1-D convolutions with "same" padding and
  LeakyReLU(0.2), He-normal initialisation, and an output convolution whose sigmoid gives an
  independent Bernoulli probability per frame, ``q(s | f) = Π_t Bern(s_t; p_t)``. The output
  bias starts at −3 so that the initial spike probability (≈ 0.05) is near the prior's.
* :class:`AutoregressiveSpikeRNN`: the correlated posterior
  ``q(s | f) = Π_t Bern(s_t; p_t(f, s_{<t}))``: CNN features, a deterministic backward GRU
  over [features, trace], and a forward GRU that also sees the previous spike. Sampling is
  sequential in time; the log-probability of given spikes is one teacher-forced pass.

Both offer the interface the VAE uses: ``sample(traces, n_samples, generator)`` → spikes
``(B, K, T)``; ``sample_with_logits`` → spikes and differentiable logits (``(B, 1, T)`` or
``(B, K, T)``); ``spike_probability(traces)`` → posterior marginals ``(B, T)``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .._checks import check_finite, check_ndim

__all__ = ["FactorisedSpikeCNN", "AutoregressiveSpikeRNN"]


def _conv_stack(
    channels: Sequence[int],
    kernels: Sequence[int],
    negative_slope: float,
    *extra_kernels: int,
    in_channels: int = 1,
) -> tuple[list[nn.Module], int]:
    """Conv1d + LeakyReLU layers with "same" padding and He-normal weights; returns
    (layers, c_out)."""
    if len(channels) != len(kernels) or not channels:
        raise ValueError(
            f"channels and kernels must be non-empty and equally long; got {channels}, {kernels}"
        )
    if any(k % 2 == 0 for k in (*kernels, *extra_kernels)):
        raise ValueError(
            f"kernel sizes must be odd for 'same' padding; got {kernels}, {extra_kernels}"
        )
    layers: list[nn.Module] = []
    c_in = in_channels
    gain = (2.0 / (1.0 + negative_slope**2)) ** 0.5
    for c, k in zip(channels, kernels, strict=True):
        conv = nn.Conv1d(c_in, c, k, padding=k // 2)
        nn.init.normal_(conv.weight, 0.0, gain / (c_in * k) ** 0.5)
        nn.init.zeros_(conv.bias)
        layers += [conv, nn.LeakyReLU(negative_slope)]
        c_in = c
    return layers, c_in


def _bernoulli_draw(p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(p.shape, generator=generator, device=p.device) < p).to(p.dtype)


class FactorisedSpikeCNN(nn.Module):
    """1-D CNN mapping traces ``(B, T)`` to per-frame spike logits ``(B, T)``.

    With ``in_channels``/``out_channels`` > 1 it maps ``(B, C_in, T)`` to ``(B, C_out, T)``
    (e.g. a dendrite and its spines to a bAP train and one synaptic train per spine).

    Args:
        channels: hidden channels per layer, e.g. ``(30, 25, 25, 20, 15)`` (reference) or
            ``(16, 16, 16)`` (the book's ci profile).
        kernels: kernel size per hidden layer (odd), same length as ``channels``.
        out_kernel: kernel size of the output convolution (odd).
        negative_slope: LeakyReLU slope (0.2 in the paper's code).
        out_bias: initial bias of the output layer (logit of the initial spike probability).
        in_channels, out_channels: trace channels in and spike channels out (1 and 1).
    """

    def __init__(
        self,
        channels: Sequence[int] = (30, 25, 25, 20, 15),
        kernels: Sequence[int] = (31, 21, 21, 13, 11),
        out_kernel: int = 11,
        negative_slope: float = 0.2,
        out_bias: float = -3.0,
        in_channels: int = 1,
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"in_channels and out_channels must be >= 1; got {in_channels}, {out_channels}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        layers, c_in = _conv_stack(
            channels, kernels, negative_slope, out_kernel, in_channels=in_channels
        )
        out = nn.Conv1d(c_in, out_channels, out_kernel, padding=out_kernel // 2)
        nn.init.normal_(out.weight, 0.0, 1.0 / (c_in * out_kernel) ** 0.5)
        nn.init.constant_(out.bias, out_bias)
        layers.append(out)
        self.net = nn.Sequential(*layers)

    def forward(self, traces: torch.Tensor) -> torch.Tensor:
        """Spike logits ``(B, T)`` for traces ``(B, T)`` (``(B, C_out, T)`` for
        ``(B, C_in, T)``)."""
        if self.in_channels == 1:
            check_ndim(traces, "traces", 2, "(batch, frames)")
            traces = traces[:, None, :]
        else:
            check_ndim(traces, "traces", 3, f"(batch, {self.in_channels}, frames)")
            if traces.shape[1] != self.in_channels:
                raise ValueError(
                    f"traces must have {self.in_channels} channels; got {traces.shape[1]}"
                )
        check_finite(traces, "traces")
        out = self.net(traces)
        return out[:, 0, :] if self.out_channels == 1 else out

    def sample_with_logits(
        self, traces: torch.Tensor, n_samples: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n_samples`` spike trains ``(B, K, [C,] T)`` and the differentiable logits
        ``(B, 1, [C,] T)``."""
        logits = self(traces)[:, None]
        p = torch.sigmoid(logits.detach()).expand(-1, n_samples, *logits.shape[2:])
        return _bernoulli_draw(p, generator), logits

    @torch.no_grad()
    def sample(
        self, traces: torch.Tensor, n_samples: int, generator: torch.Generator
    ) -> torch.Tensor:
        """``n_samples`` posterior spike trains per trace, ``(B, K, T)``."""
        return self.sample_with_logits(traces, n_samples, generator)[0]

    @torch.no_grad()
    def spike_probability(self, traces: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Posterior spike probabilities ``(B, T)``: one batched forward pass (in chunks)."""
        dev = next(self.parameters()).device
        out = [
            torch.sigmoid(self(traces[i : i + batch_size].to(dev))).cpu()
            for i in range(0, traces.shape[0], batch_size)
        ]
        return torch.cat(out)


class AutoregressiveSpikeRNN(nn.Module):
    """Correlated posterior ``q(s | f) = Π_t Bern(s_t; p_t(f, s_{<t}))`` (CNN + two GRUs).

    Args:
        channels, kernels: the CNN's hidden layers (reference: ``(20, 15, 15, 15)``,
            ``(31, 21, 21, 11)``).
        n_features / feature_kernel: the last convolution, giving the features (13, 11).
        hidden: units of the backward and forward GRUs (64).
        out_bias: initial bias of the output layer (−5: rare spikes at the start).
    """

    def __init__(
        self,
        channels: Sequence[int] = (20, 15, 15, 15),
        kernels: Sequence[int] = (31, 21, 21, 11),
        n_features: int = 13,
        feature_kernel: int = 11,
        hidden: int = 64,
        negative_slope: float = 0.2,
        out_bias: float = -5.0,
    ) -> None:
        super().__init__()
        layers, c_in = _conv_stack(channels, kernels, negative_slope, feature_kernel)
        layers += [
            nn.Conv1d(c_in, n_features, feature_kernel, padding=feature_kernel // 2),
            nn.LeakyReLU(negative_slope),
        ]
        self.cnn = nn.Sequential(*layers)
        self.backward_rnn = nn.GRU(n_features + 1, hidden, batch_first=True)
        self.forward_rnn = nn.GRU(n_features + 1 + hidden + 1, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)
        nn.init.constant_(self.out.bias, out_bias)

    def _context(self, traces: torch.Tensor) -> torch.Tensor:
        """Per-frame context ``(B, T, D)``: CNN features, the trace, the backward GRU state."""
        check_ndim(traces, "traces", 2, "(batch, frames)")
        check_finite(traces, "traces")
        x = torch.cat([self.cnn(traces[:, None, :]).transpose(1, 2), traces[..., None]], -1)
        back, _ = self.backward_rnn(x.flip(1))
        return torch.cat([x, back.flip(1)], -1)

    def logits(self, traces: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``(B, K, T)`` of ``q(s_t = 1 | f, s_{<t})`` for spikes
        ``(B, K, T)``."""
        ctx = self._context(traces)
        B, T, D = ctx.shape
        if spikes.dim() != 3 or spikes.shape[0] != B or spikes.shape[2] != T:
            raise ValueError(f"spikes must have shape ({B}, K, {T}); got {tuple(spikes.shape)}")
        K = spikes.shape[1]
        prev = torch.cat([torch.zeros_like(spikes[..., :1]), spikes[..., :-1]], -1)
        inp = torch.cat([ctx[:, None].expand(B, K, T, D), prev[..., None]], -1).reshape(
            B * K, T, D + 1
        )
        h, _ = self.forward_rnn(inp)
        return self.out(h)[..., 0].reshape(B, K, T)

    @torch.no_grad()
    def sample(
        self,
        traces: torch.Tensor,
        n_samples: int,
        generator: torch.Generator,
        return_probability: bool = False,
    ):
        """Sequential ancestral sampling: spikes ``(B, K, T)`` (and the conditional p_t if
        asked)."""
        ctx = self._context(traces)
        B, T, D = ctx.shape
        ctx = ctx[:, None].expand(B, n_samples, T, D).reshape(B * n_samples, T, D)
        s_prev = torch.zeros(B * n_samples, 1, 1, device=ctx.device, dtype=ctx.dtype)
        h = None
        spikes, probs = [], []
        for t in range(T):
            o, h = self.forward_rnn(torch.cat([ctx[:, t : t + 1], s_prev], -1), h)
            p = torch.sigmoid(self.out(o))
            s_prev = _bernoulli_draw(p, generator)
            spikes.append(s_prev[:, 0, 0])
            probs.append(p[:, 0, 0])
        s = torch.stack(spikes, -1).reshape(B, n_samples, T)
        if return_probability:
            return s, torch.stack(probs, -1).reshape(B, n_samples, T)
        return s

    def sample_with_logits(
        self, traces: torch.Tensor, n_samples: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Spikes ``(B, K, T)`` sampled sequentially, and their differentiable logits
        ``(B, K, T)``."""
        s = self.sample(traces, n_samples, generator)
        return s, self.logits(traces, s)

    @torch.no_grad()
    def spike_probability(
        self, traces: torch.Tensor, batch_size: int = 64, n_samples: int = 8, seed: int = 0
    ) -> torch.Tensor:
        """Posterior marginals ``(B, T)``: the mean over ``n_samples`` samples of p_t(f, s_{<t})."""
        check_ndim(traces, "traces", 2, "(batch, frames)")
        dev = next(self.parameters()).device
        gen = torch.Generator(device=dev).manual_seed(seed)
        out = []
        for i in range(0, traces.shape[0], batch_size):
            _, p = self.sample(
                traces[i : i + batch_size].to(dev), n_samples, gen, return_probability=True
            )
            out.append(p.mean(1).cpu())
        return torch.cat(out)
