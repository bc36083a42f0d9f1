"""The autoregressive spike posterior of the discrete-flows paper inside the DeepSpike VAE.

Aitchison, Adam, Turaga (2018): q(s | f) = Π_{i,t} Bern(s_{i,t}; σ(ℓ_{i,t})) with
ℓ = a(f) + V * s_{<t}, where a(f) is the DeepSpike factorised CNN without its sigmoid and V a
learned causal kernel over past spikes (:mod:`~neuroinverse.inference.discrete_flows`).

* :class:`FlowSpikePosterior` offers the recognition interface of
  :mod:`neuroinverse.models.recognition` (``sample``, ``sample_with_logits``,
  ``spike_probability``): hard samples come from the exact parallel fixed-point sampler, and
  the differentiable relaxed samples from the relaxed flow. With ``coupled=False`` the kernel
  stays zero and the posterior is factorised (the same network, the same estimator).
* :class:`RelaxedFlowVAE` is :class:`~neuroinverse.inference.spike_vae.SpikeVAE` with one
  piece replaced: its loss is the negative ELBO with relaxed samples s̃ inserted into every
  Bernoulli pmf, log p(f | s̃) + log p(s̃) − log q(s̃ | f), averaged over samples, and
  maximised by reparameterised gradients (the paper's objective). It trains with
  :func:`~neuroinverse.inference.spike_vae.train_spike_vae`.
* :func:`spike_elbo` evaluates any of these VAEs by the plain ELBO with hard samples and the
  exact log pmf of q (no clipping), so that factorised and autoregressive posteriors are
  compared by the same number.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_finite, check_ndim, check_positive, check_positive_int
from .calcium_models import bernoulli_log_prob
from .discrete_flows import (
    ar_logits,
    causal_kernel,
    fixed_point_sample,
    relaxed_fixed_point,
    relaxed_sequential,
    sequential_sample,
)
from .spike_vae import SpikeVAE

__all__ = ["FlowSpikePosterior", "RelaxedFlowVAE", "spike_elbo", "linear_model_init"]


class FlowSpikePosterior(nn.Module):
    """AR Bernoulli posterior ℓ = a(f) + V * s_{<t}, sampled by the parallel fixed point.

    Args:
        encoder: network mapping traces ``(B, T)`` to logits ``(B, T)`` (one cell), or
            ``(B, N, T)`` to ``(B, N, T)``, e.g. a
            :class:`~neuroinverse.models.FactorisedSpikeCNN`.
        n_cells: N, the cells imaged together (1 for single traces).
        lags: L, the frames of past spikes the kernel V ``(N, N, L)`` sees.
        coupled: learn V; ``False`` keeps V = 0, a factorised posterior.
        temperature: λ of the relaxed flow.
        n_iter: iterations K of the relaxed flow.
        kernel_gain: V = gain · w with w the trained parameter. Adam moves each parameter by
            about its learning rate per step, but V needs values of several nats (a strong
            refractory term); the gain lets it get there in hundreds of steps, not thousands.
        per_cell: for N > 1, apply a single-cell encoder ``(B, T) → (B, T)`` to every cell's
            trace (one network shared by all cells) instead of one N-channel encoder.
    """

    def __init__(
        self,
        encoder: nn.Module,
        *,
        n_cells: int = 1,
        lags: int = 10,
        coupled: bool = True,
        temperature: float = 0.5,
        n_iter: int = 15,
        kernel_gain: float = 10.0,
        per_cell: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.n_cells = check_positive_int(n_cells, "n_cells")
        self.weights = nn.Parameter(
            torch.zeros(self.n_cells, self.n_cells, check_positive_int(lags, "lags"))
        )
        self.weights.requires_grad_(bool(coupled))
        self.temperature = check_positive(temperature, "temperature")
        self.n_iter = check_positive_int(n_iter, "n_iter", minimum=0)
        self.kernel_gain = check_positive(kernel_gain, "kernel_gain")
        self.per_cell = bool(per_cell)
        if self.per_cell and self.n_cells == 1:
            raise ValueError("per_cell needs n_cells > 1")

    @property
    def kernel(self) -> torch.Tensor:
        """The causal kernel ``(N, N, L + 1)`` indexed by lag (lag 0 zero)."""
        return causal_kernel(self.kernel_gain * self.weights)

    def _kernel_for(self, a: torch.Tensor) -> torch.Tensor:
        return self.kernel[0, 0] if a.dim() == 2 else self.kernel

    def forward(self, traces: torch.Tensor) -> torch.Tensor:
        """Encoder logits a ``(B, [N,] T)``; with ``per_cell``, the encoder sees each cell's
        trace alone."""
        if self.per_cell:
            check_ndim(traces, "traces", 3, f"(batch, {self.n_cells}, frames)")
            if traces.shape[1] != self.n_cells:
                raise ValueError(f"traces must have {self.n_cells} cells; got {traces.shape[1]}")
            B, N, T = traces.shape
            return self.encoder(traces.reshape(B * N, T)).reshape(B, N, T)
        a = self.encoder(traces)
        if (a.dim() == 2) != (self.n_cells == 1):
            raise ValueError(
                f"the encoder gave logits {tuple(a.shape)} for a posterior of {self.n_cells} cells"
            )
        return a

    def _draw(self, traces: torch.Tensor, n_samples: int, generator: torch.Generator):
        check_positive_int(n_samples, "n_samples")
        a = self(traces)
        B = a.shape[0]
        a = a[:, None].expand(B, n_samples, *a.shape[1:]).reshape(B * n_samples, *a.shape[1:])
        u = torch.rand(a.shape, generator=generator, device=generator.device).to(a.device)
        return a, u, B

    def sample_with_logits(
        self,
        traces: torch.Tensor,
        n_samples: int,
        generator: torch.Generator,
        *,
        sequential: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact AR samples ``(B, K, [N,] T)`` (fixed point, or the sequential loop) and their
        differentiable teacher-forced logits ℓ(s) of the same shape."""
        a, u, B = self._draw(traces, n_samples, generator)
        kernel = self._kernel_for(a)
        with torch.no_grad():
            if sequential:
                s = sequential_sample(a.detach(), kernel.detach(), u)
            else:
                s = fixed_point_sample(a.detach(), kernel.detach(), u).spikes
        s = s.to(a.dtype)
        ell = ar_logits(a, kernel, s)
        return s.reshape(B, n_samples, *s.shape[1:]), ell.reshape(B, n_samples, *s.shape[1:])

    @torch.no_grad()
    def sample(
        self,
        traces: torch.Tensor,
        n_samples: int,
        generator: torch.Generator,
        *,
        sequential: bool = False,
    ) -> torch.Tensor:
        """``n_samples`` exact posterior spike trains per trace, ``(B, K, [N,] T)``."""
        return self.sample_with_logits(traces, n_samples, generator, sequential=sequential)[0]

    def relaxed_sample(
        self,
        traces: torch.Tensor,
        n_samples: int,
        generator: torch.Generator,
        *,
        sequential: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Relaxed samples s̃ ``(B, K, [N,] T)`` in (0, 1), their logits ℓ(s̃) (both
        differentiable), and the exact hard samples for the same noise (no gradient).

        ``sequential=True`` computes both frame by frame (the relaxed one is then the limit of
        the flow) instead of by parallel iterations.
        """
        a, u, B = self._draw(traces, n_samples, generator)
        kernel = self._kernel_for(a)
        with torch.no_grad():
            sampler = (
                sequential_sample if sequential else (lambda *x: fixed_point_sample(*x).spikes)
            )
            hard = sampler(a.detach(), kernel.detach(), u).to(a.dtype)
        if sequential:
            s = relaxed_sequential(a, kernel, u, temperature=self.temperature)
        else:
            s = relaxed_fixed_point(a, kernel, u, temperature=self.temperature, n_iter=self.n_iter)
        ell = ar_logits(a, kernel, s)
        shape = (B, n_samples, *s.shape[1:])
        return s.reshape(shape), ell.reshape(shape), hard.reshape(shape)

    @torch.no_grad()
    def spike_probability(
        self, traces: torch.Tensor, batch_size: int = 64, n_samples: int = 16, seed: int = 0
    ) -> torch.Tensor:
        """Posterior marginals ``(B, [N,] T)``: the mean over samples of σ(ℓ_t(s_{<t})), on the
        CPU."""
        dev = next(self.parameters()).device
        gen = torch.Generator(device=dev).manual_seed(seed)
        out = []
        for i in range(0, traces.shape[0], batch_size):
            _, ell = self.sample_with_logits(traces[i : i + batch_size].to(dev), n_samples, gen)
            out.append(torch.sigmoid(ell).mean(1).cpu())
        return torch.cat(out)


def _log_pmf(s: torch.Tensor, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ over cells and frames of log Bern(s; σ(logits)), exact (no clipping); ``(B, K)``."""
    lp = (-s * F.softplus(-logits) - (1 - s) * F.softplus(logits)) * mask
    return lp.flatten(2).sum(-1)


def _prior(vae: SpikeVAE, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log p(s) ``(B, K)``: the generative model's own prior if it has one, else Bernoulli(π)."""
    if hasattr(vae.generative, "log_prior"):
        return vae.generative.log_prior(s, mask)
    rate = vae.prior_rate
    if isinstance(rate, float):
        rate = torch.full_like(s, rate)
    else:
        if s.dim() != 4 or s.shape[-2] != len(rate):
            raise ValueError(f"prior_rate has {len(rate)} channels; spikes {tuple(s.shape)}")
        rate = rate.to(s)[:, None].expand_as(s)
    lp = bernoulli_log_prob(s, rate, mask, clip=0.0)
    return lp.sum(-1) if s.dim() == 4 else lp


class RelaxedFlowVAE(SpikeVAE):
    """:class:`SpikeVAE` trained by the relaxed-flow ELBO (reparameterised, no score function).

    Args:
        recognition: a :class:`FlowSpikePosterior`.
        generative: a module with ``log_likelihood(traces, spikes, cell, mask)`` that accepts
            real-valued spikes (the calcium models are linear in s), and optionally
            ``log_prior(spikes, mask)`` (a learned spike prior, e.g. with coupling between
            cells); otherwise the prior is Bernoulli(``prior_rate``).
        prior_rate, buffers: as :class:`SpikeVAE`.
        sequential: compute each relaxed sample by the sequential loop instead of the
            parallel flow (the baseline of the training-time comparison).
    """

    def __init__(
        self,
        recognition: FlowSpikePosterior,
        generative: nn.Module,
        *,
        prior_rate: float = 0.015,
        buffers: tuple[int, int] = (100, 50),
        sequential: bool = False,
    ) -> None:
        if not isinstance(recognition, FlowSpikePosterior):
            raise ValueError(
                f"recognition must be a FlowSpikePosterior; got {type(recognition).__name__}"
            )
        super().__init__(recognition, generative, prior_rate=prior_rate, buffers=buffers)
        self.sequential = bool(sequential)

    def _log_prior(self, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return _prior(self, s, mask)

    def _log_joint(
        self, traces: torch.Tensor, s: torch.Tensor, cell: int, mask: torch.Tensor
    ) -> torch.Tensor:
        return self.generative.log_likelihood(traces[:, None], s, cell, mask) + _prior(
            self, s, mask
        )

    def loss(
        self, traces: torch.Tensor, cell: int, n_samples: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Negative ELBO for a batch of snippets ``(B, [N,] T)`` of one cell (or recording).

        The recognition network φ gets the reparameterised gradient of the relaxed ELBO
        log p_θ(f | s̃) + log p_θ(s̃) − log q_φ(s̃ | f). The generative parameters θ need no
        relaxation: ∇_θ ELBO = E_q[∇_θ log p_θ(f, s)] is estimated, without the relaxation's
        bias, from the exact hard samples for the same noise (a book choice; the paper's
        abstract does not say how θ was treated). The returned loss is
        −[relaxed ELBO − log p_θ(f, sg(s̃)) + log p_θ(f, s)] (sg: no gradient), whose gradient
        is exactly that; with θ frozen it is the relaxed ELBO's.

        Returns the loss and metrics ``elbo_per_1000`` (the relaxed ELBO per 1000 evaluated
        frames) and ``spikes_per_1000`` (hard spikes per 1000 frames, all cells).
        """
        check_ndim(traces, "traces", (2, 3), "(batch, frames) or (batch, cells, frames)")
        check_finite(traces, "traces")
        mask = self.buffers.mask(traces.shape[-1], traces.device)
        s, ell, hard = self.recognition.relaxed_sample(
            traces, n_samples, generator, sequential=self.sequential
        )
        relaxed = self._log_joint(traces, s, cell, mask) - _log_pmf(s, ell, mask)
        theta_fix = self._log_joint(traces, hard, cell, mask) - self._log_joint(
            traces, s.detach(), cell, mask
        )
        n = float(mask.sum())
        return -(relaxed + theta_fix).mean(), {
            "elbo_per_1000": float(relaxed.detach().mean()) * 1000.0 / n,
            "spikes_per_1000": float((hard * mask).flatten(2).sum(-1).mean()) * 1000.0 / n,
        }


@torch.no_grad()
def spike_elbo(
    vae: SpikeVAE,
    traces: torch.Tensor,
    *,
    cell: int = 0,
    n_samples: int = 16,
    generator: torch.Generator,
    batch_size: int = 16,
) -> float:
    """ELBO per 1000 evaluated frames, E_q[log p(f | s) + log p(s) − log q(s | f)], with hard
    samples.

    Args:
        vae: a :class:`SpikeVAE` (factorised, trained by VIMCO) or a :class:`RelaxedFlowVAE`.
        traces: ``(B, [N,] T)`` traces of the generative model's ``cell``.
        n_samples: samples per trace; ``generator`` on the VAE's device.

    The log pmf of q is exact (no clipping), so the number is a true lower bound on
    log p(f) per trace; frames in the buffers are left out of every term.
    """
    check_positive_int(n_samples, "n_samples")
    dev = next(vae.parameters()).device
    mask = vae.buffers.mask(traces.shape[-1], dev)
    total, count = 0.0, 0
    for i in range(0, traces.shape[0], batch_size):
        f = traces[i : i + batch_size].to(dev)
        s, logits = vae.recognition.sample_with_logits(f, n_samples, generator)
        log_joint = vae.generative.log_likelihood(f[:, None], s, cell, mask) + _prior(vae, s, mask)
        elbo = log_joint - _log_pmf(s, logits, mask)
        total += float(elbo.mean(1).sum())
        count += f.shape[0]
    return total / count * 1000.0 / float(mask.sum())


def linear_model_init(*, gamma: float, alpha: float, beta: float, sigma: float) -> dict[str, float]:
    """The unconstrained ``init`` of :class:`~neuroinverse.inference.LinearCalciumModel` that gives
    these decay, amplitude, baseline and noise values (γ = sigmoid(g), α = softplus(a),
    σ = softplus(σ-param))."""
    for name, value in (("gamma", gamma), ("alpha", alpha), ("sigma", sigma)):
        check_positive(value, name)
    if not gamma < 1:
        raise ValueError(f"gamma must lie in (0, 1); got {gamma!r}")
    return dict(
        g=math.log(gamma / (1 - gamma)),
        a=math.log(math.expm1(alpha)),
        beta=float(beta),
        sigma_param=math.log(math.expm1(sigma)),
    )
