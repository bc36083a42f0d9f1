"""Likelihood-free inference with ensembles of emulator networks and active acquisition.

J.-M. Lueckmann, G. Bassetto, T. Karaletsos, J. H. Macke, *Likelihood-free inference with
emulator networks*, AABI 2018, PMLR 96:32–53 (2019), arXiv:1805.09294.

A probabilistic **emulator** q_φ(x | θ) of the simulator is trained on the simulations run
so far; its value at the observation, q_φ(x_o | θ), is a *synthetic likelihood*, and the
posterior is p(θ | x_o) ∝ p(θ) q(x_o | θ). Uncertainty about the emulator's weights φ
decides where to simulate next (an **acquisition function**), so that few simulations are
needed and no ABC distance or rejection threshold is.

What this module implements (the paper's contribution, in the book's own code):

* :class:`EmulatorEnsemble`: M conditional density networks (``ConditionalDensity``
  members, e.g. :class:`~neuroinverse.models.density.ConditionalFlow` with value = x and
  context = θ) with independent initialisations, independent data shuffles, optional
  bootstrap resampling and independent 10 % hold-out sets, trained by maximum likelihood on
  all simulations so far, warm-started between rounds, with early stopping; a cap on the
  standardised log density guards against peaked (overfitted) likelihoods. Its
  ensemble-mean synthetic likelihood is q̄(x_o | θ) = (1/M) Σ_m q_m(x_o | θ).
* Elsewhere, by role: the acquisition rules (:mod:`neuroinverse.inference.acquisition`), the
  active-learning loop and emulator posteriors (:mod:`neuroinverse.inference.active_learning`),
  the grid and slice samplers (:mod:`neuroinverse.samplers`) and the fused all-members pass
  that speeds training up (:mod:`neuroinverse.inference.fused_flows`).

The paper's text was not available to the book's authors, only its abstract. The ensemble
(instead of the prototype's Bayesian network with factorised Gaussian weights), the exact
acquisition formulas, candidate generation and batch selection are **the book's
reconstruction** (marked as such below), following the prototype code's ideas and
standard practice (deep ensembles; BALD).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from .._checks import check_positive_int, check_range, check_rows, check_vector
from ..models.density import ConditionalDensity, ConditionalFlow
from ..training import Clipping
from ..training import fit as fit_loop
from .acquisition import alpha_info_mc, alpha_info_moment_matched, log_alpha_post
from .fused_flows import ForeachAdam, FusedFlows

__all__ = ["EmulatorEnsemble", "FitLog", "make_flow_ensemble"]


# ---------------------------------------------------------------------------------------------
# the ensemble
# ---------------------------------------------------------------------------------------------
@dataclass
class FitLog:
    """What one :meth:`EmulatorEnsemble.fit` call did.

    Attributes:
        steps: gradient steps taken (every member steps together).
        best_val_nll: per member, the best hold-out negative log likelihood (nats per
            simulation, original units of x); ``nan`` without a hold-out set.
        best_step: per member, the step at which that best value was reached (the weights
            kept).
        stopped_early: ``True`` if every member ran out of patience before ``max_steps``.
    """

    steps: int
    best_val_nll: list[float]
    best_step: list[int]
    stopped_early: bool


class EmulatorEnsemble(nn.Module):
    """An ensemble of M probabilistic emulators q_m(x | θ) (deep ensemble; Lueckmann et al. 2018).

    Each member is a :class:`~neuroinverse.models.density.ConditionalDensity` with
    ``value_dim = d_x`` (the data) and ``context_dim = d_θ`` (the parameters). The members
    share the data but differ in initialisation, minibatch order, hold-out split and
    (optionally) a bootstrap resample of the training set, so that their disagreement
    measures the emulator's own uncertainty.

    Args:
        members: the M >= 1 density networks (M >= 2 for the acquisition functions).
        log_density_cap: upper bound on each member's *standardised* log density (log q in
            z-scored x units), applied in training and in evaluation: the peaked-likelihood
            safeguard. The default ``d_x · (5 − ½ log 2π)`` is the peak log density of a
            diagonal Gaussian with log σ² = −10 per z-scored dimension, i.e. the book's
            "clamp log σ² ≥ −10" for Gaussian heads carried over to any density. ``None``
            disables it.
        fused: compute all members in one batched pass when they are affine-MAF
            :class:`~neuroinverse.models.density.ConditionalFlow` members of one
            architecture (the same densities up to floating-point rounding, several times
            faster on a CPU); ``False`` always loops over the members.

    Example:
        >>> ens = make_flow_ensemble(2, 2, n_members=3, seed=0)
        >>> ens.n_members, ens.theta_dim, ens.x_dim
        (3, 2, 2)
    """

    def __init__(
        self,
        members: Sequence[ConditionalDensity],
        *,
        log_density_cap: float | None | str = "auto",
        fused: bool = True,
    ):
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("members must hold at least one ConditionalDensity")
        for i, m in enumerate(members):
            if not isinstance(m, ConditionalDensity):
                raise ValueError(
                    f"members[{i}] must be a ConditionalDensity; got {type(m).__name__}"
                )
        dims = {(m.value_dim, m.context_dim) for m in members}
        if len(dims) != 1:
            raise ValueError(f"members must share (value_dim, context_dim); got {sorted(dims)}")
        self.members = nn.ModuleList(members)
        self.x_dim, self.theta_dim = dims.pop()
        if log_density_cap == "auto":
            log_density_cap = self.x_dim * (5.0 - 0.5 * math.log(2 * math.pi))
        if log_density_cap is not None and not math.isfinite(float(log_density_cap)):
            raise ValueError(
                f"log_density_cap must be a finite number or None; got {log_density_cap!r}"
            )
        self.log_density_cap = None if log_density_cap is None else float(log_density_cap)
        self.fused = bool(fused)

    def _fused(self) -> FusedFlows | None:
        """The members as one batched computation, or ``None`` (disabled, or members not
        fusable)."""
        return FusedFlows.build(self.members) if self.fused else None

    @property
    def n_members(self) -> int:
        return len(self.members)

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    # -- densities -----------------------------------------------------------------------
    def _member_log_prob(self, m: int, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """``log q_m(x | θ)`` ``(n,)`` with the standardised-density cap applied."""
        member = self.members[m]
        lp = member.log_prob(x, theta)
        if self.log_density_cap is None:
            return lp
        shift = member.log_abs_det_value_scale()
        return torch.clamp(lp + shift, max=self.log_density_cap) - shift

    def member_log_likelihoods(self, theta, x_o) -> torch.Tensor:
        """``log q_m(x_o | θ)`` for every member, shape ``(M, n)``, on the ensemble's device.

        Args:
            theta: ``(n, d_θ)`` parameters.
            x_o: the observation, ``(d_x,)``.
        """
        theta = check_rows(theta, "theta", self.theta_dim).to(self.device, torch.float32)
        x = check_vector(x_o, "x_o", self.x_dim).to(self.device)[None]
        fused = self._fused()
        if fused is not None:  # one batched pass for all members
            return fused.log_prob(fused.stacked(), x, theta, self.log_density_cap)
        x = x.expand(theta.shape[0], -1)
        return torch.stack([self._member_log_prob(m, x, theta) for m in range(self.n_members)])

    def log_likelihood(self, theta, x_o) -> torch.Tensor:
        """The ensemble-mean synthetic log likelihood ``log (1/M) Σ_m q_m(x_o | θ)``, shape
        ``(n,)``."""
        ll = self.member_log_likelihoods(theta, x_o)
        return torch.logsumexp(ll, 0) - math.log(self.n_members)

    def log_likelihood_std(self, theta, x_o) -> torch.Tensor:
        """Ensemble standard deviation of ``log q_m(x_o | θ)`` over members, shape ``(n,)``.

        The uncertainty diagnostic of claim E4: where it is large, the members disagree and
        the synthetic likelihood should not be trusted.
        """
        if self.n_members < 2:
            raise ValueError("log_likelihood_std needs an ensemble of at least 2 members")
        return self.member_log_likelihoods(theta, x_o).std(0)

    def log_posterior(self, theta, x_o, prior) -> torch.Tensor:
        """Unnormalised log posterior ``log p(θ) + log q̄(x_o | θ)``, shape ``(n,)`` (−inf outside
        the prior)."""
        theta = check_rows(theta, "theta", self.theta_dim)
        lp = prior.log_prob(theta.cpu()).to(self.device)
        ll = self.log_likelihood(theta, x_o)
        return torch.where(torch.isfinite(lp), lp + ll, torch.full_like(ll, -math.inf))

    def sample_x(
        self, theta, n_samples: int, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``n_samples`` data sets per θ from every member: ``(M, n, n_samples, d_x)``.

        One batched pass per member: every row of ``theta`` is repeated ``n_samples`` times
        and gets one draw. (This uses the members' ``_sample`` with one context per row, which
        :class:`~neuroinverse.models.density.ConditionalFlow` supports; the public
        ``ConditionalDensity.sample`` takes a single context.)
        """
        n_samples = check_positive_int(n_samples, "n_samples")
        theta = check_rows(theta, "theta", self.theta_dim).to(self.device, torch.float32)
        n = theta.shape[0]
        ctx = theta.repeat_interleave(n_samples, 0)
        out = []
        for member in self.members:
            z = member._sample(ctx.shape[0], member.standardize_context(ctx), generator)
            out.append(
                (z * member.value_scale + member.value_shift).reshape(n, n_samples, self.x_dim)
            )
        return torch.stack(out)

    def predictive_moments(
        self, theta, n_samples: int, *, generator: torch.Generator | None = None
    ):
        """Monte Carlo mean ``(M, n, d_x)`` and covariance ``(M, n, d_x, d_x)`` of every member's
        q_m(x | θ)."""
        xs = self.sample_x(theta, n_samples, generator=generator).double()
        mean = xs.mean(2)
        d = xs - mean[:, :, None]
        cov = torch.einsum("mnsi,mnsj->mnij", d, d) / max(n_samples - 1, 1)
        return mean, cov

    # -- acquisition -----------------------------------------------------------------------
    def acquisition(
        self,
        kind: str,
        theta,
        x_o,
        prior,
        *,
        n_samples: int = 16,
        estimator: str = "moment",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Score candidate parameters, shape ``(n,)`` float64 (higher = simulate there first).

        Args:
            kind: ``"post"`` (log α_post, :func:`log_alpha_post`) or ``"info"`` (α_info,
                :func:`alpha_info_moment_matched` / :func:`alpha_info_mc`).
            theta: ``(n, d_θ)`` candidates.
            x_o: ``(d_x,)`` observation (used by ``"post"`` only).
            prior: object with ``log_prob`` (used by ``"post"`` only).
            n_samples: Monte Carlo draws of x per member and candidate (``"info"``).
            estimator: ``"moment"`` (moment-matched Gaussians, the book's choice) or ``"mc"``
                (Monte Carlo with the members' exact densities).
            generator: randomness of the Monte Carlo draws.
        """
        theta = check_rows(theta, "theta", self.theta_dim)
        if self.n_members < 2:
            raise ValueError("acquisition functions need an ensemble of at least 2 members")
        with torch.no_grad():
            if kind == "post":
                return log_alpha_post(
                    self.member_log_likelihoods(theta, x_o), prior.log_prob(theta.cpu())
                )
            if kind == "info":
                if estimator == "moment":
                    return alpha_info_moment_matched(
                        *self.predictive_moments(theta, n_samples, generator=generator)
                    )
                if estimator == "mc":
                    return alpha_info_mc(self._cross_log_probs(theta, n_samples, generator))
                raise ValueError(f"estimator must be 'moment' or 'mc'; got {estimator!r}")
        raise ValueError(f"kind must be 'post' or 'info'; got {kind!r}")

    def _cross_log_probs(self, theta: torch.Tensor, n_samples: int, generator) -> torch.Tensor:
        """``log q_k(x_{m,i,s} | θ_i)`` for x_{m,i,s} ~ q_m(·|θ_i): shape ``(M_k, M_m, n, S)``."""
        xs = self.sample_x(theta, n_samples, generator=generator)  # (M, n, S, d)
        M, n, S, d = xs.shape
        ctx = theta.to(self.device, torch.float32).repeat_interleave(S, 0).repeat(M, 1)
        flat = xs.reshape(M * n * S, d)
        out = torch.stack([self._member_log_prob(k, flat, ctx) for k in range(M)])
        return out.reshape(M, M, n, S).double()

    # -- training --------------------------------------------------------------------------
    def fit(
        self,
        theta,
        x,
        *,
        max_steps: int = 300,
        batch_size: int = 64,
        lr: float = 1e-3,
        val_fraction: float = 0.1,
        patience: int = 50,
        eval_every: int = 10,
        bootstrap: bool = False,
        clip_norm: float | None = 5.0,
        seed: int = 0,
    ) -> FitLog:
        """Train every member by maximum likelihood on all simulations ``(θ, x)`` so far.

        Warm start: the members continue from their current weights (a fresh Adam optimiser
        per call). On the first call the members' z-scoring is set from these data (the
        first round's prior draws) and never changed afterwards. Each member holds out its own
        random ``val_fraction`` of the rows (at least one), draws its own minibatches
        (without replacement within a step) from the rest, or from a bootstrap resample of
        the rest when ``bootstrap``; all members step together (the summed loss gives each
        its own gradient). Every ``eval_every`` steps each member's hold-out NLL is measured;
        a member's best weights are kept, and training stops when no member has improved
        for ``patience`` steps, or after ``max_steps``.

        Args:
            theta: ``(n, d_θ)`` parameters of the simulations, ``n >= 2``.
            x: ``(n, d_x)`` simulated data (finite).
            max_steps: most gradient steps this call.
            batch_size: minibatch size per member.
            lr: Adam learning rate.
            val_fraction: hold-out fraction in [0, 0.5]; 0 disables early stopping.
            patience: steps without hold-out improvement before stopping.
            eval_every: steps between hold-out evaluations.
            bootstrap: resample each member's training rows with replacement.
            clip_norm: gradient-norm clip (``None``: off).
            seed: seeds the splits and the minibatch order.

        Returns:
            :class:`FitLog`.
        """
        theta = check_rows(theta, "theta", self.theta_dim)
        x = check_rows(x, "x", self.x_dim)
        if theta.shape[0] != x.shape[0]:
            raise ValueError(
                "theta and x must have the same number of rows; "
                f"got {theta.shape[0]} and {x.shape[0]}"
            )
        if not torch.isfinite(x).all():
            raise ValueError("x contains infinite values")
        n = theta.shape[0]
        if n < 2:
            raise ValueError(f"theta must hold at least 2 simulations to train on; got {n}")
        max_steps = check_positive_int(max_steps, "max_steps")
        batch_size = check_positive_int(batch_size, "batch_size")
        patience = check_positive_int(patience, "patience")
        eval_every = check_positive_int(eval_every, "eval_every")
        val_fraction = check_range(val_fraction, "val_fraction", 0.0, 0.5)
        if clip_norm is not None and not (clip_norm > 0):
            raise ValueError(f"clip_norm must be positive or None; got {clip_norm!r}")
        dev = self.device
        theta, x = theta.to(dev, torch.float32), x.to(dev, torch.float32)
        for member in self.members:
            if not bool(member.standardized):
                member.set_standardization(x, theta)

        M = self.n_members
        g = torch.Generator().manual_seed(int(seed))
        n_val = max(1, int(round(val_fraction * n))) if val_fraction > 0 else 0
        train_rows, val_rows = [], []
        for _ in range(M):
            perm = torch.randperm(n, generator=g)
            tr = perm[n_val:]
            if bootstrap:
                tr = tr[torch.randint(0, len(tr), (len(tr),), generator=g)]
            train_rows.append(tr)
            val_rows.append(perm[:n_val])
        train_idx = torch.stack(train_rows).to(dev)  # (M, n_train)
        val_idx = torch.stack(val_rows).to(dev)  # (M, n_val)
        n_train = train_idx.shape[1]
        B = min(batch_size, n_train)

        def pick_rows(gen: torch.Generator) -> torch.Tensor:
            pick = (
                torch.rand(M, n_train, generator=gen, device=gen.device).argsort(1)[:, :B].to(dev)
            )
            return train_idx.gather(1, pick)  # (M, B): each member's minibatch

        fused = self._fused()
        if fused is not None:
            # All members in one batched pass: the stacked weights are trained and written back
            # into the members at the end. Same minibatches, same per-element Adam updates and
            # the same global gradient-norm clip (its norm taken member by member, in the
            # members' parameter order) as the pass over members below, which this reproduces
            # bit for bit on the CPU while taking a fraction of its time.
            trained: nn.Module = nn.ParameterList(
                [nn.Parameter(p.detach().clone()) for p in fused.stacked()]
            )
            stacked = list(trained.parameters())
            cap = self.log_density_cap
            opt = ForeachAdam(stacked, lr=float(lr))
            clipping = Clipping(clip_norm, stacked=M) if clip_norm is not None else None
            xz, thz = fused.standardize(x, theta)  # z-scored once: (M, n, d), rows picked per step
            member = torch.arange(M, device=dev)[:, None]

            def loss_fn(step: int, gen: torch.Generator) -> torch.Tensor:
                idx = pick_rows(gen)
                return (
                    -fused.log_prob_z(stacked, xz[member, idx], thz[member, idx], cap).mean(1).sum()
                )

            def val_nll() -> list[float]:
                with torch.no_grad():
                    lp = fused.log_prob_z(stacked, xz[member, val_idx], thz[member, val_idx], cap)
                    return [float(-row.mean()) for row in lp]

            best_state: list = [p.detach().clone() for p in stacked]

            def keep(m: int) -> None:
                with torch.no_grad():
                    for b, p in zip(best_state, stacked, strict=True):
                        b[m] = p[m]

            def finish(use_best: bool) -> None:
                fused.write_back(best_state if use_best else stacked)
        else:
            trained = self
            opt = torch.optim.Adam(self.parameters(), lr=float(lr), foreach=True)
            clipping = Clipping(clip_norm) if clip_norm is not None else None

            def loss_fn(step: int, gen: torch.Generator) -> torch.Tensor:
                idx = pick_rows(gen)
                return -sum(
                    self._member_log_prob(m, x[idx[m]], theta[idx[m]]).mean() for m in range(M)
                )

            def val_nll() -> list[float]:
                with torch.no_grad():
                    return [
                        float(-self._member_log_prob(m, x[val_idx[m]], theta[val_idx[m]]).mean())
                        for m in range(M)
                    ]

            best_state = [copy.deepcopy(mb.state_dict()) for mb in self.members]

            def keep(m: int) -> None:
                best_state[m] = copy.deepcopy(self.members[m].state_dict())

            def finish(use_best: bool) -> None:
                if use_best:
                    for member, state in zip(self.members, best_state, strict=True):
                        member.load_state_dict(state)

        def run_steps(k: int, chunk_seed: int) -> None:
            # The gradient steps go through the book's one loop; what stays here is the
            # per-member model selection between chunks, which one shared early stop cannot do.
            fit_loop(
                loss_fn,
                module=trained,
                optimizers=opt,
                n_steps=k,
                clipping=clipping,
                seed=chunk_seed,
                progress=False,
            )

        best = [math.inf] * M
        best_step = [0] * M
        since = [0] * M
        done, chunk = 0, 0
        stopped = False
        while done < max_steps:
            k = min(eval_every, max_steps - done)
            run_steps(k, int(seed) * 100_003 + chunk)
            done += k
            chunk += 1
            if n_val == 0:
                continue
            for m, v in enumerate(val_nll()):
                if v < best[m]:
                    best[m], best_step[m], since[m] = v, done, 0
                    keep(m)
                else:
                    since[m] += k
            if min(since) >= patience:
                stopped = done < max_steps
                break
        finish(bool(n_val))
        if not n_val:
            best, best_step = [math.nan] * M, [done] * M
        return FitLog(steps=done, best_val_nll=best, best_step=best_step, stopped_early=stopped)


def make_flow_ensemble(
    theta_dim: int,
    x_dim: int,
    *,
    n_members: int = 5,
    kind: str = "maf",
    transforms: int = 2,
    hidden: Sequence[int] = (32, 32),
    activation: type[nn.Module] = nn.ReLU,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log_density_cap: float | None | str = "auto",
) -> EmulatorEnsemble:
    """An ensemble of M conditional flows q_m(x | θ) with independent initialisations.

    Member ``m`` is initialised under ``torch.manual_seed(seed · 1000 + m)`` inside a forked
    random state (the global generator is left untouched). A Gaussian head could not
    represent the two-moons likelihood (x lies on a ring around a θ-dependent centre), hence
    flow members (the book's alternative to a mixture-density network).

    Args:
        theta_dim: ``d_θ`` (the context of every member).
        x_dim: ``d_x`` (the modelled value).
        n_members: M.
        kind, transforms, hidden, activation: passed to
            :class:`~neuroinverse.models.density.ConditionalFlow`.
        seed: base seed of the initialisations.
        device: where the members live.
        log_density_cap: see :class:`EmulatorEnsemble`.
    """
    n_members = check_positive_int(n_members, "n_members")
    members = []
    for m in range(n_members):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed) * 1000 + m)
            members.append(
                ConditionalFlow(
                    x_dim,
                    theta_dim,
                    kind=kind,
                    transforms=transforms,
                    hidden=hidden,
                    activation=activation,
                )
            )
    return EmulatorEnsemble(members, log_density_cap=log_density_cap).to(device)
