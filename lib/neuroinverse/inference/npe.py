"""Neural posterior estimation: single-round NPE, sequential APT (SNPE-C), SNPE-B and naive SNPE.

**APT** (Greenberg, Nonnenmacher & Macke, "Automatic Posterior Transformation for
Likelihood-Free Inference", ICML 2019, arXiv:1905.07488). A conditional density
``q_φ(θ | x)`` is meant to be the posterior ``p(θ | x)``. When θ is drawn from a proposal
``p̃(θ)`` instead of the prior, maximum likelihood on (θ, x) would learn the *proposal
posterior* ``p̃(θ | x) ∝ p(x | θ) p̃(θ)``. APT (paper Sec. 3, "Automatic posterior
transformation") trains q *through* the transformation

    q̃_{x,φ}(θ) = q_φ(θ | x) · p̃(θ) / p(θ) / Z(x, φ),

which equals ``p̃(θ | x)`` exactly when ``q_φ(θ | x) = p(θ | x)``. With *atomic proposals*
(paper Sec. 3, "atomic proposals"), p̃ is uniform on a set Θ_i of M atoms: θ_i and M − 1
other θ's of the same minibatch, so that

    −log q̃_i = −log q_φ(θ_i | x_i) + log p(θ_i)
               + log Σ_{θ_j ∈ Θ_i} exp(log q_φ(θ_j | x_i) − log p(θ_j)),

a softmax cross-entropy over the atoms with target θ_i
(:func:`~neuroinverse.inference.npe_methods.apt_atomic_loss`). The loss
is valid for any mixture of proposals, so all rounds' simulations are pooled.

Baselines run by the same loop (:func:`run_npe`, argument ``method``: a small method object of
:mod:`neuroinverse.inference.npe_methods`, or its name), with the same density estimator:

* ``NaiveSNPE`` (``"naive"``): maximum likelihood, without correction, on the simulations
  drawn from the current proposal (from round 2 on, the latest round's simulations; the network
  continues from the previous round). It learns the proposal posterior ``p(x | θ) p̃(θ)``: with
  p̃ = the previous estimate, the estimate narrows every round. (Pooling all rounds instead
  dilutes the bias; for the Gaussian task with equal prior and noise variance a pooled
  estimator's std ratio after 3 rounds is ≈ 0.86 in theory, the latest-round one 1/√2.)
* ``PooledSNPEB`` (``"snpe-b"``): importance-weighted maximum likelihood (Lueckmann et al.,
  NeurIPS 2017), weights ``p(θ) / p̃(θ)`` with p̃ the mixture of all proposals used so far (as
  sbi's NPE_B), self-normalised as in :func:`~neuroinverse.inference.snpe.self_normalized_weights`;
* one round of any method is amortised NPE (maximum likelihood on prior draws).

Shared rules (Greenberg et al. 2019, Sec. 3-4, and sbi's conventions): round 1 is plain maximum
likelihood; z-scoring of θ and x is set from round-1 data only; proposals are the current
``q(· | x_o)`` restricted to the prior's support by rejection, with the acceptance rate
reported and a warning below 10 % (*leakage*: with a bounded prior the atomic loss does not
penalise mass outside the box); training uses early stopping on a 10 % validation split with
a hard step cap.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .._checks import as_tensor, check_positive_int
from ..models.density import ConditionalDensity
from ..training import Clipping, EarlyStopping, fit
from .abc import sample_prior_checked, simulate_checked
from .npe_methods import NPEMethod, RoundData, npe_method

__all__ = [
    "RestrictedPosterior",
    "RoundRecord",
    "NPEResult",
    "run_npe",
]


# ---------------------------------------------------------------------------------------------
# The posterior at x_o, restricted to the prior's support
# ---------------------------------------------------------------------------------------------
class RestrictedPosterior:
    """``q(θ | x_o)`` restricted to the prior's support by rejection sampling.

    Args:
        density: the trained ``q(θ | x)``.
        prior: object with ``contains(theta) -> (n,) bool`` and ``log_prob``.
        x_o: observation ``(d_x,)``.
        warn_below: warn when the acceptance rate falls below this fraction.
        max_draws: give up (``RuntimeError``) after this many draws from q.

    After each :meth:`sample`, ``acceptance_rate`` holds the fraction of q's draws that lay
    inside the support (1 − leakage).
    """

    def __init__(
        self,
        density: ConditionalDensity,
        prior,
        x_o: torch.Tensor,
        *,
        warn_below: float = 0.1,
        max_draws: int = 10_000_000,
    ) -> None:
        self.density, self.prior, self.x_o = density, prior, x_o
        self.warn_below, self.max_draws = float(warn_below), int(max_draws)
        self.acceptance_rate: float | None = None

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``(n, d_θ)`` inside the prior's support (on the density's device)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}")
        out, drawn, kept = [], 0, 0
        chunk = max(n, 256)
        while kept < n:
            if drawn >= self.max_draws:
                raise RuntimeError(
                    f"only {kept} of {drawn} draws of q(θ | x_o) lay inside the prior's "
                    "support; the posterior estimate has leaked out of the prior (acceptance "
                    f"{kept / max(drawn, 1):.2e})"
                )
            s = self.density.sample(chunk, self.x_o, generator=generator)
            if not torch.isfinite(s).all():
                raise FloatingPointError("the density returned non-finite samples")
            ok = self.prior.contains(s).to(s.device)
            drawn += chunk
            kept += int(ok.sum())
            out.append(s[ok])
            if kept < n:  # grow the chunk with the observed acceptance rate
                chunk = min(int(1.2 * (n - kept) * drawn / max(kept, 1)) + 16, 1_000_000)
        self.acceptance_rate = kept / drawn
        if self.acceptance_rate < self.warn_below:
            warnings.warn(
                f"only {100 * self.acceptance_rate:.1f} % of the samples of q(θ | x_o) lie "
                "inside the prior's support (leakage); sampling by rejection is slow",
                RuntimeWarning,
                stacklevel=2,
            )
        return torch.cat(out)[:n]

    @torch.no_grad()
    def log_prob(self, theta) -> torch.Tensor:
        """``log q(θ | x_o)`` (not renormalised for the rejection; −inf outside the support)."""
        theta = theta if isinstance(theta, torch.Tensor) else as_tensor(theta, "theta")
        theta = theta.to(self.density.device)
        lq = self.density.log_prob(theta, self.x_o)
        inside = self.prior.contains(theta).to(lq.device)
        return torch.where(inside, lq, torch.full_like(lq, -math.inf))


# ---------------------------------------------------------------------------------------------
# The multi-round loop
# ---------------------------------------------------------------------------------------------
@dataclass
class RoundRecord:
    """What happened in one round.

    ``proposal_acceptance``: acceptance rate of the proposal used to draw this round's θ
    (1.0 for the prior); ``leakage``: fraction of ``q(· | x_o)`` samples outside the prior's
    support after training this round; ``steps`` gradient steps; ``best_val_loss`` the
    validation loss of the kept parameters; ``stopped_early`` whether patience ran out
    before the step cap.
    """

    round: int
    n_simulations: int
    proposal_acceptance: float
    leakage: float
    steps: int
    best_val_loss: float
    stopped_early: bool


@dataclass
class NPEResult:
    """Output of :func:`run_npe`.

    Attributes:
        density: the trained ``q(θ | x)`` (z-scoring set from round 1).
        posterior: :class:`RestrictedPosterior` at ``x_o``.
        theta, x: all simulations, ``(N, d_θ)`` and ``(N, d_x)`` (CPU).
        round_index: ``(N,)`` round of each simulation (0-based).
        rounds: one :class:`RoundRecord` per round.
        round_samples: samples ``(record_samples, d_θ)`` of the restricted posterior after
            every round (empty if ``record_samples == 0``).
        train_seconds: wall time of training (all rounds, excluding simulation and sampling).
    """

    density: ConditionalDensity
    posterior: RestrictedPosterior
    theta: torch.Tensor
    x: torch.Tensor
    round_index: torch.Tensor
    rounds: list[RoundRecord] = field(default_factory=list)
    round_samples: list[torch.Tensor] = field(default_factory=list)
    train_seconds: float = 0.0


def _per_round(value, n_rounds: int, name: str) -> list[int]:
    vals = [value] * n_rounds if isinstance(value, int) else list(value)
    if len(vals) != n_rounds:
        raise ValueError(f"{name} must be an int or one int per round ({n_rounds}); got {value!r}")
    for v in vals:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(
                f"{name} must be positive integers (an empty budget cannot be trained on); "
                f"got {value!r}"
            )
    return vals


def _check_x_o(x_o) -> torch.Tensor:
    x = x_o.detach().float() if isinstance(x_o, torch.Tensor) else as_tensor(x_o, "x_o")
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise ValueError(f"x_o must be one observation of shape (d_x,); got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x_o contains NaN or infinite values")
    return x


def run_npe(
    prior,
    simulator: Callable,
    x_o,
    *,
    density: ConditionalDensity,
    n_rounds: int,
    simulations_per_round: int | Sequence[int],
    method: str | NPEMethod = "apt",
    batch_size: int = 100,
    lr: float = 1e-3,
    max_steps: int = 300,
    patience: int = 10,
    eval_every: int = 10,
    validation_fraction: float = 0.1,
    clip_norm: float | None = 5.0,
    record_samples: int = 0,
    generator: torch.Generator | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> NPEResult:
    """Sequential neural posterior estimation for one observation ``x_o``.

    Round 1 draws θ from the prior and fits ``density`` by maximum likelihood. Each later
    round draws θ from the current posterior estimate restricted to the prior's support,
    simulates, and continues training with the ``method``'s loss (APT and SNPE-B on all rounds
    pooled).

    Args:
        prior: ``dim``, ``sample(n, generator=...)``, ``log_prob``, ``contains`` (e.g.
            :class:`~neuroinverse.simulators.priors.BoxUniform`).
        simulator: ``simulator(theta (n, d_θ), generator=...) -> x (n, d_x)``.
        x_o: the observation ``(d_x,)``.
        density: a :class:`~neuroinverse.models.density.ConditionalDensity` for q(θ | x),
            with ``value_dim = d_θ`` and ``context_dim = d_x``; trained in place on its device.
            Its z-scoring is set from round-1 data unless it was set before.
        n_rounds: number of rounds (1 = amortised NPE).
        simulations_per_round: simulations per round (one int, or one per round).
        method: a method of :mod:`neuroinverse.inference.npe_methods` (``APT``: atomic
            loss on all rounds, with its ``num_atoms`` and ``combined_loss``; ``NaiveSNPE``:
            uncorrected MLE on the current proposal's simulations; ``PooledSNPEB``:
            importance-weighted MLE on all rounds), or the name of one (``"apt"``,
            ``"naive"``, ``"snpe-b"``) with its default options.
        batch_size, lr: Adam minibatch size and learning rate.
        max_steps: hard cap on the gradient steps per round.
        patience: stop a round after this many validation evaluations without a better
            validation loss (the best parameters are restored).
        eval_every: evaluate the validation loss every epoch, but at most every
            ``eval_every`` steps (small rounds have epochs of one or two steps, on which a
            noisy validation loss would stop training almost at once).
        validation_fraction: fraction of every round's simulations held out for validation.
        clip_norm: gradient-norm clipping (``None``: off).
        record_samples: draw this many restricted-posterior samples after every round.
        generator: CPU generator for every random draw (prior, simulator, proposals,
            minibatches, atoms).
        progress: tqdm bar per round.

    Returns:
        :class:`NPEResult`.
    """
    method = npe_method(method)
    if not isinstance(density, ConditionalDensity):
        raise ValueError(f"density must be a ConditionalDensity; got {type(density).__name__}")
    n_rounds = check_positive_int(n_rounds, "n_rounds")
    budget = _per_round(simulations_per_round, n_rounds, "simulations_per_round")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must lie in (0, 1); got {validation_fraction!r}")
    batch_size, max_steps = (
        check_positive_int(batch_size, "batch_size"),
        check_positive_int(max_steps, "max_steps"),
    )
    patience, eval_every = (
        check_positive_int(patience, "patience"),
        check_positive_int(eval_every, "eval_every"),
    )
    record_samples = check_positive_int(record_samples, "record_samples", minimum=0)
    x_o = _check_x_o(x_o)
    if getattr(prior, "dim", None) != density.value_dim:
        raise ValueError(
            f"prior has dimension {getattr(prior, 'dim', None)} but density.value_dim is "
            f"{density.value_dim}"
        )
    if density.context_dim != x_o.numel():
        raise ValueError(
            f"x_o has {x_o.numel()} entries but density.context_dim is {density.context_dim}"
        )
    dev = density.device
    x_o_dev = x_o.to(dev)
    posterior = RestrictedPosterior(density, prior, x_o_dev)

    thetas: list[torch.Tensor] = []
    xs: list[torch.Tensor] = []
    rindex: list[torch.Tensor] = []
    is_val: list[torch.Tensor] = []
    proposals: list = []  # None (prior) or (snapshot, x_o, acceptance) per round
    records: list[RoundRecord] = []
    round_samples: list[torch.Tensor] = []
    train_seconds = 0.0

    for r in range(n_rounds):
        n = budget[r]
        # ---- propose and simulate
        if r == 0:
            theta = sample_prior_checked(prior, n, generator=generator)
            acc = 1.0
            proposals.append(None)
        else:
            theta = posterior.sample(n, generator=generator).cpu()
            acc = float(posterior.acceptance_rate)
            proposals.append(
                (copy.deepcopy(density).eval(), x_o_dev, acc) if method.keeps_proposals else None
            )
        x = simulate_checked(simulator, theta, generator=generator)
        if x.shape[1] != x_o.numel():
            raise ValueError(
                f"x_o has {x_o.numel()} entries but the simulator returns x with "
                f"{x.shape[1]} columns"
            )
        if not torch.isfinite(x).all():
            bad = int((~torch.isfinite(x).all(1)).sum())
            raise ValueError(
                f"simulator returned {bad} rows with NaN or infinite data in round {r + 1}; "
                "remove failed simulations before inference"
            )
        n_val = max(1, int(round(validation_fraction * n)))
        if n - n_val < 2:
            raise ValueError(f"simulations_per_round={n} leaves fewer than 2 training simulations")
        perm = torch.randperm(n, generator=generator)
        val = torch.zeros(n, dtype=torch.bool)
        val[perm[:n_val]] = True
        thetas.append(theta)
        xs.append(x)
        rindex.append(torch.full((n,), r, dtype=torch.long))
        is_val.append(val)
        if r == 0 and not bool(density.standardized):
            density.set_standardization(theta[~val], x[~val])

        TH, X, RI, VAL = (torch.cat(thetas), torch.cat(xs), torch.cat(rindex), torch.cat(is_val))
        data = RoundData(TH.to(dev), X.to(dev), RI.to(dev), (~VAL).to(dev), tuple(proposals))
        batch_loss = method.round_loss(r, density, prior, data)
        use = method.trains_on(RI, r)
        t0 = time.perf_counter()
        steps, best, stopped = _train_round(
            density,
            batch_loss,
            train_idx=torch.nonzero(~VAL & use).squeeze(1),
            val_idx=torch.nonzero(VAL & use).squeeze(1),
            batch_size=batch_size,
            lr=lr,
            max_steps=max_steps,
            patience=patience,
            eval_every=eval_every,
            clip_norm=clip_norm,
            generator=generator,
            progress=progress,
            desc=f"{desc or method.name} round {r + 1}/{n_rounds}",
        )
        train_seconds += time.perf_counter() - t0
        # ---- leakage diagnostics and recorded samples
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            smp = posterior.sample(max(record_samples, 1000), generator=generator)
        if record_samples:
            round_samples.append(smp[:record_samples].cpu())
        records.append(
            RoundRecord(
                round=r + 1,
                n_simulations=n,
                proposal_acceptance=acc,
                leakage=1.0 - float(posterior.acceptance_rate),
                steps=steps,
                best_val_loss=best,
                stopped_early=stopped,
            )
        )
        if posterior.acceptance_rate < posterior.warn_below:
            warnings.warn(
                f"round {r + 1}: only {100 * posterior.acceptance_rate:.1f} % of the samples of "
                "q(θ | x_o) lie inside the prior's support (leakage)",
                RuntimeWarning,
                stacklevel=2,
            )

    return NPEResult(
        density=density,
        posterior=posterior,
        theta=torch.cat(thetas),
        x=torch.cat(xs),
        round_index=torch.cat(rindex),
        rounds=records,
        round_samples=round_samples,
        train_seconds=train_seconds,
    )


def _train_round(
    density: ConditionalDensity,
    batch_loss: Callable,
    *,
    train_idx: torch.Tensor,
    val_idx: torch.Tensor,
    batch_size: int,
    lr: float,
    max_steps: int,
    patience: int,
    eval_every: int,
    clip_norm: float | None,
    generator: torch.Generator | None,
    progress: bool,
    desc: str,
) -> tuple[int, float, bool]:
    """Adam on ``batch_loss`` in epochs of shuffled minibatches, with early stopping.

    The loop is :func:`neuroinverse.training.fit` with
    :class:`~neuroinverse.training.EarlyStopping`: the validation loss is evaluated at the end
    of the first epoch after at least ``max(epoch, eval_every)`` steps, and at the last step;
    its atoms come from a generator with a fixed seed so that evaluations are compared on the
    same atoms. Every random draw (epoch order, atoms) comes from ``generator``. Returns
    ``(steps, best validation loss, stopped early)``; the best parameters are restored.
    """
    dev = density.device
    params = tuple(p for p in density.parameters() if p.requires_grad)
    # foreach: one multi-tensor kernel per Adam / clipping operation instead of one per
    # parameter tensor (the default on CUDA, not on CPU); the same numbers as the per-tensor loop.
    opt = torch.optim.Adam(params, lr=lr, foreach=True)
    n_train = train_idx.numel()
    bs = min(batch_size, n_train)
    steps_per_epoch = max(1, n_train // bs)
    every = math.ceil(max(steps_per_epoch, eval_every) / steps_per_epoch) * steps_per_epoch

    def val_loss() -> float:
        g = torch.Generator().manual_seed(12345)
        total, count = 0.0, 0
        for chunk in val_idx.split(max(bs, 2)):
            if chunk.numel() < 2:
                continue
            total += float(batch_loss(chunk.to(dev), g)) * chunk.numel()
            count += chunk.numel()
        return total / max(count, 1)

    epoch = {"order": train_idx, "next": steps_per_epoch}

    def loss_fn(step: int, _gen: torch.Generator) -> torch.Tensor:
        if epoch["next"] == steps_per_epoch:  # a new epoch: a new order of the training set
            epoch["order"], epoch["next"] = (
                train_idx[torch.randperm(n_train, generator=generator)],
                0,
            )
        b = epoch["next"]
        epoch["next"] += 1
        return batch_loss(epoch["order"][b * bs : (b + 1) * bs].to(dev), generator)

    hist = fit(
        loss_fn,
        module=density,
        optimizers=opt,
        n_steps=max_steps,
        clipping=Clipping(clip_norm, params=params, foreach=True)
        if clip_norm is not None
        else None,
        early_stopping=EarlyStopping(val_loss, every=every, patience=patience),
        progress=progress,
        leave=False,
        desc=desc,
    )
    return len(hist.steps), hist.best_val, hist.stopped_early
