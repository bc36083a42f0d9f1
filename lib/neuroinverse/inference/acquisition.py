"""Acquisition for emulator networks: where to simulate next.

J.-M. Lueckmann, G. Bassetto, T. Karaletsos, J. H. Macke, *Likelihood-free inference with
emulator networks*, AABI 2018, PMLR 96:32–53 (2019), arXiv:1805.09294.

The two acquisition families named in the paper's abstract, uncertainty about the posterior
(:func:`log_alpha_post`) and information gain about the emulator parameters
(:func:`alpha_info_moment_matched`, :func:`alpha_info_mc`, BALD-style), candidate generation
(:func:`generate_candidates`) and greedy batch selection with an exclusion radius
(:func:`select_batch`). The exact formulas are the book's reconstruction (see
:mod:`neuroinverse.inference.emulators`).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .._checks import as_tensor, check_positive, check_positive_int, check_range, check_rows
from .abc import sample_prior_checked

__all__ = [
    "log_alpha_post",
    "alpha_info_moment_matched",
    "alpha_info_mc",
    "generate_candidates",
    "select_batch",
]


# ---------------------------------------------------------------------------------------------
# acquisition functions (book's reconstruction of the two families named in the paper's abstract)
# ---------------------------------------------------------------------------------------------
def log_alpha_post(member_log_lik, log_prior) -> torch.Tensor:
    """Log of the posterior-uncertainty acquisition α_post(θ) = Var_m[p(θ) q_m(x_o | θ)].

    The ensemble variance (population variance, 1/M) of the unnormalised posterior density
    at θ: large where the posterior is plausible *and* the members disagree. (Book's
    reconstruction of the paper's "uncertainty about the posterior" acquisition; the
    prototype code mixed β·E + (1 − β)·Var.) Computed in log space, stably:
    log Var = 2c + log(mean(e^{2(l−c)}) − mean(e^{l−c})²) with c = max_m l_m.

    Args:
        member_log_lik: ``(M, n)`` values ``log q_m(x_o | θ_i)``.
        log_prior: ``(n,)`` values ``log p(θ_i)`` (−inf outside the support).

    Returns:
        ``(n,)`` float64 ``log α_post`` (−inf where the members agree exactly or the prior is 0).
    """
    ll = (
        member_log_lik
        if isinstance(member_log_lik, torch.Tensor)
        else as_tensor(member_log_lik, "member_log_lik")
    )
    lp = log_prior if isinstance(log_prior, torch.Tensor) else as_tensor(log_prior, "log_prior")
    ll, lp = ll.detach().double().cpu(), lp.detach().double().cpu().reshape(-1)
    if ll.ndim != 2 or ll.shape[1] != lp.shape[0]:
        raise ValueError(
            f"member_log_lik must have shape (M, n) with n = {lp.shape[0]}; got {tuple(ll.shape)}"
        )
    if torch.isnan(ll).any() or torch.isnan(lp).any():
        raise ValueError("member_log_lik and log_prior must not contain NaN")
    lpost = ll + lp[None]
    c = lpost.max(0).values
    safe_c = torch.where(torch.isfinite(c), c, torch.zeros_like(c))
    w = torch.exp(lpost - safe_c)
    var = (w**2).mean(0) - w.mean(0) ** 2
    var = torch.clamp(var, min=0.0)
    out = 2 * safe_c + torch.log(var)
    return torch.where(torch.isfinite(c), out, torch.full_like(out, -math.inf))


def alpha_info_moment_matched(means, covs) -> torch.Tensor:
    """Information gain α_info(θ) = H[q̄(x|θ)] − (1/M) Σ_m H[q_m(x|θ)], moment-matched.

    BALD-style mutual information between the next simulation x and the emulator weights
    (Houlsby et al. 2011), with every entropy replaced by that of a Gaussian with the same
    covariance: ½ log det Σ̄ − (1/M) Σ_m ½ log det Σ_m, where Σ̄ = (1/M) Σ_m (Σ_m + μ_m μ_mᵀ)
    − μ̄ μ̄ᵀ is the covariance of the equal-weight mixture. Exact for the first entropy's
    upper bound and for Gaussian members. It ignores x_o and the prior, so it explores
    globally. (Book's reconstruction of the paper's "uncertainty about the emulator
    parameters" acquisition; the exact formula could not be checked against the paper.)

    Args:
        means: ``(M, n, d_x)`` member means μ_m(θ_i).
        covs: ``(M, n, d_x, d_x)`` member covariances Σ_m(θ_i).

    Returns:
        ``(n,)`` float64, in nats (≥ 0 up to Monte Carlo error of the moments).
    """
    mu = (means if isinstance(means, torch.Tensor) else as_tensor(means, "means")).double().cpu()
    S = (covs if isinstance(covs, torch.Tensor) else as_tensor(covs, "covs")).double().cpu()
    if mu.ndim != 3 or S.shape != mu.shape + (mu.shape[-1],):
        raise ValueError(
            "means must be (M, n, d) and covs (M, n, d, d); "
            f"got {tuple(mu.shape)} and {tuple(S.shape)}"
        )
    if mu.shape[0] < 2:
        raise ValueError("alpha_info needs at least 2 members")
    mbar = mu.mean(0)
    second = (S + mu[..., :, None] * mu[..., None, :]).mean(0)
    Sbar = second - mbar[..., :, None] * mbar[..., None, :]
    return 0.5 * torch.logdet(Sbar) - 0.5 * torch.logdet(S).mean(0)


def alpha_info_mc(cross_log_probs) -> torch.Tensor:
    """Information gain α_info(θ) by Monte Carlo with the members' exact densities.

    With draws x_{m,s} ~ q_m(·|θ): α_info ≈ (1/(M S)) Σ_{m,s} [log q_m(x_{m,s}) − log q̄(x_{m,s})],
    the generalised Jensen–Shannon divergence of the members (= H[q̄] − mean_m H[q_m]).
    (Book's reconstruction, as :func:`alpha_info_moment_matched`.)

    Args:
        cross_log_probs: ``(M_k, M_m, n, S)`` values ``log q_k(x_{m,i,s} | θ_i)``.

    Returns:
        ``(n,)`` float64 in nats.
    """
    lq = (
        cross_log_probs
        if isinstance(cross_log_probs, torch.Tensor)
        else as_tensor(cross_log_probs, "cross_log_probs")
    )
    lq = lq.double().cpu()
    if lq.ndim != 4 or lq.shape[0] != lq.shape[1] or lq.shape[0] < 2:
        raise ValueError(
            f"cross_log_probs must have shape (M, M, n, S) with M >= 2; got {tuple(lq.shape)}"
        )
    M = lq.shape[0]
    own = torch.diagonal(lq, dim1=0, dim2=1).permute(2, 0, 1)  # (M, n, S): log q_m(x_m)
    mix = torch.logsumexp(lq, 0) - math.log(M)  # (M_m, n, S): log q̄(x_m)
    return (own - mix).mean((0, 2))


# ---------------------------------------------------------------------------------------------
# candidates and batch selection
# ---------------------------------------------------------------------------------------------
def generate_candidates(
    prior,
    n: int,
    *,
    prior_fraction: float = 0.5,
    posterior_sampler: Callable[[int, torch.Generator | None], torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Candidate parameters ``(n, d)``: ``prior_fraction`` from the prior, the rest from the
    posterior.

    Args:
        prior: object with ``dim``, ``sample(n, generator=)`` and ``contains``.
        n: number of candidates.
        prior_fraction: share drawn from the prior (exploration), in [0, 1]; must be 1 when
            no ``posterior_sampler`` is given.
        posterior_sampler: ``f(k, generator) -> (k, d)`` draws from the current emulated
            posterior. Draws outside the prior's support are replaced by prior draws.
        generator: randomness.

    The candidate set and the share of prior draws are the book's choice (2000 candidates,
    half from the prior, at the ``ci`` profile of the emulators chapter).
    """
    n = check_positive_int(n, "n")
    prior_fraction = check_range(prior_fraction, "prior_fraction", 0.0, 1.0)
    n_post = n - int(round(prior_fraction * n))
    if n_post and posterior_sampler is None:
        raise ValueError("posterior_sampler is required when prior_fraction < 1")
    parts = [sample_prior_checked(prior, n - n_post, generator=generator)] if n - n_post else []
    if n_post:
        post = check_rows(
            posterior_sampler(n_post, generator), "posterior_sampler output", prior.dim
        ).cpu()
        if post.shape[0] != n_post:
            raise ValueError(f"posterior_sampler must return {n_post} rows; got {post.shape[0]}")
        bad = ~prior.contains(post)
        if bad.any():
            post = post.clone()
            post[bad] = sample_prior_checked(prior, int(bad.sum()), generator=generator)
        parts.append(post.float())
    return torch.cat(parts)


def select_batch(
    candidates, scores, batch_size: int, *, exclusion_radius: float = 0.0, scale=None
) -> torch.Tensor:
    """Greedy batch selection: take the best-scoring candidate, exclude its neighbours, repeat.

    A candidate is excluded once it lies within ``exclusion_radius`` (Euclidean distance
    after dividing each coordinate by ``scale``) of an already chosen one, so that a batch
    does not pile up on one maximum of the acquisition function. (Book's reconstruction of
    the paper's batch acquisition.)

    Args:
        candidates: ``(n, d)``.
        scores: ``(n,)``; larger is better; −inf allowed, NaN not.
        batch_size: B, the number of distinct points to return.
        exclusion_radius: ≥ 0, in units of ``scale``.
        scale: ``(d,)`` per-coordinate scale (default 1), e.g. the prior's standard deviation.

    Returns:
        ``(B,)`` long indices into ``candidates``, in the order chosen.

    Raises:
        ValueError: if fewer than B candidates survive the exclusions.
    """
    cand = check_rows(candidates, "candidates").double().cpu()
    sc = (
        (scores if isinstance(scores, torch.Tensor) else as_tensor(scores, "scores"))
        .double()
        .cpu()
        .reshape(-1)
    )
    if sc.shape[0] != cand.shape[0]:
        raise ValueError(
            f"scores must have one entry per candidate ({cand.shape[0]}); got {sc.shape[0]}"
        )
    if torch.isnan(sc).any():
        raise ValueError("scores contains NaN")
    batch_size = check_positive_int(batch_size, "batch_size")
    radius = check_positive(exclusion_radius, "exclusion_radius", allow_zero=True)
    if scale is not None:
        s = as_tensor(scale, "scale", dtype=torch.float64).reshape(-1)
        if s.shape[0] != cand.shape[1] or not bool((s > 0).all()):
            raise ValueError(f"scale must hold {cand.shape[1]} positive numbers; got {s.tolist()}")
        cand = cand / s
    order = torch.argsort(-sc, stable=True)
    free = torch.ones(cand.shape[0], dtype=torch.bool)
    chosen: list[int] = []
    for i in order.tolist():
        if not free[i]:
            continue
        chosen.append(i)
        if len(chosen) == batch_size:
            return torch.tensor(chosen, dtype=torch.long)
        free &= ((cand - cand[i]) ** 2).sum(1) > radius**2
        free[i] = False
    raise ValueError(
        f"only {len(chosen)} of {cand.shape[0]} candidates lie farther than exclusion_radius="
        f"{radius} from each other; batch_size={batch_size} needs more candidates or a "
        "smaller radius"
    )
