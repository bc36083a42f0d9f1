"""Toy simulators for simulation-based inference, each with its exact answer beside it.

* **Two moons** (Greenberg, Nonnenmacher & Macke, ICML 2019, Fig. 1; sbibm's definition,
  Lueckmann et al., AISTATS 2021): θ ∈ [-1, 1]², a ~ U(-π/2, π/2), r ~ N(0.1, 0.01²),
  p = (r cos a + 0.25, r sin a), x = p + (-|θ₁ + θ₂|/√2, (-θ₁ + θ₂)/√2). Its likelihood is
  analytic (:func:`two_moons_log_likelihood`); the reference posterior is computed on a fine
  grid (:func:`two_moons_grid_posterior`, :func:`two_moons_reference_posterior`).
* **Gaussian linear** (sbibm): θ ~ N(0, σ_p² I), x | θ ~ N(θ, σ_n² I); conjugate posterior
  (:func:`gaussian_linear_posterior`).
* **1-D Gaussian** (emulators chapter): θ ~ U(-2, 2), x | θ ~ N(θ, 0.1); the posterior is a
  Gaussian truncated to the prior box (:func:`gaussian_1d_posterior_log_prob`).
* **SLCP** (simple likelihood, complex posterior; Papamakarios et al., AISTATS 2019, used by
  APT Fig. 2): θ ∈ [-3, 3]⁵, x = 4 i.i.d. draws from N(μ(θ), Σ(θ)), flattened to R⁸
  (:func:`slcp`, :func:`slcp_log_likelihood`, a reference posterior by MCMC
  :func:`slcp_reference_posterior`) and its version with distractor dimensions.

Every simulator takes ``theta`` of shape ``(n, d)``, checks its shape and NaN (``ValueError``
naming ``theta``), draws its noise from ``generator`` (on the generator's device, then moved
to ``theta``'s device) and returns ``x`` of shape ``(n, d_x)`` (float32).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import as_tensor, check_positive, check_positive_int
from ..samplers import sample_grid
from .priors import BoxUniform, GaussianPrior

__all__ = [
    "TWO_MOONS_X_O",
    "TWO_MOONS_THETA_O",
    "two_moons_prior",
    "two_moons",
    "two_moons_log_likelihood",
    "two_moons_grid_posterior",
    "two_moons_reference_posterior",
    "gaussian_linear_prior",
    "gaussian_linear",
    "gaussian_linear_log_likelihood",
    "gaussian_linear_posterior",
    "GAUSSIAN_1D_X_O",
    "gaussian_1d_prior",
    "gaussian_1d",
    "gaussian_1d_log_likelihood",
    "gaussian_1d_posterior_log_prob",
    "SLCP_THETA_O",
    "slcp_prior",
    "slcp",
    "slcp_distractors",
    "slcp_log_likelihood",
    "slcp_reference_posterior",
]

#: sbibm two_moons observation 1 and its true parameter.
TWO_MOONS_X_O: tuple[float, float] = (-0.6397, 0.1623)
TWO_MOONS_THETA_O: tuple[float, float] = (-0.8177, -0.5757)
_TM_R_MEAN, _TM_R_SD, _TM_OFFSET = 0.1, 0.01, 0.25

#: the 1-D Gaussian toy's observation.
GAUSSIAN_1D_X_O: float = 0.5

#: SLCP ground-truth parameter of the SNL/APT experiments.
SLCP_THETA_O: tuple[float, ...] = (0.7, -2.9, -1.0, -0.9, 0.6)


def _check_theta(theta, dim: int, name: str = "theta") -> torch.Tensor:
    t = theta if isinstance(theta, torch.Tensor) else as_tensor(theta, name)
    if t.ndim != 2 or t.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}); got {tuple(t.shape)}")
    if t.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one row; got shape {tuple(t.shape)}")
    if torch.isnan(t).any():
        raise ValueError(f"{name} contains NaN")
    return t if t.dtype == torch.float64 else t.to(torch.float32)


def _check_x(x, dim: int, n: int | None = None, name: str = "x") -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else as_tensor(x, name)
    if t.ndim == 1 and t.shape[0] == dim:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}) or ({dim},); got {tuple(t.shape)}")
    if n is not None and t.shape[0] not in (1, n):
        raise ValueError(f"{name} must have 1 or {n} rows (one per theta); got {t.shape[0]}")
    if torch.isnan(t).any():
        raise ValueError(f"{name} contains NaN")
    return t


def _noise(
    shape, generator: torch.Generator | None, like: torch.Tensor, kind: str = "normal"
) -> torch.Tensor:
    dev = generator.device if generator is not None else like.device
    f = torch.randn if kind == "normal" else torch.rand
    return f(*shape, generator=generator, device=dev).to(like.device)


# ---------------------------------------------------------------------------------------------
# Two moons
# ---------------------------------------------------------------------------------------------
def two_moons_prior() -> BoxUniform:
    """U([-1, 1]²)."""
    return BoxUniform([-1.0, -1.0], [1.0, 1.0])


def _two_moons_shift(theta: torch.Tensor) -> torch.Tensor:
    """The θ-dependent part of x: (-|θ₁ + θ₂|/√2, (-θ₁ + θ₂)/√2), shape ``(n, 2)``."""
    s2 = math.sqrt(2.0)
    return torch.stack(
        [-(theta[:, 0] + theta[:, 1]).abs() / s2, (theta[:, 1] - theta[:, 0]) / s2], 1
    )


def two_moons(theta, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Simulate two moons.

    Args:
        theta: ``(n, 2)`` parameters.
        generator: source of the noise (angle a and radius r).

    Returns:
        ``x`` of shape ``(n, 2)``.
    """
    theta = _check_theta(theta, 2)
    n = theta.shape[0]
    a = math.pi * (_noise((n,), generator, theta, "uniform") - 0.5)
    r = _TM_R_MEAN + _TM_R_SD * _noise((n,), generator, theta)
    p = torch.stack([r * torch.cos(a) + _TM_OFFSET, r * torch.sin(a)], 1)
    return p + _two_moons_shift(theta)


def _two_moons_noise_log_density(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """log density of p = (u + 0.25, v) where (u, v) = (r cos a, r sin a), a ~ U(-π/2, π/2),
    r ~ N(0.1, 0.01²).

    Polar change of variables: p(u, v) = [N(ρ; 0.1, 0.01²)·1{u > 0} + N(-ρ; ...)·1{u < 0}] / (π ρ)
    with ρ = √(u² + v²) (the second term, from r < 0, is ~e⁻⁵⁰ but keeps the density exact).
    """
    rho = torch.sqrt(u**2 + v**2).clamp_min(1e-300 if u.dtype == torch.float64 else 1e-30)
    signed = torch.where(u >= 0, rho, -rho)
    log_n = -0.5 * ((signed - _TM_R_MEAN) / _TM_R_SD) ** 2 - math.log(
        _TM_R_SD * math.sqrt(2 * math.pi)
    )
    return log_n - math.log(math.pi) - torch.log(rho)


def two_moons_log_likelihood(theta, x) -> torch.Tensor:
    """Exact ``log p(x | θ)`` of two moons, shape ``(n,)``.

    Args:
        theta: ``(n, 2)``.
        x: ``(n, 2)``, or one observation ``(2,)`` / ``(1, 2)`` for every θ.

    Computed in float64 (the ring is narrow) and returned as float64.
    """
    theta = _check_theta(theta, 2).double()
    x = _check_x(x, 2, theta.shape[0]).to(theta.device, torch.float64)
    p = x - _two_moons_shift(theta)
    return _two_moons_noise_log_density(p[:, 0] - _TM_OFFSET, p[:, 1])


def two_moons_grid_posterior(x_o=TWO_MOONS_X_O, *, grid: int = 400, subsample: int = 4):
    """Two-moons posterior for a uniform prior on [-1, 1]², on a ``grid × grid`` cell grid.

    Each cell's mass is the mean of the likelihood at ``subsample²`` points spread evenly
    inside the cell (the crescents are ≈ 0.01 wide, about two cells at ``grid=400``).

    Args:
        x_o: observation, ``(2,)``.
        grid: cells per axis.
        subsample: evaluation points per cell and axis.

    Returns:
        ``(axis, density)``: ``axis`` the ``grid`` cell centres per axis (numpy ``(grid,)``, the
        same for θ₁ and θ₂), ``density`` (numpy ``(grid, grid)``, indexed ``[i₁, i₂]``) the
        posterior density, normalised so that ``density.sum() * cell_area == 1``.
    """
    grid = check_positive_int(grid, "grid", minimum=2)
    subsample = check_positive_int(subsample, "subsample")
    x = _check_x(x_o, 2, 1, "x_o").double()
    h = 2.0 / grid
    axis = -1.0 + h * (np.arange(grid) + 0.5)
    offs = h * ((np.arange(subsample) + 0.5) / subsample - 0.5)
    fine = torch.as_tensor((axis[:, None] + offs[None, :]).ravel(), dtype=torch.float64)
    t1, t2 = torch.meshgrid(fine, fine, indexing="ij")
    ll = two_moons_log_likelihood(torch.stack([t1.ravel(), t2.ravel()], 1), x).reshape(
        len(fine), len(fine)
    )
    lik = torch.exp(ll - ll.max())
    mass = lik.reshape(grid, subsample, grid, subsample).mean((1, 3)).numpy()
    total = mass.sum()
    if not total > 0:
        raise ValueError(f"x_o={x.tolist()} has zero likelihood for every θ in the prior box")
    return axis, mass / (total * h * h)


def two_moons_reference_posterior(
    x_o=TWO_MOONS_X_O,
    n: int = 1000,
    *,
    grid: int = 400,
    subsample: int = 4,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` reference posterior samples ``(n, 2)``: grid cells drawn by mass, plus uniform
    jitter."""
    n = check_positive_int(n, "n")
    axis, dens = two_moons_grid_posterior(x_o, grid=grid, subsample=subsample)
    return sample_grid((axis, axis), dens, n, generator=generator)


# ---------------------------------------------------------------------------------------------
# Gaussian linear
# ---------------------------------------------------------------------------------------------
def gaussian_linear_prior(dim: int = 10, *, prior_var: float = 0.1) -> GaussianPrior:
    """N(0, prior_var · I) in ``dim`` dimensions (sbibm: dim 10, variance 0.1)."""
    check_positive(prior_var, "prior_var")
    return GaussianPrior(torch.zeros(dim), math.sqrt(prior_var))


def gaussian_linear(
    theta, *, noise_var: float = 0.1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x | θ ~ N(θ, noise_var · I); ``theta`` ``(n, d)`` → ``x`` ``(n, d)``."""
    check_positive(noise_var, "noise_var")
    t = theta if isinstance(theta, torch.Tensor) else as_tensor(theta, "theta")
    if t.ndim != 2:
        raise ValueError(f"theta must have shape (n, d); got {tuple(t.shape)}")
    theta = _check_theta(t, t.shape[1])
    return theta + math.sqrt(noise_var) * _noise(theta.shape, generator, theta)


def gaussian_linear_log_likelihood(theta, x, *, noise_var: float = 0.1) -> torch.Tensor:
    """``log N(x; θ, noise_var · I)``, shape ``(n,)``."""
    check_positive(noise_var, "noise_var")
    t = theta if isinstance(theta, torch.Tensor) else as_tensor(theta, "theta")
    if t.ndim != 2:
        raise ValueError(f"theta must have shape (n, d); got {tuple(t.shape)}")
    theta = _check_theta(t, t.shape[1])
    x = _check_x(x, theta.shape[1], theta.shape[0]).to(theta)
    d = theta.shape[1]
    return -0.5 * ((x - theta) ** 2).sum(1) / noise_var - 0.5 * d * math.log(
        2 * math.pi * noise_var
    )


def gaussian_linear_posterior(x_o, *, prior_var: float = 0.1, noise_var: float = 0.1):
    """Conjugate posterior of the Gaussian linear task for one observation.

    With prior N(0, σ_p² I) and likelihood N(x; θ, σ_n² I):
    Σ_post = (1/σ_p² + 1/σ_n²)⁻¹ I and μ_post = Σ_post x_o / σ_n².

    Args:
        x_o: observation ``(d,)``.

    Returns:
        ``(mean (d,), cov (d, d))`` as float64 tensors.
    """
    check_positive(prior_var, "prior_var")
    check_positive(noise_var, "noise_var")
    x = as_tensor(x_o, "x_o", dtype=torch.float64).reshape(-1)
    if torch.isnan(x).any():
        raise ValueError("x_o contains NaN")
    var = 1.0 / (1.0 / prior_var + 1.0 / noise_var)
    return var * x / noise_var, var * torch.eye(x.numel(), dtype=torch.float64)


# ---------------------------------------------------------------------------------------------
# 1-D Gaussian (emulators chapter)
# ---------------------------------------------------------------------------------------------
def gaussian_1d_prior() -> BoxUniform:
    """U(-2, 2)."""
    return BoxUniform([-2.0], [2.0])


def gaussian_1d(
    theta, *, noise_var: float = 0.1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x | θ ~ N(θ, noise_var); ``theta`` ``(n, 1)`` → ``x`` ``(n, 1)``."""
    check_positive(noise_var, "noise_var")
    theta = _check_theta(theta, 1)
    return theta + math.sqrt(noise_var) * _noise(theta.shape, generator, theta)


def gaussian_1d_log_likelihood(theta, x, *, noise_var: float = 0.1) -> torch.Tensor:
    """``log N(x; θ, noise_var)``, shape ``(n,)``."""
    return gaussian_linear_log_likelihood(_check_theta(theta, 1), x, noise_var=noise_var)


def gaussian_1d_posterior_log_prob(
    theta,
    x_o: float = GAUSSIAN_1D_X_O,
    *,
    noise_var: float = 0.1,
    low: float = -2.0,
    high: float = 2.0,
) -> torch.Tensor:
    """Exact posterior log density for a U(low, high) prior: N(θ; x_o, noise_var) truncated to
    the box.

    Args:
        theta: ``(n, 1)`` (or ``(n,)``).

    Returns:
        ``(n,)`` float64; ``-inf`` outside ``[low, high]``.
    """
    check_positive(noise_var, "noise_var")
    t = theta if isinstance(theta, torch.Tensor) else as_tensor(theta, "theta")
    theta = _check_theta(t.reshape(-1, 1) if t.ndim == 1 else t, 1).double()[:, 0]
    sd = math.sqrt(noise_var)
    x = float(x_o)
    z = 0.5 * (
        math.erf((high - x) / (sd * math.sqrt(2))) - math.erf((low - x) / (sd * math.sqrt(2)))
    )
    lp = -0.5 * ((theta - x) / sd) ** 2 - math.log(sd * math.sqrt(2 * math.pi)) - math.log(z)
    inside = (theta >= low) & (theta <= high)
    return torch.where(inside, lp, torch.full_like(lp, -math.inf))


# ---------------------------------------------------------------------------------------------
# SLCP
# ---------------------------------------------------------------------------------------------
def slcp_prior() -> BoxUniform:
    """U([-3, 3]⁵)."""
    return BoxUniform([-3.0] * 5, [3.0] * 5)


def _slcp_mean_chol(theta: torch.Tensor):
    """μ (n, 2) and the Cholesky factor L (n, 2, 2) of Σ(θ)."""
    s1, s2, rho = theta[:, 2] ** 2, theta[:, 3] ** 2, torch.tanh(theta[:, 4])
    L = torch.zeros(theta.shape[0], 2, 2, dtype=theta.dtype, device=theta.device)
    L[:, 0, 0] = s1
    L[:, 1, 0] = rho * s2
    L[:, 1, 1] = s2 * torch.sqrt(1 - rho**2)
    return theta[:, :2], L


def slcp(theta, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """SLCP: 4 i.i.d. draws from N(μ, Σ), μ = (θ₁, θ₂), Σ = [[s₁², ρs₁s₂], [ρs₁s₂, s₂²]],
    s₁ = θ₃², s₂ = θ₄², ρ = tanh θ₅; returns ``(n, 8)`` = (draw₁, ..., draw₄) flattened."""
    theta = _check_theta(theta, 5)
    mu, L = _slcp_mean_chol(theta)
    eps = _noise((theta.shape[0], 4, 2), generator, theta)
    draws = mu[:, None, :] + torch.einsum("nij,nkj->nki", L, eps)
    return draws.reshape(theta.shape[0], 8)


def slcp_distractors(
    theta, *, n_distractors: int = 20, generator: torch.Generator | None = None
) -> torch.Tensor:
    """SLCP with ``n_distractors`` uninformative N(0, 1) dimensions appended:
    ``(n, 8 + n_distractors)``."""
    n_distractors = check_positive_int(n_distractors, "n_distractors", minimum=0)
    x = slcp(theta, generator=generator)
    return torch.cat([x, _noise((x.shape[0], n_distractors), generator, x)], 1)


def slcp_log_likelihood(theta, x) -> torch.Tensor:
    """Exact SLCP ``log p(x | θ)`` (sum of four 2-D Gaussian log densities), shape ``(n,)``.

    Args:
        theta: ``(n, 5)``.
        x: ``(n, 8)`` or one observation ``(8,)``; extra (distractor) columns are not allowed.
    """
    theta = _check_theta(theta, 5)
    x = _check_x(x, 8, theta.shape[0]).to(theta)
    mu, L = _slcp_mean_chol(theta)
    d = x.reshape(x.shape[0], 4, 2) - mu[:, None, :]
    # Solve L y = d per draw; log|Σ| = 2 log(L00 L11).
    y0 = d[..., 0] / L[:, None, 0, 0]
    y1 = (d[..., 1] - L[:, None, 1, 0] * y0) / L[:, None, 1, 1]
    logdet = 2 * (torch.log(L[:, 0, 0]) + torch.log(L[:, 1, 1]))
    return -0.5 * (y0**2 + y1**2).sum(1) - 4 * (math.log(2 * math.pi) + 0.5 * logdet)


def slcp_reference_posterior(
    x_o,
    n: int = 1000,
    *,
    n_chains: int = 100,
    n_warmup: int = 2000,
    thin: int = 10,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SLCP reference posterior samples ``(n, 5)`` by random-walk Metropolis on the exact
    likelihood.

    The posterior is invariant under θ₃ → -θ₃ and θ₄ → -θ₄ (only their squares enter), so
    the chains run in the orthant θ₃, θ₄ ≥ 0 (folded) and each sample's two signs are then
    drawn at random: the four symmetric modes get exactly equal weight. ``n_chains`` chains
    start from the best of 20 000 prior draws; the step size adapts during warm-up to an
    acceptance of about 0.3 per chain (per-chain proposal scale ∝ the chains' spread).
    """
    n = check_positive_int(n, "n")
    x = _check_x(x_o, 8, 1, "x_o").double()
    prior = slcp_prior()

    def logp(t):
        inside = ((t >= -3) & (t <= 3)).all(1)
        ll = slcp_log_likelihood(t, x).double()
        return torch.where(inside, ll, torch.full_like(ll, -math.inf))

    cand = prior.sample(20000, generator=generator).double()
    cand[:, 2:4] = cand[:, 2:4].abs()
    lp = logp(cand)
    top = torch.topk(lp, n_chains).indices
    state, lp_state = cand[top].clone(), lp[top].clone()
    scale = torch.full((n_chains, 1), 0.1, dtype=torch.float64)
    n_keep = math.ceil(n / n_chains)
    out = []
    for it in range(n_warmup + n_keep * thin):
        prop = state + scale * torch.randn(state.shape, generator=generator, dtype=torch.float64)
        prop[:, 2:4] = prop[:, 2:4].abs()
        lp_prop = logp(prop)
        acc = (
            torch.log(torch.rand(n_chains, generator=generator, dtype=torch.float64))
            < lp_prop - lp_state
        )
        state = torch.where(acc[:, None], prop, state)
        lp_state = torch.where(acc, lp_prop, lp_state)
        if it < n_warmup:
            scale = scale * torch.exp(0.05 * (acc.double()[:, None] - 0.3))
        elif (it - n_warmup) % thin == thin - 1:
            out.append(state.clone())
    samples = torch.stack(out, 1).reshape(-1, 5)
    samples = samples[torch.randperm(samples.shape[0], generator=generator)[:n]]
    signs = torch.where(torch.rand(n, 2, generator=generator) < 0.5, -1.0, 1.0).double()
    samples[:, 2:4] = samples[:, 2:4] * signs
    return samples.float()
