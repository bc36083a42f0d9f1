"""Supervised spike inference: the recognition CNN trained on true spikes (an upper bound).

The authors' Spikefinder submission trained the DeepSpike CNN with binary cross-entropy on
ground-truth spikes (Speiser et al., NIPS 2017, supervised variant). In the book it is the
upper bound that unsupervised training is compared with: it sees what the VAE never sees.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_finite, check_ndim, check_range
from ..training import History, fit

__all__ = ["train_supervised_spikes"]


def train_supervised_spikes(
    net: torch.nn.Module,
    traces: torch.Tensor,
    spikes: torch.Tensor,
    *,
    n_steps: int,
    batch_size: int,
    lr: float = 1e-3,
    buffers: tuple[int, int] = (100, 50),
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Fit ``net`` (traces ``(B, T)`` → logits ``(B, T)``) by BCE on true spikes.

    Args:
        traces, spikes: snippets ``(cells, snippets, T)`` (or ``(n, T)``), spikes in {0, 1}.
        n_steps, batch_size, lr: Adam steps, snippets per step, learning rate.
        buffers: frames at the start and end of each snippet left out of the loss, as in the
            VAE, so that both see the same frames.
    """
    check_ndim(traces, "traces", (2, 3), "(cells, snippets, frames) or (n, frames)")
    check_finite(traces, "traces")
    if traces.shape != spikes.shape:
        raise ValueError(
            f"traces {tuple(traces.shape)} and spikes {tuple(spikes.shape)} must match"
        )
    if not ((spikes == 0) | (spikes == 1)).all():
        raise ValueError("spikes must be 0 or 1")
    f = traces.reshape(-1, traces.shape[-1])
    s = spikes.reshape(-1, spikes.shape[-1]).to(f.dtype)
    n, T = f.shape
    check_range(batch_size, "batch_size", 1, n)
    if buffers[0] < 0 or buffers[1] < 0 or sum(buffers) >= T:
        raise ValueError(f"buffers {buffers} leave no frames of a {T}-frame snippet")
    dev = next(net.parameters()).device
    f, s = f.to(dev), s.to(dev)
    mask = torch.zeros(T, device=dev)
    mask[buffers[0] : T - buffers[1]] = 1.0
    opt = torch.optim.Adam(net.parameters(), lr=lr)

    def loss_fn(step: int, gen: torch.Generator):
        idx = torch.randperm(n, generator=gen, device=gen.device)[:batch_size]
        bce = F.binary_cross_entropy_with_logits(net(f[idx]), s[idx], reduction="none")
        return (bce * mask).sum() / (mask.sum() * batch_size)

    return fit(
        loss_fn,
        module=net,
        optimizers=opt,
        n_steps=n_steps,
        seed=seed,
        progress=progress,
        desc="supervised CNN",
    )
