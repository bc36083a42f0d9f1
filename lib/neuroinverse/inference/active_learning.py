"""Active learning with emulator networks: the loop, and posterior samples from the ensemble.

J.-M. Lueckmann, G. Bassetto, T. Karaletsos, J. H. Macke, *Likelihood-free inference with
emulator networks*, AABI 2018, PMLR 96:32–53 (2019), arXiv:1805.09294.

Each round trains the ensemble (:class:`~neuroinverse.inference.emulators.EmulatorEnsemble`)
on every simulation so far, scores candidates with an acquisition rule
(:mod:`neuroinverse.inference.acquisition`; random/prior acquisition is the baseline) and
simulates the chosen batch; posteriors come from :mod:`neuroinverse.samplers`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from .._checks import check_choice, check_positive_int, check_range, check_rows, check_vector
from ..samplers import grid_posterior, sample_grid, slice_sample
from .abc import sample_prior_checked, simulate_checked
from .acquisition import (
    generate_candidates,
    select_batch,
)
from .emulators import EmulatorEnsemble, FitLog

__all__ = [
    "ACQUISITIONS",
    "posterior_samples",
    "ActiveLearningResult",
    "run_active_learning",
]


#: Acquisition rules of :func:`run_active_learning`: posterior variance, information gain,
#: and the baseline that simulates prior draws.
ACQUISITIONS: tuple[str, ...] = ("post", "info", "prior")


# ---------------------------------------------------------------------------------------------
# posterior samples from the ensemble
# ---------------------------------------------------------------------------------------------
def posterior_samples(
    ensemble: EmulatorEnsemble,
    prior,
    x_o,
    n: int,
    *,
    method: str = "grid",
    grid_points: int = 200,
    init=None,
    mcmc: dict[str, Any] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` samples ``(n, d)`` from the emulated posterior p(θ) q̄(x_o | θ).

    Args:
        ensemble: the trained emulators.
        prior: a box prior (``low``, ``high``, ``log_prob``) for ``method="grid"``; any prior
            with ``log_prob`` for ``"mcmc"``.
        x_o: observation ``(d_x,)``.
        n: number of samples.
        method: ``"grid"`` (d ≤ 2: exact normalisation on ``grid_points`` cells per axis, no
            MCMC noise) or ``"mcmc"`` (:func:`slice_sample`).
        init: ``(C, d)`` chain starting points for ``"mcmc"`` (e.g. the best training θ).
        mcmc: keyword arguments of :func:`slice_sample` (``n_warmup``, ``thin``, ``width``).
        generator: randomness.
    """
    n = check_positive_int(n, "n")
    check_vector(x_o, "x_o", ensemble.x_dim)
    check_choice(method, "method", ("grid", "mcmc"))

    def logp(t: torch.Tensor) -> torch.Tensor:
        return ensemble.log_posterior(t, x_o, prior)

    if method == "grid":
        axes, dens = grid_posterior(logp, prior.low, prior.high, points=grid_points)
        return sample_grid(axes, dens, n, generator=generator)
    # method == "mcmc"
    if init is None:
        raise ValueError("init (chain starting points) is required for method='mcmc'")
    init = check_rows(init, "init", ensemble.theta_dim)
    per_chain = math.ceil(n / init.shape[0])
    chains = slice_sample(logp, init, per_chain, generator=generator, **(mcmc or {}))
    flat = chains.permute(1, 0, 2).reshape(-1, ensemble.theta_dim)  # interleave chains
    return flat[:n]


# ---------------------------------------------------------------------------------------------
# the active-learning loop
# ---------------------------------------------------------------------------------------------
@dataclass
class ActiveLearningResult:
    """Everything one :func:`run_active_learning` call produced.

    Attributes:
        ensemble: the trained emulators (after the last round).
        theta: ``(N, d_θ)`` every simulated parameter, in simulation order.
        x: ``(N, d_x)`` the simulated data.
        round: ``(N,)`` the round each simulation was acquired in (0 = initial prior design).
        fits: one :class:`FitLog` per round.
        snapshots: per round, the value returned by the ``callback`` (if any).
        candidates: per acquisition round (1, 2, …), the ``(n_candidates, d_θ)`` candidate set
            the batch was chosen from (empty ``(0, d_θ)`` for ``acquisition="prior"``), e.g.
            for a control that picks the same number of points at random from the same set.
    """

    ensemble: EmulatorEnsemble
    theta: torch.Tensor
    x: torch.Tensor
    round: torch.Tensor
    fits: list[FitLog] = field(default_factory=list)
    snapshots: list[Any] = field(default_factory=list)
    candidates: list[torch.Tensor] = field(default_factory=list)

    def acquired(self, r: int | None = None) -> torch.Tensor:
        """Parameters acquired in round ``r`` (all rounds ≥ 1 when ``None``)."""
        mask = self.round >= 1 if r is None else self.round == r
        return self.theta[mask]


def run_active_learning(
    prior,
    simulator: Callable,
    x_o,
    *,
    ensemble: EmulatorEnsemble | None = None,
    acquisition: str = "post",
    n_initial: int = 20,
    n_rounds: int = 6,
    batch_size: int = 30,
    n_candidates: int = 2000,
    prior_fraction: float = 0.5,
    explore_fraction: float = 0.0,
    exclusion_radius: float = 0.05,
    info_samples: int = 16,
    info_estimator: str = "moment",
    train: dict[str, Any] | None = None,
    initial_train: dict[str, Any] | None = None,
    posterior_method: str = "grid",
    grid_points: int = 200,
    mcmc: dict[str, Any] | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[int, ActiveLearningResult], Any] | None = None,
    start: ActiveLearningResult | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> ActiveLearningResult:
    """Emulator-based inference with active acquisition (Lueckmann et al. 2018, the algorithm).

    Round 0 simulates ``n_initial`` prior draws and trains the ensemble. Each of the
    ``n_rounds`` further rounds

    1. draws ``n_candidates`` candidates (:func:`generate_candidates`: ``prior_fraction``
       from the prior, the rest from the current emulated posterior);
    2. scores them with the acquisition function (``"post"``: log α_post, ``"info"``:
       α_info) and greedily picks ``batch_size`` of them with the exclusion radius
       (:func:`select_batch`, distances in units of the prior's standard deviation), of which
       a share ``explore_fraction`` is replaced by fresh prior draws; with
       ``acquisition="prior"`` (the baseline) all ``batch_size`` are prior draws;
    3. simulates them and retrains the ensemble on all simulations so far (warm start).

    The total budget is ``n_initial + n_rounds · batch_size`` simulations.

    Args:
        prior: ``dim``, ``sample(n, generator=)``, ``log_prob``, ``contains``, ``std`` (and
            ``low``/``high`` for the grid posterior).
        simulator: ``simulator(theta (n, d_θ), generator=) -> x (n, d_x)``.
        x_o: observation ``(d_x,)``.
        ensemble: an untrained (or warm) :class:`EmulatorEnsemble` (not needed with ``start``).
        acquisition: one of :data:`ACQUISITIONS`.
        n_initial, n_rounds, batch_size: the budget.
        n_candidates, prior_fraction, explore_fraction, exclusion_radius: acquisition set-up.
        info_samples, info_estimator: Monte Carlo set-up of α_info.
        train: keyword arguments of :meth:`EmulatorEnsemble.fit` (``seed`` is set per round).
        initial_train: overrides of ``train`` for round 0, which trains from scratch (e.g. a
            larger ``max_steps``; later rounds are warm-started and need fewer steps).
        posterior_method, grid_points, mcmc: how candidates are drawn from the emulated
            posterior (:func:`posterior_samples`; MCMC chains start from the training θ with
            the highest emulated posterior density).
        generator: the one source of randomness (prior draws, simulator noise, candidates).
        callback: ``f(round, result_so_far)`` after each round's training; its return values
            are stored in ``result.snapshots``.
        start: continue from this result (e.g. a shared round 0 computed once with
            ``n_rounds=0`` for several acquisition rules) instead of simulating the initial
            design: its data, fits and snapshots are copied, its ensemble is deep-copied (the
            ``start`` object is not modified) and is used instead of ``ensemble``; the rounds
            continue from its last round.
        progress: tqdm bar over rounds.

    Returns:
        :class:`ActiveLearningResult`.
    """
    check_choice(acquisition, "acquisition", ACQUISITIONS)
    if not isinstance(n_initial, (int, np.integer)) or isinstance(n_initial, bool) or n_initial < 2:
        raise ValueError(
            "n_initial must be an integer >= 2 (an empty budget cannot train an emulator); "
            f"got {n_initial!r}"
        )
    n_rounds = check_positive_int(n_rounds, "n_rounds", minimum=0)
    batch_size = check_positive_int(batch_size, "batch_size")
    if n_rounds and acquisition != "prior":
        n_candidates = check_positive_int(n_candidates, "n_candidates")
        if n_candidates < batch_size:
            raise ValueError(f"n_candidates ({n_candidates}) must be >= batch_size ({batch_size})")
    explore_fraction = check_range(explore_fraction, "explore_fraction", 0.0, 1.0)
    if start is not None:
        if not isinstance(start, ActiveLearningResult):
            raise ValueError(f"start must be an ActiveLearningResult; got {type(start).__name__}")
        ensemble = start.ensemble if ensemble is None else ensemble
    if not isinstance(ensemble, EmulatorEnsemble):
        raise ValueError(f"ensemble must be an EmulatorEnsemble; got {type(ensemble).__name__}")
    if prior.dim != ensemble.theta_dim:
        raise ValueError(
            f"prior has dimension {prior.dim} but the ensemble expects "
            f"d_theta = {ensemble.theta_dim}"
        )
    x_o = check_vector(x_o, "x_o", ensemble.x_dim)
    train = dict(train or {})
    base_seed = int(train.pop("seed", 0))

    if start is not None:
        if (start.ensemble.theta_dim, start.ensemble.x_dim) != (ensemble.theta_dim, ensemble.x_dim):
            raise ValueError("start's ensemble and ensemble must have the same dimensions")
        ensemble = copy.deepcopy(start.ensemble)
        res = ActiveLearningResult(
            ensemble=ensemble,
            theta=start.theta.clone(),
            x=start.x.clone(),
            round=start.round.clone(),
            fits=list(start.fits),
            snapshots=list(start.snapshots),
            candidates=list(start.candidates),
        )
        first = int(start.round.max()) + 1
    else:
        theta = sample_prior_checked(prior, int(n_initial), generator=generator)
        x = simulate_checked(simulator, theta, generator=generator, x_dim=ensemble.x_dim).cpu()
        if not torch.isfinite(x).all():
            raise ValueError("simulator returned NaN or infinite data for the initial design")
        res = ActiveLearningResult(
            ensemble=ensemble, theta=theta, x=x, round=torch.zeros(theta.shape[0], dtype=torch.long)
        )
        first = 0
    scale = prior.std.reshape(-1)
    bar = tqdm(
        range(first, first + n_rounds + (first == 0)),
        desc=desc or f"active learning ({acquisition})",
        disable=not progress,
    )
    for r in bar:
        if r > 0:
            new, cand = _acquire(
                res,
                prior,
                x_o,
                acquisition=acquisition,
                batch_size=batch_size,
                n_candidates=n_candidates,
                prior_fraction=prior_fraction,
                explore_fraction=explore_fraction,
                exclusion_radius=exclusion_radius,
                scale=scale,
                info_samples=info_samples,
                info_estimator=info_estimator,
                posterior_method=posterior_method,
                grid_points=grid_points,
                mcmc=mcmc,
                generator=generator,
            )
            res.candidates.append(cand)
            x_new = simulate_checked(
                simulator, new, generator=generator, x_dim=ensemble.x_dim
            ).cpu()
            if not torch.isfinite(x_new).all():
                raise ValueError(f"simulator returned NaN or infinite data in round {r}")
            res.theta = torch.cat([res.theta, new])
            res.x = torch.cat([res.x, x_new])
            res.round = torch.cat([res.round, torch.full((new.shape[0],), r, dtype=torch.long)])
        kw = {**train, **(initial_train or {})} if r == 0 else train
        kw.pop("seed", None)
        log = ensemble.fit(res.theta, res.x, seed=base_seed * 1000 + r, **kw)
        res.fits.append(log)
        bar.set_postfix(
            sims=res.theta.shape[0],
            steps=log.steps,
            val_nll=f"{float(np.nanmean(log.best_val_nll)):.3g}",
        )
        if callback is not None:
            res.snapshots.append(callback(r, res))
    bar.close()
    return res


def _acquire(
    res: ActiveLearningResult,
    prior,
    x_o,
    *,
    acquisition,
    batch_size,
    n_candidates,
    prior_fraction,
    explore_fraction,
    exclusion_radius,
    scale,
    info_samples,
    info_estimator,
    posterior_method,
    grid_points,
    mcmc,
    generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``batch_size`` parameters to simulate next (one round of acquisition), and the
    candidates."""
    if acquisition == "prior":
        return sample_prior_checked(prior, batch_size, generator=generator), torch.zeros(
            0, prior.dim
        )
    ens = res.ensemble
    init = None
    if posterior_method == "mcmc":
        n_chains = int((mcmc or {}).get("n_chains", 20))
        with torch.no_grad():
            lp = ens.log_posterior(res.theta, x_o, prior).cpu()
        init = res.theta[torch.topk(lp, min(n_chains, lp.shape[0])).indices]
    mc = {k: v for k, v in (mcmc or {}).items() if k != "n_chains"}

    def post_sampler(k: int, g: torch.Generator | None) -> torch.Tensor:
        return posterior_samples(
            ens,
            prior,
            x_o,
            k,
            method=posterior_method,
            grid_points=grid_points,
            init=init,
            mcmc=mc,
            generator=g,
        )

    cand = generate_candidates(
        prior,
        n_candidates,
        prior_fraction=prior_fraction,
        posterior_sampler=post_sampler if prior_fraction < 1 else None,
        generator=generator,
    )
    scores = ens.acquisition(
        acquisition,
        cand,
        x_o,
        prior,
        n_samples=info_samples,
        estimator=info_estimator,
        generator=generator,
    )
    n_explore = int(round(explore_fraction * batch_size))
    idx = (
        select_batch(
            cand, scores, batch_size - n_explore, exclusion_radius=exclusion_radius, scale=scale
        )
        if batch_size > n_explore
        else torch.zeros(0, dtype=torch.long)
    )
    parts = [cand[idx]]
    if n_explore:
        parts.append(sample_prior_checked(prior, n_explore, generator=generator))
    return torch.cat(parts), cand
