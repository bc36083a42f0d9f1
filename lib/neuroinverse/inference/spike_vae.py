"""Amortised variational inference of spikes from calcium traces (DeepSpike).

Speiser, Yan, Archer, Buesing, Turaga, Macke, "Fast amortized inference of neural activity
from calcium imaging data with variational autoencoders", NIPS 2017.

A recognition network q_φ(s | f) (see :mod:`neuroinverse.models.recognition`) and a
generative model p_θ(f | s) p(s) with per-cell parameters θ are trained together by
maximising the multi-sample bound

    L̂ = log (1/K) Σ_k w_k,   log w_k = log p_θ(f | s⁽ᵏ⁾) + log p(s⁽ᵏ⁾) − log q_φ(s⁽ᵏ⁾ | f),

with s⁽ᵏ⁾ ~ q_φ(· | f). No true spikes are used. Because s is discrete the gradient with
respect to φ uses the score function with the VIMCO leave-one-out learning signal (Mnih &
Rezende 2016), in the form of the authors' code: ℓ_k = L̂ − log((1/(K−1)) Σ_{j≠k} w_j).
All log densities are summed over the frames [buffer_start, T − buffer_end) of each snippet
only, because calcium from spikes before a snippet cannot be explained inside it.

The prior is the plain Bernoulli sequence prior p(s) = Π_t Bern(s_t; π) (the reference code
adds a binomial coefficient over the spike count; the book does not). The generative calcium
models live in :mod:`neuroinverse.inference.calcium_models`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_finite, check_ndim, check_positive, check_range
from .calcium_models import bernoulli_log_prob

__all__ = [
    "vimco_objective",
    "SpikeVAE",
    "make_snippets",
    "train_spike_vae",
    "fit_spike_vae",
]


def vimco_objective(log_p: torch.Tensor, log_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Surrogate loss whose gradient is the VIMCO estimator, and the multi-sample bound.

    Args:
        log_p: ``(B, K)`` log p_θ(f | s⁽ᵏ⁾) + log p(s⁽ᵏ⁾), differentiable in θ.
        log_q: ``(B, K)`` log q_φ(s⁽ᵏ⁾ | f), differentiable in φ.

    Returns:
        ``(surrogate, bound)``: ``surrogate = −mean_b Σ_k [ω_k log w_k + ℓ_k log q_k]`` with
        normalised weights ω (no gradient) and learning signals ℓ (no gradient);
        ``bound`` is ``L̂`` per trace ``(B,)``, detached.
    """
    if log_p.shape != log_q.shape or log_p.dim() != 2:
        raise ValueError(
            "log_p and log_q must both be (batch, samples); "
            f"got {tuple(log_p.shape)}, {tuple(log_q.shape)}"
        )
    K = log_p.shape[1]
    if K < 2:
        raise ValueError(f"VIMCO needs at least 2 samples per trace; got K={K}")
    log_w = log_p - log_q
    lw = log_w.detach()
    bound = torch.logsumexp(lw, 1) - math.log(K)
    omega = torch.softmax(lw, 1)
    eye = torch.eye(K, dtype=torch.bool, device=lw.device)
    loo = torch.logsumexp(lw[:, None, :].masked_fill(eye, -math.inf), -1) - math.log(K - 1)
    signal = bound[:, None] - loo
    surrogate = -(omega * log_w + signal * log_q).sum(1).mean()
    return surrogate, bound


def _sum_channels(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Sum a per-channel quantity ``(B, K, C)`` over channels when spikes are ``(B, K, C, T)``."""
    return x.sum(-1) if s.dim() == 4 else x


def make_snippets(traces: torch.Tensor, length: int, stride: int) -> torch.Tensor:
    """Cut traces ``(N, [C,] T)`` into overlapping snippets ``(N, S, [C,] length)``.

    Snippets start every ``stride`` frames; the last one ends at the last frame, so both ends
    of each trace are used.
    """
    check_ndim(traces, "traces", (2, 3), "(cells, frames) or (cells, channels, frames)")
    T = traces.shape[-1]
    if not (0 < length <= T):
        raise ValueError(f"length must be in (0, {T}]; got {length}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1; got {stride}")
    starts = list(range(0, T - length + 1, stride))
    if starts[-1] != T - length:
        starts.append(T - length)
    return torch.stack([traces[..., s : s + length] for s in starts], 1)


@dataclass
class _Buffers:
    start: int
    end: int

    def mask(self, T: int, device) -> torch.Tensor:
        if self.start + self.end >= T:
            raise ValueError(
                f"buffers ({self.start}, {self.end}) leave no frames of a {T}-frame snippet"
            )
        m = torch.zeros(T, device=device)
        m[self.start : T - self.end] = 1.0
        return m


class SpikeVAE(nn.Module):
    """Recognition network plus per-cell generative model, trained by :meth:`loss`.

    Args:
        recognition: a recognition model with ``sample_with_logits``, ``sample`` and
            ``spike_probability`` (see :mod:`neuroinverse.models.recognition`).
        generative: a module with ``log_likelihood(traces, spikes, cell, mask)``, e.g.
            :class:`LinearCalciumModel`.
        prior_rate: prior spike probability per frame π (0.015 in the reference); for
            multi-channel traces ``(B, C, T)`` one value per channel.
        buffers: frames ``(start, end)`` of each snippet left out of every log density.
    """

    def __init__(
        self,
        recognition: nn.Module,
        generative: nn.Module,
        *,
        prior_rate: float = 0.015,
        buffers: tuple[int, int] = (100, 50),
    ) -> None:
        super().__init__()
        rates = [prior_rate] if isinstance(prior_rate, (int, float)) else list(prior_rate)
        for r in rates:
            check_range(r, "prior_rate", 1e-6, 1 - 1e-6)
        if min(buffers) < 0:
            raise ValueError(f"buffers must be non-negative; got {buffers}")
        self.recognition = recognition
        self.generative = generative
        self.prior_rate = (
            float(prior_rate)
            if len(rates) == 1 and isinstance(prior_rate, (int, float))
            else torch.tensor(rates)
        )
        self.buffers = _Buffers(*buffers)

    def _log_prior(self, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if isinstance(self.prior_rate, float):
            rate = torch.full_like(s, self.prior_rate)
        else:
            if s.dim() < 2 or s.shape[-2] != len(self.prior_rate):
                raise ValueError(
                    f"prior_rate has {len(self.prior_rate)} channels; spikes {tuple(s.shape)}"
                )
            rate = self.prior_rate.to(s)[:, None].expand_as(s)
        return _sum_channels(bernoulli_log_prob(s, rate, mask, clip=0.0), s)

    def loss(
        self, traces: torch.Tensor, cell: int, n_samples: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """VIMCO surrogate for a batch of snippets ``(B, T)`` of one cell.

        Returns the surrogate loss and metrics: ``elbo_per_1000`` (the multi-sample bound per
        1000 evaluated frames) and ``spikes_per_1000`` (mean sampled spikes per 1000 frames).
        """
        check_ndim(traces, "traces", (2, 3), "(batch, frames) or (batch, channels, frames)")
        check_finite(traces, "traces")
        T = traces.shape[-1]
        mask = self.buffers.mask(T, traces.device)
        s, logits = self.recognition.sample_with_logits(traces, n_samples, generator)
        log_q = _sum_channels(bernoulli_log_prob(s, torch.sigmoid(logits), mask), s)
        log_prior = self._log_prior(s, mask)
        log_lik = self.generative.log_likelihood(traces[:, None], s, cell, mask)
        surrogate, bound = vimco_objective(log_lik + log_prior, log_q)
        n = float(mask.sum())
        return surrogate, {
            "elbo_per_1000": float(bound.mean()) * 1000.0 / n,
            "spikes_per_1000": float(_sum_channels((s * mask).sum(-1), s).mean()) * 1000.0 / n,
        }

    @torch.no_grad()
    def reconstruction(
        self, traces: torch.Tensor, cell: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A posterior spike sample ``s ~ q(s | f)`` and its noiseless trace ``F_θ(s)``,
        ``(B, T)`` each."""
        check_ndim(traces, "traces", (2, 3), "(batch, [channels,] frames)")
        s = self.recognition.sample(traces, 1, generator)[:, 0]
        return s, self.generative.mean(s, cell)

    @torch.no_grad()
    def bound(
        self,
        snippets: torch.Tensor,
        n_samples: int,
        generator: torch.Generator,
        batch_size: int = 32,
    ) -> float:
        """Mean multi-sample bound per 1000 evaluated frames over snippets ``(cells, S, T)``."""
        check_ndim(snippets, "snippets", (3, 4), "(cells, snippets, [channels,] frames)")
        dev = next(self.parameters()).device
        mask = self.buffers.mask(snippets.shape[-1], dev)
        total, count = 0.0, 0
        for cell in range(snippets.shape[0]):
            for i in range(0, snippets.shape[1], batch_size):
                f = snippets[cell, i : i + batch_size].to(dev)
                s, logits = self.recognition.sample_with_logits(f, n_samples, generator)
                log_p = self.generative.log_likelihood(f[:, None], s, cell, mask) + self._log_prior(
                    s, mask
                )
                _, b = vimco_objective(
                    log_p, _sum_channels(bernoulli_log_prob(s, torch.sigmoid(logits), mask), s)
                )
                total += float(b.sum())
                count += b.numel()
        return total / count * 1000.0 / float(mask.sum())

    @torch.no_grad()
    def spike_probability(self, traces: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Posterior spike probabilities ``(B, T)`` for whole traces (one batched forward pass
        for the factorised CNN)."""
        return self.recognition.spike_probability(traces, batch_size=batch_size)


def train_spike_vae(
    vae: SpikeVAE,
    snippets: torch.Tensor,
    *,
    n_steps: int,
    batch_size: int,
    n_samples: int,
    lr: float = 1e-3,
    theta_lr: float = 3e-2,
    clip_norm: float = 0.02,
    lr_decay: float = 0.995,
    decay_every: int = 200,
    seed: int = 0,
    eval_fn=None,
    eval_every: int = 0,
    checkpoint=None,
    checkpoint_every: int = 0,
    resume: bool = False,
    progress: bool = True,
):
    """Train a :class:`SpikeVAE` on snippets ``(n_cells, n_snippets, T)``, one cell per batch.

    Adam on the recognition network, RMSprop on the generative parameters (learning rate
    ``theta_lr``), global gradient-norm clipping of the recognition gradients at
    ``clip_norm``, learning rates multiplied by ``lr_decay`` every ``decay_every`` steps
    (the reference schedule). Returns the :class:`~neuroinverse.training.History`.
    """
    from ..training import Clipping, fit

    check_ndim(snippets, "snippets", (3, 4), "(cells, snippets, [channels,] frames)")
    check_finite(snippets, "snippets")
    n_cells, n_snip = snippets.shape[:2]
    if n_cells != vae.generative.n_cells:
        raise ValueError(
            f"snippets hold {n_cells} cells but the generative model has {vae.generative.n_cells}"
        )
    if not 1 <= batch_size <= n_snip:
        raise ValueError(f"batch_size must be in [1, {n_snip}]; got {batch_size}")
    check_positive(lr, "lr")
    check_positive(theta_lr, "theta_lr")
    dev = next(vae.parameters()).device
    snippets = snippets.to(dev)
    opt_phi = torch.optim.Adam(vae.recognition.parameters(), lr=lr)
    opt_theta = torch.optim.RMSprop(vae.generative.parameters(), lr=theta_lr)
    scheds = [
        torch.optim.lr_scheduler.StepLR(o, step_size=decay_every, gamma=lr_decay)
        for o in (opt_phi, opt_theta)
    ]

    def loss_fn(step: int, gen: torch.Generator):
        cell = int(torch.randint(n_cells, (1,), generator=gen, device=gen.device))
        idx = torch.randperm(n_snip, generator=gen, device=gen.device)[:batch_size]
        return vae.loss(snippets[cell, idx], cell, n_samples, gen)

    return fit(
        loss_fn,
        module=vae,
        optimizers=[opt_phi, opt_theta],
        schedulers=scheds,
        n_steps=n_steps,
        clipping=Clipping(clip_norm, params=tuple(vae.recognition.parameters())),
        seed=seed,
        eval_fn=eval_fn,
        eval_every=eval_every,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
        desc="DeepSpike VAE",
    )


def fit_spike_vae(
    recognition: nn.Module,
    generative: nn.Module,
    snippets: torch.Tensor,
    *,
    device: torch.device | str = "cpu",
    prior_rate=0.015,
    buffers: tuple[int, int] = (100, 50),
    **train_kw,
):
    """Build a :class:`SpikeVAE` on ``device`` and train it with :func:`train_spike_vae`.

    ``train_kw`` are passed on (``n_steps``, ``batch_size``, ``n_samples``, ``theta_lr``,
    ``seed``, ``eval_fn``, ...). Returns ``(vae, history)``.
    """
    vae = SpikeVAE(recognition, generative, prior_rate=prior_rate, buffers=buffers).to(device)
    return vae, train_spike_vae(vae, snippets, **train_kw)
