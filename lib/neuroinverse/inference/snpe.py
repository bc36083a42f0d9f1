"""SNPE-B: importance-weighted sequential neural posterior estimation (delfi style).

Lueckmann, Goncalves, Bassetto, Öcal, Nonnenmacher & Macke, "Flexible statistical inference
for mechanistic models of neural dynamics", NIPS 2017 (arXiv:1711.01861), section 2
(algorithm 1) and section 3 (simulator failures); reference code ``mackelab/delfi`` (``SNPEB``).

Round r = 1 … R:

1. **Proposal** p̃_r: the prior for r = 1, else the current posterior estimate q_φ(θ | x_o),
   converted (as delfi does) from a mixture of Gaussians into a mixture of Student-t
   distributions with 3 degrees of freedom (same locations, the covariances as scale
   matrices), mixed with a fraction α of the prior ("prior mix-in", a *defensive* mixture
   p̃ = α·prior + (1 − α)·q̃: the weights below are then bounded by 1/α, so a few draws in the
   proposal's tails cannot carry the whole round). Draws are taken by rejection inside the
   prior's support (:class:`SNPEProposal`).
2. **Simulate** N pairs; failed simulations are discarded and new θ drawn (resampling), and
   optionally a **failure classifier** (scikit-learn ``LogisticRegression`` on every θ
   simulated so far) rejects proposals with predicted P(bad | θ) > 0.5 before simulating.
3. **Importance weights** w_n = p(θ_n) / (α p(θ_n) + (1 − α) p̃_r(θ_n)), normalised to mean 1
   over the round (:func:`importance_weights`; the truncation constant of the proposal only
   rescales all weights and is ignored, as in delfi). Optional calibration kernel
   w_n ← w_n K(‖x_n − x_o‖ / h) on z-scored data.
4. **Train** the MDN on this round's data only, re-using the network across rounds
   (continual learning): L(φ) = −(1/N) Σ w_n log q_φ(θ_n | x_n) + KL/N, with the KL of the
   Bayesian MDN to the weight prior (round 1) or to the previous round's weight posterior
   (``continual_learning=False``: to the weight prior in every round).
5. The new q_φ(θ | x_o) becomes the next proposal.

The unweighted variant (``importance_weighting=False``) trains on proposal samples without
w_n; it estimates p(θ | x_o) p̃(θ) / p(θ) instead of the posterior (paper section 2).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch

from .._checks import as_tensor, check_choice, check_positive, check_positive_int, check_range
from ..models.mdn import MDN
from ..training import Clipping, History, fit
from .snpe_proposals import FailureClassifier, SNPEProposal, StudentTMixture

__all__ = [
    "SNPEBRound",
    "SNPEB",
    "importance_weights",
    "self_normalized_weights",
    "effective_sample_size",
    "calibration_kernel",
    "marginal_summary",
    "weighted_and_unweighted",
]


# -- weights -------------------------------------------------------------------------------------
def effective_sample_size(weights: torch.Tensor) -> float:
    """(Σw)² / Σw²."""
    w = weights.double()
    return float(w.sum() ** 2 / (w * w).sum())


def self_normalized_weights(
    log_w: torch.Tensor, *, over: torch.Tensor | None = None
) -> torch.Tensor:
    """``exp(log_w)`` scaled to mean 1 over the rows ``over`` (a boolean mask; default all).

    The largest log weight among those rows is subtracted before exponentiating, so that
    weights far from 1 neither overflow nor underflow; the dtype of ``log_w`` is kept. SNPE-B's
    weights in both forms of the book (:class:`SNPEB`, and the pooled variant
    :class:`~neuroinverse.inference.npe.PooledSNPEB`).
    """
    ref = log_w if over is None else log_w[over]
    if ref.numel() == 0:
        raise ValueError("over selects no rows")
    w = torch.exp(log_w - ref.max())
    return w / (w if over is None else w[over]).mean()


def importance_weights(
    theta: torch.Tensor, prior, proposal: SNPEProposal, *, normalize: bool = True
) -> tuple[torch.Tensor, float]:
    """w_n = p(θ_n) / p̃(θ_n), normalised to mean 1, and the effective sample size.

    With a defensive proposal p̃ = α·prior + (1 − α)·q̃ the unnormalised weights are at most 1/α.

    Args:
        theta: ``(n, d)`` draws from ``proposal``.
        prior: the prior (``log_prob``).
        proposal: the :class:`SNPEProposal` the draws came from.
        normalize: divide by the mean (``False``: the raw ratios p/p̃).

    Returns:
        ``(weights (n,) float32, ess)``.
    """
    theta = theta if isinstance(theta, torch.Tensor) else as_tensor(theta, "theta")
    if theta.ndim != 2 or theta.shape[1] != prior.dim or theta.shape[0] < 1:
        raise ValueError(
            f"theta must have shape (n, {prior.dim}) with n >= 1; got {tuple(theta.shape)}"
        )
    if torch.isnan(theta).any():
        raise ValueError("theta contains NaN")
    if proposal.is_prior:
        w = torch.ones(theta.shape[0], dtype=torch.float64)
    else:
        logw = prior.log_prob(theta).double() - proposal.log_prob(theta)
        if not torch.isfinite(logw).all():
            raise ValueError(
                "importance weights are not finite (theta outside the prior's support?)"
            )
        w = self_normalized_weights(logw) if normalize else torch.exp(logw)
    return w.float(), effective_sample_size(w)


def calibration_kernel(
    x_z: torch.Tensor, x_o_z: torch.Tensor, *, kind: str = "gaussian", bandwidth: float = 1.0
) -> torch.Tensor:
    """K(‖x − x_o‖ / h) on z-scored data (missing entries ignored), ``(n,)``.

    ``kind``: ``"gaussian"`` exp(−½u²) or ``"uniform"`` 1[u ≤ 1].
    """
    check_choice(kind, "kind", ("gaussian", "uniform"))
    check_positive(bandwidth, "bandwidth")
    u = torch.nan_to_num(x_z - x_o_z, nan=0.0).norm(dim=1) / bandwidth
    return torch.exp(-0.5 * u * u) if kind == "gaussian" else (u <= 1).float()


# -- the algorithm ---------------------------------------------------------------------------------
@dataclass
class SNPEBRound:
    """What happened in one round.

    Attributes:
        round: 1-based round number.
        theta, x: the round's training pairs (good simulations only), ``(N, d)``, ``(N, d_x)``.
        weights: normalised importance (× kernel) weights ``(N,)``.
        ess: effective sample size of ``weights``.
        n_simulated: simulations run (good + bad).
        n_bad: failed simulations (resampled).
        n_rejected_classifier: proposals rejected by the failure classifier before simulating.
        history: training history of the round.
        bad_theta: parameters of the failed simulations.
        posterior: q(θ | x_o) after the round's training, as a Gaussian mixture.
    """

    round: int
    theta: torch.Tensor
    x: torch.Tensor
    weights: torch.Tensor
    ess: float
    n_simulated: int
    n_bad: int
    n_rejected_classifier: int
    history: History = field(repr=False)
    bad_theta: torch.Tensor | None = field(default=None, repr=False)
    posterior: StudentTMixture | None = field(default=None, repr=False)

    @property
    def frac_bad(self) -> float:
        """Fraction of this round's simulations that failed."""
        return self.n_bad / max(self.n_simulated, 1)


class SNPEB:
    """Sequential neural posterior estimation with importance weights (SNPE-B, delfi style).

    Args:
        prior: prior with ``dim``, ``sample(n, generator=)``, ``log_prob``, ``contains``.
        simulator: ``simulator(theta (n, d), generator=g)`` returning ``x (n, d_x)`` (a row
            with a non-finite entry is a failed run) or ``(x, bad)`` with a boolean ``bad``
            mask (then NaN entries of good rows are missing features, for an imputing MDN).
        x_o: the observation ``(d_x,)``.
        density: the :class:`~neuroinverse.models.mdn.MDN` (re-used across rounds).
        importance_weighting: use w_n (SNPE-B); ``False`` gives the unweighted baseline.
        prior_mixin: α of the proposal.
        proposal_dof: degrees of freedom of the Student-t proposal (``None``: Gaussian).
        failures: ``"resample"`` (discard and redraw) or ``"classifier"`` (also reject θ with
            predicted P(bad) > 0.5, logistic regression on every θ simulated so far).
        classifier_degree: polynomial degree of the classifier's features (1: linear in θ).
        continual_learning: in rounds ≥ 2 the KL term pulls the Bayesian weights towards the
            previous round's weight posterior (delfi); ``False``: towards the zero-mean weight
            prior of round 1 in every round.
        kernel, kernel_bandwidth: optional calibration kernel (``"gaussian"``/``"uniform"``)
            on z-scored data.
        epochs, batch_size, lr, clip_norm: training per round (delfi: 100, 50, 1e-3, 0.1).
        seed: seed of the training loops (round r uses ``seed + r``).
        progress: show progress bars.
        max_attempts: simulation batches per round before giving up on failures.
    """

    def __init__(
        self,
        prior,
        simulator: Callable,
        x_o,
        density: MDN,
        *,
        importance_weighting: bool = True,
        prior_mixin: float = 0.0,
        proposal_dof: int | None = 3,
        failures: str = "resample",
        classifier_degree: int = 1,
        continual_learning: bool = True,
        kernel: str | None = None,
        kernel_bandwidth: float = 1.0,
        epochs: int = 100,
        batch_size: int = 50,
        lr: float = 1e-3,
        clip_norm: float | None = 0.1,
        seed: int = 0,
        progress: bool = True,
        max_attempts: int = 50,
    ) -> None:
        if not isinstance(density, MDN):
            raise ValueError(f"density must be an MDN; got {type(density).__name__}")
        if density.value_dim != prior.dim:
            raise ValueError(
                f"density models {density.value_dim} parameters but the prior has {prior.dim}"
            )
        x_o = x_o if isinstance(x_o, torch.Tensor) else as_tensor(x_o, "x_o")
        x_o = x_o.float().reshape(-1) if x_o.ndim == 2 and x_o.shape[0] == 1 else x_o.float()
        if x_o.ndim != 1 or x_o.numel() != density.context_dim:
            raise ValueError(
                f"x_o must have shape ({density.context_dim},) to match the density's context; "
                f"got {tuple(x_o.shape)}"
            )
        if torch.isinf(x_o).any() or (torch.isnan(x_o).any() and not density.impute):
            raise ValueError("x_o contains NaN or infinite values")
        check_choice(failures, "failures", ("resample", "classifier"))
        check_choice(kernel, "kernel", (None, "gaussian", "uniform"))
        check_positive_int(epochs, "epochs")
        check_positive_int(batch_size, "batch_size")
        check_range(prior_mixin, "prior_mixin", 0.0, 1.0)
        self.prior, self.simulator, self.x_o, self.density = prior, simulator, x_o, density
        self.importance_weighting, self.prior_mixin, self.proposal_dof = (
            importance_weighting,
            prior_mixin,
            proposal_dof,
        )
        self.failures, self.kernel, self.kernel_bandwidth = (
            failures,
            kernel,
            float(kernel_bandwidth),
        )
        self.classifier_degree, self.continual_learning = (
            classifier_degree,
            bool(continual_learning),
        )
        self.epochs, self.batch_size, self.lr, self.clip_norm = epochs, batch_size, lr, clip_norm
        self.seed, self.progress, self.max_attempts = int(seed), progress, int(max_attempts)
        self.rounds: list[SNPEBRound] = []
        self.classifier: FailureClassifier | None = None
        self._all_theta: list[torch.Tensor] = []
        self._all_bad: list[torch.Tensor] = []

    # -- proposal ------------------------------------------------------------------------------
    def posterior_mixture(self, *, dof: int | None = None) -> StudentTMixture:
        """q(θ | x_o) as a mixture (Gaussian with ``dof=None``, Student-t otherwise)."""
        self.density.eval()
        w, m, S = self.density.mixture(self.x_o)
        return StudentTMixture(w.cpu(), m.cpu(), S.cpu(), dof=dof)

    def proposal(self) -> SNPEProposal:
        """The next round's proposal: the prior before any round, else the Student-t posterior."""
        mixture = None if not self.rounds else self.posterior_mixture(dof=self.proposal_dof)
        clf = self.classifier if self.failures == "classifier" else None
        return SNPEProposal(
            self.prior,
            mixture,
            prior_mixin=self.prior_mixin if self.rounds else 0.0,
            classifier=clf,
        )

    # -- simulation ------------------------------------------------------------------------------
    def _simulate(self, theta: torch.Tensor, generator) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.simulator(theta, generator=generator)
        x, bad = out if isinstance(out, tuple) else (out, None)
        if not isinstance(x, torch.Tensor):
            x = as_tensor(x, "simulator output")
        if x.ndim != 2 or x.shape[0] != theta.shape[0] or x.shape[1] != self.x_o.numel():
            raise ValueError(
                f"simulator must return x of shape ({theta.shape[0]}, {self.x_o.numel()}) "
                f"(one row per theta, as many columns as x_o); got {tuple(x.shape)}"
            )
        x = x.float().cpu()
        if bad is None:
            bad = ~torch.isfinite(x).all(1)
        else:
            bad = torch.as_tensor(bad, dtype=torch.bool).reshape(-1).cpu()
            if bad.numel() != theta.shape[0]:
                raise ValueError(
                    f"simulator's bad mask must have {theta.shape[0]} entries; got {bad.numel()}"
                )
            bad = bad | torch.isinf(x).any(1)
            if not self.density.impute:
                bad = bad | torch.isnan(x).any(1)
        return x, bad

    def _collect(self, proposal: SNPEProposal, n: int, generator) -> tuple:
        thetas, xs, bad_thetas = [], [], []
        have = n_sim = n_bad = 0
        for _ in range(self.max_attempts):
            th = proposal.sample(n - have, generator=generator)
            x, bad = self._simulate(th, generator)
            self._all_theta.append(th)
            self._all_bad.append(bad)
            n_sim += th.shape[0]
            n_bad += int(bad.sum())
            thetas.append(th[~bad])
            xs.append(x[~bad])
            bad_thetas.append(th[bad])
            have += int((~bad).sum())
            if have >= n:
                return torch.cat(thetas)[:n], torch.cat(xs)[:n], n_sim, n_bad, torch.cat(bad_thetas)
        raise RuntimeError(
            f"only {have} of {n} simulations succeeded after {self.max_attempts} attempts"
        )

    # -- one round --------------------------------------------------------------------------------
    def run_round(
        self, n_simulations: int, *, generator: torch.Generator | None = None
    ) -> SNPEBRound:
        """Propose, simulate (resampling failures), weight, and train once (one round)."""
        if (
            not isinstance(n_simulations, int)
            or isinstance(n_simulations, bool)
            or n_simulations < 2
        ):
            raise ValueError(
                "n_simulations must be an integer >= 2 (an empty budget cannot be used); "
                f"got {n_simulations!r}"
            )
        r = len(self.rounds) + 1
        proposal = self.proposal()
        theta, x, n_sim, n_bad, bad_theta = self._collect(proposal, n_simulations, generator)
        if not self.density.standardized.item():
            self.density.set_standardization(theta, x)
        if self.importance_weighting:
            w, _ = importance_weights(theta, self.prior, proposal)
        else:
            w = torch.ones(theta.shape[0])
        if self.kernel is not None:
            dev = self.density.device
            k = calibration_kernel(
                self.density.standardize_context(x.to(dev)).cpu(),
                self.density.standardize_context(self.x_o.to(dev)).cpu(),
                kind=self.kernel,
                bandwidth=self.kernel_bandwidth,
            )
            if k.sum() <= 0:
                raise RuntimeError("the calibration kernel gives zero weight to every simulation")
            w = w * k
            w = w / w.mean()
        cl = self.rounds and self.density.bayesian and self.continual_learning
        reference = self.density.posterior_snapshot() if cl else None
        history = self._train(theta, x, w, reference, seed=self.seed + r, desc=f"SNPE round {r}")
        if self.failures == "classifier":
            if self.classifier is None:
                self.classifier = FailureClassifier(
                    shift=self.density.value_shift.cpu(),
                    scale=self.density.value_scale.cpu(),
                    degree=self.classifier_degree,
                    random_state=self.seed,
                )
            self.classifier.fit(torch.cat(self._all_theta), torch.cat(self._all_bad))
        rec = SNPEBRound(
            round=r,
            theta=theta,
            x=x,
            weights=w,
            ess=effective_sample_size(w),
            n_simulated=n_sim,
            n_bad=n_bad,
            n_rejected_classifier=proposal.n_rejected_classifier,
            history=history,
            bad_theta=bad_theta,
            posterior=self.posterior_mixture(dof=None),
        )
        self.rounds.append(rec)
        return rec

    def _train(self, theta, x, w, reference, *, seed: int, desc: str) -> History:
        q = self.density
        dev = q.device
        vz, cz = q.standardize_value(theta.to(dev)), q.standardize_context(x.to(dev))
        w = w.to(dev)
        jac = float(q.log_abs_det_value_scale())
        N = theta.shape[0]
        bs = min(self.batch_size, N)
        spe = N // bs  # steps per epoch
        state: dict[str, torch.Tensor] = {}

        def loss_fn(step: int, gen: torch.Generator):
            if step % spe == 0:
                state["perm"] = torch.randperm(N, generator=gen, device=gen.device).to(dev)
            idx = state["perm"][(step % spe) * bs : (step % spe + 1) * bs]
            lp = q.log_prob_standardized(vz[idx], cz[idx], generator=gen) - jac
            nll = -(w[idx] * lp).mean()
            kl = q.kl(reference) / N
            return nll + kl, {"nll": float(nll.detach()), "kl_per_n": float(kl.detach())}

        opt = torch.optim.Adam(q.parameters(), lr=self.lr, fused=dev.type in ("cpu", "cuda"))
        hist = fit(
            loss_fn,
            module=q,
            optimizers=opt,
            n_steps=self.epochs * spe,
            clipping=Clipping(self.clip_norm) if self.clip_norm is not None else None,
            seed=seed,
            progress=self.progress,
            desc=desc,
        )
        q.eval()
        return hist

    def run(
        self, n_rounds: int, n_simulations, *, generator: torch.Generator | None = None
    ) -> SNPEB:
        """Run ``n_rounds`` rounds; ``n_simulations`` is one number or one per round."""
        check_positive_int(n_rounds, "n_rounds")
        sims = [n_simulations] * n_rounds if isinstance(n_simulations, int) else list(n_simulations)
        if len(sims) != n_rounds:
            raise ValueError(
                f"n_simulations must be one number or {n_rounds} numbers; got {len(sims)}"
            )
        for n in sims:
            self.run_round(n, generator=generator)
        return self

    # -- results ----------------------------------------------------------------------------------
    def clone(self, **changes) -> SNPEB:
        """A deep copy (network, rounds, classifier) with some settings changed, e.g. to branch
        the weighted and unweighted variants after a shared first round."""
        new = copy.deepcopy(self)
        for k, v in changes.items():
            if not hasattr(new, k) or k.startswith("_") or k in ("rounds", "density", "classifier"):
                raise ValueError(f"cannot change {k!r}")
            setattr(new, k, v)
        return new

    def posterior_samples(
        self, n: int, *, generator: torch.Generator | None = None, truncate: bool = True
    ) -> torch.Tensor:
        """``n`` draws from q(θ | x_o) (mean weights), inside the prior's support if
        ``truncate``."""
        if not self.rounds:
            raise ValueError("no round has been run yet")
        self.density.eval()
        out, have = [], 0
        for _ in range(1000):
            th = self.density.sample(
                max(2 * (n - have), 16), self.x_o.to(self.density.device), generator=generator
            ).cpu()
            if truncate:
                th = th[self.prior.contains(th)]
            out.append(th)
            have += th.shape[0]
            if have >= n:
                return torch.cat(out)[:n]
        raise RuntimeError("q(θ | x_o) puts almost no mass inside the prior's support")


def marginal_summary(samples: torch.Tensor, *, level: float = 0.95) -> dict[str, torch.Tensor]:
    """Mean, standard deviation and central ``level`` interval of every marginal of ``samples``
    ``(n, d)``."""
    s = samples.double()
    a = (1 - level) / 2
    q = torch.quantile(s, torch.tensor([a, 1 - a], dtype=torch.float64), dim=0)
    return dict(mean=s.mean(0), std=s.std(0), low=q[0], high=q[1])


def weighted_and_unweighted(
    prior,
    simulator: Callable,
    x_o,
    density: MDN,
    *,
    n_simulations: int,
    n_rounds: int = 2,
    generator: torch.Generator | None = None,
    **settings,
) -> tuple[SNPEB, SNPEB]:
    """SNPE-B and its unweighted variant from one shared first round (paper section 2).

    Round 1 (prior proposal, all weights 1) is run once; the network is then copied and
    rounds 2 … ``n_rounds`` are run with and without importance weights, each drawing its
    own proposal samples from ``generator``.

    Args:
        prior, simulator, x_o, density: as for :class:`SNPEB`.
        n_simulations: simulations per round.
        n_rounds: total rounds (>= 2).
        generator: randomness of proposals and simulations.
        settings: further :class:`SNPEB` settings (epochs, lr, ...).

    Returns:
        ``(weighted, unweighted)`` :class:`SNPEB` runs.
    """
    check_positive_int(n_rounds, "n_rounds", minimum=2)
    weighted = SNPEB(prior, simulator, x_o, density, importance_weighting=True, **settings)
    weighted.run_round(n_simulations, generator=generator)
    unweighted = weighted.clone(importance_weighting=False)
    for _ in range(n_rounds - 1):
        weighted.run_round(n_simulations, generator=generator)
        unweighted.run_round(n_simulations, generator=generator)
    return weighted, unweighted
