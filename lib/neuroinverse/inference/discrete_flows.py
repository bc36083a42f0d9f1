"""Parallel fixed-point sampling of autoregressive Bernoulli posteriors (discrete flows).

Aitchison, Adam, Turaga, "Discrete flow posteriors for variational inference in discrete
dynamical systems" (2018; OpenReview HyxOIoRqFQ). An autoregressive (AR) posterior over
spike trains s ∈ {0, 1}^{N×T} has, for cell i and frame t, the logit

    ℓ_{i,t}(s) = a_{i,t} + Σ_{k=1}^{L} Σ_j V_{ij,k} s_{j,t−k},
    q(s_{i,t} = 1 | s_{<t}) = σ(ℓ_{i,t}),

with a the (non-causal) output of an encoder and V a causal kernel over past spikes. Drawing
s sequentially costs T dependent steps. With uniform noise u drawn once, the map

    G(s)_{i,t} = 1[u_{i,t} < σ(ℓ_{i,t}(s))] = 1[ℓ_{i,t}(s) > logit u_{i,t}]

updates every frame in parallel. From s⁽⁰⁾ = G(0), the iterates s⁽ᵏ⁺¹⁾ = G(s⁽ᵏ⁾) agree with the
sequential sample on frames t ≤ k (frame t depends on frames < t only), and any fixed point of
G *is* the sequential sample; so :func:`fixed_point_sample` stops at the first k with
s⁽ᵏ⁺¹⁾ = s⁽ᵏ⁾ and returns exactly what :func:`sequential_sample` returns for the same u.

Bit for bit: both samplers compute ℓ by adding, to a copy of a, the terms V_{ij,k} s_{j,t−k}
in the same order (the oldest frame first, then cell by cell). With binary s each product is
exact, so ℓ is the same float in both, and both compare it with the same logit u.

For gradients (the paper's variational objective) :func:`relaxed_fixed_point` replaces the
threshold by a sigmoid at temperature λ and runs a fixed number of iterations; the relaxed
s̃ is inserted into the Bernoulli pmf (:func:`ar_log_prob`), which the paper prefers to
reading the iterations as a normalising flow with log-det-Jacobian terms.

Kernels are indexed by lag from 0: ``kernel[i, j, k]`` weighs s_{j, t−k} in ℓ_{i,t}; lag 0
(the same frame) must be zero (a causal kernel, :func:`causal_kernel`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import check_finite, check_positive, check_positive_int

__all__ = [
    "FixedPointSample",
    "causal_kernel",
    "causal_drive",
    "ar_logits",
    "ar_log_prob",
    "fixed_point_sample",
    "fresh_noise_iteration",
    "sequential_sample",
    "prefix_agreement",
    "relaxed_fixed_point",
    "relaxed_sequential",
    "example_ar_posterior",
]


def causal_kernel(weights: torch.Tensor) -> torch.Tensor:
    """Kernel indexed by lag 0..L from weights of lags 1..L: ``(..., L)`` → ``(..., L + 1)``,
    lag 0 zero."""
    if weights.dim() not in (1, 3) or weights.shape[-1] < 1:
        raise ValueError(
            f"weights must have shape (L,) or (N, N, L) with L >= 1; got {tuple(weights.shape)}"
        )
    return F.pad(weights, (1, 0))


def _canonical(
    logits: torch.Tensor, kernel: torch.Tensor, name: str = "logits"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(B, N, T)`` and kernel ``(N, N, L + 1)`` from the single-cell or multi-cell
    forms."""
    if logits.dim() == 2 and kernel.dim() == 1:
        logits, kernel = logits[:, None, :], kernel[None, None, :]
    elif logits.dim() == 3 and kernel.dim() == 3:
        N = logits.shape[1]
        if kernel.shape[:2] != (N, N):
            raise ValueError(
                f"kernel must have shape ({N}, {N}, L + 1) for {N} cells; got {tuple(kernel.shape)}"
            )
    else:
        raise ValueError(
            f"{name} (B, T) needs a kernel (L + 1,); {name} (B, N, T) a kernel (N, N, L + 1); "
            f"got {tuple(logits.shape)} and {tuple(kernel.shape)}"
        )
    T, width = logits.shape[-1], kernel.shape[-1]
    if width < 1:
        raise ValueError("kernel needs at least the lag-0 entry")
    if width - 1 > T:
        raise ValueError(
            f"kernel reaches {width - 1} frames back, longer than the sequence of {T} frames"
        )
    if (kernel[..., 0] != 0).any():
        raise ValueError(
            "kernel is not causal: its lag-0 entries (the same frame) must be zero; only past "
            "frames may enter ℓ_t (build it with causal_kernel)"
        )
    return logits, kernel.to(device=logits.device, dtype=logits.dtype)


def _checked(
    logits: torch.Tensor, kernel: torch.Tensor, noise: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    if not all(isinstance(x, torch.Tensor) for x in (logits, kernel, noise)):
        raise ValueError("logits, kernel and noise must be tensors")
    if noise.shape != logits.shape:
        raise ValueError(
            f"noise must have the shape of logits {tuple(logits.shape)}; got {tuple(noise.shape)}"
        )
    check_finite(logits, "logits")
    check_finite(kernel, "kernel")
    if torch.isnan(noise).any() or (noise < 0).any() or (noise > 1).any():
        raise ValueError("noise must be uniform draws in [0, 1]")
    a, k = _canonical(logits, kernel)
    return a, k, torch.logit(noise.to(a.dtype)).reshape(a.shape)


def causal_drive(spikes: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Σ_{k≥1} Σ_j kernel[i, j, k] s_{j, t−k} for real-valued spikes ``(B, N, T)``.

    One product of the windows of past frames with the kernel (a causal convolution; on a
    CPU this is several times faster than ``conv1d`` for so few channels, backward included).
    Differentiable in both arguments (used by the relaxed flow and for log q of given spikes).
    """
    L = kernel.shape[-1] - 1
    if L == 0:
        return torch.zeros_like(spikes)
    T = spikes.shape[-1]
    windows = F.pad(spikes, (L, 0)).unfold(-1, L, 1)[..., :T, :]  # (B, N, T, L): s_{t−L} … s_{t−1}
    return torch.einsum("bjtl,ijl->bit", windows, kernel[:, :, 1:].flip(-1))


def ar_logits(logits: torch.Tensor, kernel: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
    """Teacher-forced AR logits ℓ(s) = a + causal drive of s, in the single- or multi-cell form
    of ``logits``."""
    if spikes.shape != logits.shape:
        raise ValueError(
            f"spikes must have the shape of logits {tuple(logits.shape)}; got {tuple(spikes.shape)}"
        )
    a, k = _canonical(logits, kernel)
    return (a + causal_drive(spikes.reshape(a.shape).to(a.dtype), k)).reshape(logits.shape)


def ar_log_prob(
    spikes: torch.Tensor,
    logits: torch.Tensor,
    kernel: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """log q(s) = Σ s log σ(ℓ(s)) + (1 − s) log σ(−ℓ(s)) over cells and frames (masked frames
    left out).

    For binary s this is the AR posterior's log pmf; for relaxed s̃ ∈ (0, 1) it is the paper's
    pmf insertion (not a normalised density). Returns the batch shape ``(B,)``.
    """
    ell = ar_logits(logits, kernel, spikes)
    lp = -spikes * F.softplus(-ell) - (1 - spikes) * F.softplus(ell)
    if mask is not None:
        lp = lp * mask
    return lp.flatten(1).sum(1)


def _column_schedule(kernel: torch.Tensor) -> list[tuple[int, int, torch.Tensor | float]]:
    """(lag, source cell, weights) in the order both samplers add them: oldest lag first, then
    by cell.

    Columns that are all zero are left out: adding ±0 changes no logit.
    """
    N, width = kernel.shape[1], kernel.shape[-1]
    schedule = []
    cpu = kernel.detach().cpu()
    for lag in range(width - 1, 0, -1):
        for j in range(N):
            col = cpu[:, j, lag]
            if bool((col != 0).any()):
                schedule.append(
                    (lag, j, float(col[0]) if N == 1 else kernel[:, j, lag][None, :, None])
                )
    return schedule


def _ordered_logits(a: torch.Tensor, schedule, s: torch.Tensor) -> torch.Tensor:
    """ℓ(s) for binary s ``(B, N, T)``: a plus the kernel's terms, added in the schedule's order."""
    ell = a.clone()
    T = a.shape[-1]
    for lag, j, w in schedule:
        if lag >= T:
            continue
        if isinstance(w, float):
            ell[:, :, lag:].add_(s[:, j : j + 1, : T - lag], alpha=w)
        else:
            ell[:, :, lag:].addcmul_(s[:, j : j + 1, : T - lag], w)
    return ell


@dataclass
class FixedPointSample:
    """The result of :func:`fixed_point_sample`.

    Attributes:
        spikes: the exact AR sample, ``bool`` with the shape of the logits.
        iterations: ``(B,)`` iterations K* each sequence needed: the smallest k with s⁽ᵏ⁾ the
            fixed point (0 when the factorised draw s⁽⁰⁾ = G(0) already is).
        n_passes: parallel passes of G over the batch, counting s⁽⁰⁾ and the final check.
        trajectory: ``(n_passes, *spikes.shape)`` iterates s⁽⁰⁾, s⁽¹⁾, … (when asked for).
    """

    spikes: torch.Tensor
    iterations: torch.Tensor
    n_passes: int
    trajectory: torch.Tensor | None = None


def _iterate(
    a, schedule, z, cap: int, trajectory: bool, fresh: torch.Generator | None = None
) -> FixedPointSample:
    """s⁽ᵏ⁺¹⁾ = G(s⁽ᵏ⁾) until no sequence changes (or ``cap`` iterations); converged sequences
    drop out.

    With ``fresh`` a generator, every iteration draws new noise (the pitfall the samplers avoid).
    """
    s = a > z  # s⁽⁰⁾ = G(0): the factorised draw
    iterations = torch.zeros(a.shape[0], dtype=torch.long, device=a.device)
    frames = [s.clone()] if trajectory else None
    active = torch.arange(a.shape[0], device=a.device)
    a_act, z_act, s_act = a, z, s
    passes, it = 1, 0
    while it < cap and active.numel():
        if fresh is not None:
            z_act = torch.logit(
                torch.rand(a_act.shape, generator=fresh, device=fresh.device).to(a.dtype)
            )
        new = _ordered_logits(a_act, schedule, s_act.to(a.dtype)) > z_act
        passes += 1
        it += 1
        changed = (new != s_act).flatten(1).any(1)
        s[active] = new
        iterations[active] += changed.long()
        if frames is not None:
            frames.append(s.clone())
        if not bool(changed.all()):
            active, a_act, z_act, new = (
                active[changed],
                a_act[changed],
                z_act[changed],
                new[changed],
            )
        s_act = new
    traj = torch.stack(frames) if frames is not None else None
    return FixedPointSample(s, iterations, passes, traj)


def _shaped(res: FixedPointSample, shape: torch.Size) -> FixedPointSample:
    traj = (
        res.trajectory.reshape(len(res.trajectory), *shape) if res.trajectory is not None else None
    )
    return FixedPointSample(res.spikes.reshape(shape), res.iterations, res.n_passes, traj)


def fixed_point_sample(
    logits: torch.Tensor,
    kernel: torch.Tensor,
    noise: torch.Tensor,
    *,
    max_iter: int | None = None,
    trajectory: bool = False,
) -> FixedPointSample:
    """Draw the AR sample for noise u by the parallel fixed-point iteration s⁽ᵏ⁺¹⁾ = G(s⁽ᵏ⁾).

    Args:
        logits: encoder logits a, ``(B, T)`` (one cell) or ``(B, N, T)``.
        kernel: causal kernel ``(L + 1,)`` or ``(N, N, L + 1)`` indexed by lag (lag 0 zero).
        noise: uniform draws u in [0, 1] with the shape of ``logits``; reused by every
            iteration (fresh noise per iteration destroys both convergence and exactness).
        max_iter: at most this many iterations after s⁽⁰⁾ (default T − 1, after which the
            iterate is exact by construction; a smaller cap returns a truncated, possibly
            wrong sample, which is only useful to show what truncation does).
        trajectory: also return every iterate (memory: passes × batch).

    Returns:
        :class:`FixedPointSample`: the sample equals :func:`sequential_sample` bit for bit.
    """
    a, k, z = _checked(logits, kernel, noise)
    T = a.shape[-1]
    cap = (
        T - 1
        if max_iter is None
        else min(check_positive_int(max_iter, "max_iter", minimum=0), T - 1)
    )
    return _shaped(_iterate(a, _column_schedule(k), z, cap, trajectory), logits.shape)


def fresh_noise_iteration(
    logits: torch.Tensor,
    kernel: torch.Tensor,
    noise: torch.Tensor,
    *,
    generator: torch.Generator,
    max_iter: int | None = None,
    trajectory: bool = False,
) -> FixedPointSample:
    """A deliberately wrong sampler, for controls: the iteration of :func:`fixed_point_sample`
    with **fresh** uniform noise at every iteration after the first (which uses ``noise``).

    It has no fixed point to settle in, so it runs until the cap (default T − 1) and its
    result is not the sequential sample for ``noise``. Arguments as :func:`fixed_point_sample`.
    """
    a, k, z = _checked(logits, kernel, noise)
    T = a.shape[-1]
    cap = (
        T - 1
        if max_iter is None
        else min(check_positive_int(max_iter, "max_iter", minimum=0), T - 1)
    )
    return _shaped(
        _iterate(a, _column_schedule(k), z, cap, trajectory, fresh=generator), logits.shape
    )


def sequential_sample(
    logits: torch.Tensor, kernel: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Draw the AR sample for noise u frame by frame (a plain loop over t), ``bool`` like
    ``logits``.

    After frame t is drawn, its spikes add their kernel terms to the logits of frames
    t + 1 … t + L, so each frame's logit is complete when it is reached.
    """
    a, k, z = _checked(logits, kernel, noise)
    B, N, T = a.shape
    L = k.shape[-1] - 1
    ell = a.clone()
    out = torch.zeros(a.shape, dtype=torch.bool, device=a.device)
    future = k[:, :, 1:].to(a.dtype)  # (N_i, N_j, L): lag 1..L
    nonzero = [j for j in range(N) if bool((future[:, j] != 0).any())]
    for t in range(T):
        st = ell[:, :, t] > z[:, :, t]
        out[:, :, t] = st
        m = min(L, T - 1 - t)
        if m == 0:
            continue
        sf = st.to(a.dtype)
        for j in nonzero:
            ell[:, :, t + 1 : t + 1 + m].addcmul_(future[None, :, j, :m], sf[:, j, None, None])
    return out.reshape(logits.shape)


def prefix_agreement(trajectory: torch.Tensor, reference: torch.Tensor) -> float:
    """Fraction of (iterate k, sequence) pairs whose frames 0 … k agree with ``reference``.

    The fixed-point iterates s⁽ᵏ⁾ must agree with the sequential sample on frames t ≤ k
    (frame t depends on earlier frames only), so the exact sampler scores 1.

    Args:
        trajectory: ``(passes, B, [N,] T)`` iterates from :func:`fixed_point_sample`.
        reference: ``(B, [N,] T)`` the sequential sample.
    """
    if trajectory.shape[1:] != reference.shape:
        raise ValueError(
            f"trajectory {tuple(trajectory.shape)} does not hold iterates of "
            f"{tuple(reference.shape)}"
        )
    T = reference.shape[-1]
    wrong = (
        (trajectory != reference[None]).reshape(*trajectory.shape[:2], -1, T).any(2)
    )  # (passes, B, T)
    first = torch.where(
        wrong.any(-1), wrong.float().argmax(-1), torch.full_like(wrong[..., 0], T, dtype=torch.long)
    )
    k = torch.arange(trajectory.shape[0], device=trajectory.device)[:, None]
    return float((first > k).float().mean())


def _relaxed_inputs(logits, kernel, noise, temperature, eps=1e-6):
    if noise.shape != logits.shape:
        raise ValueError(
            f"noise must have the shape of logits {tuple(logits.shape)}; got {tuple(noise.shape)}"
        )
    if (noise < 0).any() or (noise > 1).any():
        raise ValueError("noise must be uniform draws in [0, 1]")
    check_positive(temperature, "temperature")
    a, k = _canonical(logits, kernel)
    return a, k, torch.logit(noise.to(a.dtype).reshape(a.shape).clamp(eps, 1 - eps))


def relaxed_fixed_point(
    logits: torch.Tensor,
    kernel: torch.Tensor,
    noise: torch.Tensor,
    *,
    temperature: float = 0.5,
    n_iter: int = 20,
) -> torch.Tensor:
    """The relaxed (differentiable) flow: ``n_iter`` iterations of s̃ ← σ((ℓ(s̃) − logit u) / λ).

    Starts from s̃⁽⁰⁾ = σ((a − logit u) / λ). The relaxed map has no exact fixed point to test
    for, so the number of iterations is fixed. Returns s̃ in (0, 1) with the shape of ``logits``,
    differentiable in ``logits`` and ``kernel``.
    """
    check_positive_int(n_iter, "n_iter", minimum=0)
    a, k, z = _relaxed_inputs(logits, kernel, noise, temperature)
    s = torch.sigmoid((a - z) / temperature)
    for _ in range(n_iter):
        s = torch.sigmoid((a + causal_drive(s, k) - z) / temperature)
    return s.reshape(logits.shape)


def relaxed_sequential(
    logits: torch.Tensor, kernel: torch.Tensor, noise: torch.Tensor, *, temperature: float = 0.5
) -> torch.Tensor:
    """The relaxed AR sample computed frame by frame: s̃_t = σ((ℓ_t(s̃_{<t}) − logit u_t) / λ).

    The limit of :func:`relaxed_fixed_point` (reached after T iterations); the sequential
    baseline whose training time the fixed-point iteration is compared with.
    """
    a, k, z = _relaxed_inputs(logits, kernel, noise, temperature)
    B, N, T = a.shape
    L = k.shape[-1] - 1
    w = k[:, :, 1:].flip(-1)  # (N_i, N_j, L): lags L..1, aligned with the window s̃_{t−L..t−1}
    past = a.new_zeros(B, N, L)
    out = []
    for t in range(T):
        st = torch.sigmoid(
            (a[:, :, t] + torch.einsum("bjl,ijl->bi", past, w) - z[:, :, t]) / temperature
        )
        out.append(st)
        past = torch.cat([past[:, :, 1:], st[:, :, None]], -1) if L else past
    return torch.stack(out, -1).reshape(logits.shape)


def example_ar_posterior(
    batch: int,
    n_frames: int,
    *,
    generator: torch.Generator,
    base_rate: float = 0.03,
    event_rate: float = 0.03,
    height: tuple[float, float] = (2.0, 4.0),
    width: float = 1.5,
    lags: int = 10,
    coupling: float = -2.0,
    decay: float = 3.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A synthetic single-cell AR posterior: logits ``(batch, n_frames)`` and kernel
    ``(lags + 1,)``.

    a_t = logit(base_rate) plus Gaussian bumps (SD ``width`` frames, heights uniform in
    ``height``) at events drawn with probability ``event_rate`` per frame; the kernel is
    V_k = coupling · exp(−k / decay) for k = 1 … lags (refractory-like when negative, which
    produces explaining-away between neighbouring frames).
    """
    check_positive_int(batch, "batch")
    check_positive_int(n_frames, "n_frames")
    check_positive_int(lags, "lags")
    events = torch.rand(batch, n_frames, generator=generator) < event_rate
    heights = height[0] + (height[1] - height[0]) * torch.rand(batch, n_frames, generator=generator)
    half = max(1, math.ceil(4 * width))
    bump = torch.exp(-0.5 * (torch.arange(-half, half + 1, dtype=torch.float32) / width) ** 2)
    a = F.conv1d((events * heights)[:, None], bump[None, None], padding=half)[:, 0]
    a = a + math.log(base_rate / (1 - base_rate))
    kernel = causal_kernel(
        coupling * torch.exp(-torch.arange(1, lags + 1, dtype=torch.float32) / decay)
    )
    return a, kernel
