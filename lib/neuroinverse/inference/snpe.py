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
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .._checks import as_tensor
from ..models.mdn import MDN
from ..training import Clipping, History, fit

__all__ = [
    "StudentTMixture",
    "SNPEProposal",
    "FailureClassifier",
    "SNPEBRound",
    "SNPEB",
    "importance_weights",
    "effective_sample_size",
    "calibration_kernel",
    "marginal_summary",
    "weighted_and_unweighted",
    "snpe_a_correction",
]


# -- proposal -----------------------------------------------------------------------------------
class StudentTMixture:
    """Mixture of multivariate Student-t distributions (scale matrices Σ_k, ``dof`` ν).

    Args:
        weights: ``(K,)`` mixture weights (normalised here).
        means: ``(K, d)`` locations.
        scales: ``(K, d, d)`` positive-definite scale matrices (the MoG covariances).
        dof: integer degrees of freedom ν, or ``None`` for a Gaussian mixture (ν → ∞).
    """

    def __init__(self, weights, means, scales, *, dof: int | None = 3) -> None:
        w = as_tensor(weights, "weights", dtype=torch.float64).reshape(-1)
        m = as_tensor(means, "means", dtype=torch.float64)
        S = as_tensor(scales, "scales", dtype=torch.float64)
        K = w.numel()
        if m.ndim != 2 or m.shape[0] != K or S.shape != (K, m.shape[1], m.shape[1]):
            raise ValueError(
                f"need weights (K,), means (K, d), scales (K, d, d); got {tuple(w.shape)}, "
                f"{tuple(m.shape)}, {tuple(S.shape)}"
            )
        if not (torch.isfinite(w).all() and torch.isfinite(m).all() and torch.isfinite(S).all()):
            raise ValueError("weights, means and scales must be finite")
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        if dof is not None and (not isinstance(dof, int) or dof < 1):
            raise ValueError(f"dof must be a positive integer or None; got {dof!r}")
        S = 0.5 * (S + S.transpose(-1, -2))
        L, info = torch.linalg.cholesky_ex(S)
        if (info != 0).any():
            raise ValueError("scales must be positive definite")
        self.weights, self.means, self.scales, self.chol, self.dof = w / w.sum(), m, S, L, dof

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        """Log density ``(n,)`` of ``theta`` ``(n, d)`` (float64)."""
        th = theta.double()
        d = self.dim
        diff = th[:, None, :] - self.means[None]  # (n, K, d)
        z = torch.linalg.solve_triangular(
            self.chol[None].expand(th.shape[0], -1, -1, -1), diff.unsqueeze(-1), upper=False
        ).squeeze(-1)
        maha = (z * z).sum(-1)
        half_logdet = torch.log(torch.diagonal(self.chol, dim1=-2, dim2=-1)).sum(-1)
        if self.dof is None:
            comp = -0.5 * maha - half_logdet - 0.5 * d * math.log(2 * math.pi)
        else:
            nu = float(self.dof)
            comp = (
                math.lgamma((nu + d) / 2)
                - math.lgamma(nu / 2)
                - 0.5 * d * math.log(nu * math.pi)
                - half_logdet
                - 0.5 * (nu + d) * torch.log1p(maha / nu)
            )
        return torch.logsumexp(torch.log(self.weights) + comp, dim=1)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws ``(n, d)`` (float64): θ = μ_k + L_k z √(ν/u), u ~ χ²_ν."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = (self.chol[k] @ z.unsqueeze(-1)).squeeze(-1)
        if self.dof is not None:
            u = torch.randn(n, self.dof, generator=generator, dtype=torch.float64).pow(2).sum(1)
            x = x * torch.sqrt(self.dof / u)[:, None]
        return self.means[k] + x


def snpe_a_correction(
    mixture: StudentTMixture, proposal_mean, proposal_cov, *, prior_mean=None, prior_cov=None
) -> StudentTMixture:
    """SNPE-A's analytic proposal correction (CDE-LFI; Papamakarios & Murray, NIPS 2016).

    A mixture density network trained *without* weights on draws from a Gaussian proposal
    p̃(θ) = N(m̃, S̃) estimates q(θ | x) ∝ p(θ | x) p̃(θ) / p(θ). With a Gaussian mixture q and a
    Gaussian (or uniform) prior p = N(m_p, S_p), the posterior p(θ | x) ∝ q(θ | x) p(θ) / p̃(θ)
    is again a Gaussian mixture, component by component (P = precision):

        P'_k = P_k + P_p − P̃,    P'_k m'_k = P_k m_k + P_p m_p − P̃ m̃,
        a'_k ∝ a_k |S'_k|^½ |S̃|^½ / (|S_k|^½ |S_p|^½)
               · exp(−½ [m_kᵀP_k m_k + m_pᵀP_p m_p − m̃ᵀP̃ m̃ − m'_kᵀP'_k m'_k]).

    With a uniform prior (``prior_mean`` and ``prior_cov`` None) the prior terms drop (the
    result holds inside the prior box). The correction fails when a P'_k is not positive
    definite (the proposal narrower than that component): this is the failure mode that
    Lueckmann et al. (NIPS 2017, Fig. 2a) count for CDE-LFI, raised here as ``ValueError``.

    Args:
        mixture: the estimate q(θ | x_o) as a Gaussian mixture (``dof=None``), e.g.
            ``SNPEB(...).posterior_mixture(dof=None)``.
        proposal_mean, proposal_cov: m̃ ``(d,)`` and S̃ ``(d, d)`` of the Gaussian proposal.
        prior_mean, prior_cov: m_p and S_p of a Gaussian prior; both None for a uniform prior.

    Returns:
        The corrected posterior as a Gaussian :class:`StudentTMixture` (``dof=None``).
    """
    if mixture.dof is not None:
        raise ValueError("mixture must be a Gaussian mixture (dof=None)")
    d = mixture.dim
    m0 = as_tensor(proposal_mean, "proposal_mean", dtype=torch.float64).reshape(-1)
    S0 = as_tensor(proposal_cov, "proposal_cov", dtype=torch.float64)
    if m0.shape != (d,) or S0.shape != (d, d):
        raise ValueError(
            f"proposal_mean must be ({d},) and proposal_cov ({d}, {d}); got {tuple(m0.shape)}, {tuple(S0.shape)}"
        )
    if (prior_mean is None) != (prior_cov is None):
        raise ValueError("give both prior_mean and prior_cov (Gaussian prior) or neither (uniform prior)")
    P0 = torch.linalg.inv(S0)
    if prior_mean is None:
        Pp, hp, cp, logdet_Sp = torch.zeros(d, d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64), 0.0, 0.0
    else:
        mp = as_tensor(prior_mean, "prior_mean", dtype=torch.float64).reshape(-1)
        Sp = as_tensor(prior_cov, "prior_cov", dtype=torch.float64)
        if mp.shape != (d,) or Sp.shape != (d, d):
            raise ValueError(
                f"prior_mean must be ({d},) and prior_cov ({d}, {d}); got {tuple(mp.shape)}, {tuple(Sp.shape)}"
            )
        Pp = torch.linalg.inv(Sp)
        hp, cp, logdet_Sp = Pp @ mp, float(mp @ Pp @ mp), float(torch.logdet(Sp))
    Pk = torch.linalg.inv(mixture.scales)  # (K, d, d)
    hk = (Pk @ mixture.means.unsqueeze(-1)).squeeze(-1)
    Pn = Pk + Pp - P0
    Pn = 0.5 * (Pn + Pn.transpose(-1, -2))
    _, info = torch.linalg.cholesky_ex(Pn)
    bad = torch.nonzero(info != 0).flatten().tolist()
    if bad:
        raise ValueError(
            f"SNPE-A correction failed: the corrected precision of component(s) {bad} is not "
            "positive definite (the proposal is narrower than the estimate)"
        )
    Sn = torch.linalg.inv(Pn)
    hn = hk + hp - P0 @ m0
    mn = (Sn @ hn.unsqueeze(-1)).squeeze(-1)
    quad = (mixture.means * hk).sum(-1) + cp - float(m0 @ P0 @ m0) - (mn * hn).sum(-1)
    log_c = 0.5 * (torch.logdet(Sn) + float(torch.logdet(S0)) - torch.logdet(mixture.scales) - logdet_Sp) - 0.5 * quad
    log_w = torch.log(mixture.weights) + log_c
    return StudentTMixture(torch.softmax(log_w, 0), mn, Sn, dof=None)


class FailureClassifier:
    """P(bad simulation | θ) by logistic regression (scikit-learn), paper section 3.

    θ is z-scored with the given shift and scale before fitting; with ``degree`` > 1 the
    logistic regression sees all monomials of the z-scored θ up to that degree (scikit-learn
    ``PolynomialFeatures``), so that it can represent a curved or two-sided failure region.
    Until it has seen both good and bad runs it accepts everything.
    """

    def __init__(
        self,
        *,
        shift: torch.Tensor,
        scale: torch.Tensor,
        threshold: float = 0.5,
        degree: int = 1,
        random_state: int = 0,
    ) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import PolynomialFeatures

        if not isinstance(degree, int) or degree < 1:
            raise ValueError(f"degree must be a positive integer; got {degree!r}")
        self.shift, self.scale = shift.double().cpu(), scale.double().cpu()
        self.threshold, self.degree = float(threshold), degree
        lr = LogisticRegression(random_state=random_state, max_iter=1000)
        self.model = lr if degree == 1 else make_pipeline(PolynomialFeatures(degree, include_bias=False), lr)
        self.fitted = False

    def fit(self, theta: torch.Tensor, bad: torch.Tensor) -> FailureClassifier:
        y = bad.cpu().numpy().astype(int)
        if y.min() == y.max():
            self.fitted = False
            return self
        self.model.fit(self._features(theta), y)
        self.fitted = True
        return self

    def _features(self, theta: torch.Tensor) -> np.ndarray:
        return ((theta.double().cpu() - self.shift) / self.scale).numpy()

    def prob_bad(self, theta: torch.Tensor) -> torch.Tensor:
        """Predicted P(bad | θ), ``(n,)`` (0 before the classifier is fitted)."""
        if not self.fitted:
            return torch.zeros(theta.shape[0], dtype=torch.float64)
        return torch.from_numpy(self.model.predict_proba(self._features(theta))[:, 1])

    def accept(self, theta: torch.Tensor) -> torch.Tensor:
        """Boolean ``(n,)``: predicted P(bad) ≤ threshold."""
        return self.prob_bad(theta) <= self.threshold


class SNPEProposal:
    """Proposal p̃ = α·prior + (1 − α)·q̃, drawn by rejection inside the prior's support.

    Args:
        prior: prior with ``sample``, ``log_prob``, ``contains`` and ``dim``.
        mixture: :class:`StudentTMixture` q̃, or ``None`` for the prior itself (round 1).
        prior_mixin: α in [0, 1].
        classifier: optional :class:`FailureClassifier`; draws it predicts bad are rejected.
    """

    def __init__(
        self,
        prior,
        mixture: StudentTMixture | None = None,
        *,
        prior_mixin: float = 0.0,
        classifier: FailureClassifier | None = None,
    ) -> None:
        if not 0.0 <= float(prior_mixin) <= 1.0:
            raise ValueError(f"prior_mixin must lie in [0, 1]; got {prior_mixin!r}")
        if mixture is not None and mixture.dim != prior.dim:
            raise ValueError(f"mixture has dimension {mixture.dim} but the prior {prior.dim}")
        self.prior, self.mixture, self.alpha, self.classifier = prior, mixture, float(prior_mixin), classifier
        self.n_rejected_support = 0
        self.n_rejected_classifier = 0

    @property
    def is_prior(self) -> bool:
        return self.mixture is None or self.alpha == 1.0

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        """log(α p(θ) + (1 − α) q̃(θ)), untruncated, ``(n,)`` float64."""
        lp = self.prior.log_prob(theta).double()
        if self.is_prior:
            return lp
        lq = self.mixture.log_prob(theta)
        if self.alpha == 0.0:
            return lq
        return torch.logaddexp(math.log(self.alpha) + lp, math.log1p(-self.alpha) + lq)

    def _draw(self, n: int, generator) -> torch.Tensor:
        if self.is_prior:
            return _sample_prior(self.prior, n, generator)
        th = self.mixture.sample(n, generator=generator).float()
        if self.alpha > 0:
            use_prior = torch.rand(n, generator=generator) < self.alpha
            if use_prior.any():
                th[use_prior] = _sample_prior(self.prior, int(use_prior.sum()), generator)
        return th

    def sample(self, n: int, *, generator: torch.Generator | None = None, max_batches: int = 1000) -> torch.Tensor:
        """``n`` draws ``(n, d)`` inside the prior's support (and accepted by the classifier)."""
        out, have = [], 0
        for _ in range(max_batches):
            m = max(n - have, 16) * 2
            th = self._draw(m, generator)
            inside = self.prior.contains(th)
            self.n_rejected_support += int((~inside).sum())
            th = th[inside]
            if self.classifier is not None and th.shape[0]:
                ok = self.classifier.accept(th)
                self.n_rejected_classifier += int((~ok).sum())
                th = th[ok]
            out.append(th)
            have += th.shape[0]
            if have >= n:
                return torch.cat(out)[:n]
        raise RuntimeError(
            f"the proposal accepted only {have} of {n} draws after {max_batches} batches "
            f"(prior support or failure classifier rejects nearly everything)"
        )


def _sample_prior(prior, n: int, generator) -> torch.Tensor:
    theta = prior.sample(n, generator=generator)
    if not isinstance(theta, torch.Tensor) or theta.shape != (n, prior.dim):
        shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise ValueError(f"prior.sample({n}) must return a tensor of shape ({n}, {prior.dim}); got {shape}")
    if torch.isnan(theta).any():
        raise ValueError("prior returned NaN parameters")
    return theta.float()


# -- weights -------------------------------------------------------------------------------------
def effective_sample_size(weights: torch.Tensor) -> float:
    """(Σw)² / Σw²."""
    w = weights.double()
    return float(w.sum() ** 2 / (w * w).sum())


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
        raise ValueError(f"theta must have shape (n, {prior.dim}) with n >= 1; got {tuple(theta.shape)}")
    if torch.isnan(theta).any():
        raise ValueError("theta contains NaN")
    if proposal.is_prior:
        w = torch.ones(theta.shape[0], dtype=torch.float64)
    else:
        logw = prior.log_prob(theta).double() - proposal.log_prob(theta)
        if not torch.isfinite(logw).all():
            raise ValueError("importance weights are not finite (theta outside the prior's support?)")
        w = torch.exp(logw) if not normalize else torch.exp(logw - logw.max())
    if normalize:
        w = w / w.mean()
    return w.float(), effective_sample_size(w)


def calibration_kernel(
    x_z: torch.Tensor, x_o_z: torch.Tensor, *, kind: str = "gaussian", bandwidth: float = 1.0
) -> torch.Tensor:
    """K(‖x − x_o‖ / h) on z-scored data (missing entries ignored), ``(n,)``.

    ``kind``: ``"gaussian"`` exp(−½u²) or ``"uniform"`` 1[u ≤ 1].
    """
    if kind not in ("gaussian", "uniform"):
        raise ValueError(f"kind must be 'gaussian' or 'uniform'; got {kind!r}")
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive; got {bandwidth!r}")
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
            raise ValueError(f"density models {density.value_dim} parameters but the prior has {prior.dim}")
        x_o = x_o if isinstance(x_o, torch.Tensor) else as_tensor(x_o, "x_o")
        x_o = x_o.float().reshape(-1) if x_o.ndim == 2 and x_o.shape[0] == 1 else x_o.float()
        if x_o.ndim != 1 or x_o.numel() != density.context_dim:
            raise ValueError(
                f"x_o must have shape ({density.context_dim},) to match the density's context; got {tuple(x_o.shape)}"
            )
        if torch.isinf(x_o).any() or (torch.isnan(x_o).any() and not density.impute):
            raise ValueError("x_o contains NaN or infinite values")
        if failures not in ("resample", "classifier"):
            raise ValueError(f"failures must be 'resample' or 'classifier'; got {failures!r}")
        if kernel not in (None, "gaussian", "uniform"):
            raise ValueError(f"kernel must be None, 'gaussian' or 'uniform'; got {kernel!r}")
        for name, v in (("epochs", epochs), ("batch_size", batch_size)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if not 0.0 <= float(prior_mixin) <= 1.0:
            raise ValueError(f"prior_mixin must lie in [0, 1]; got {prior_mixin!r}")
        self.prior, self.simulator, self.x_o, self.density = prior, simulator, x_o, density
        self.importance_weighting, self.prior_mixin, self.proposal_dof = importance_weighting, prior_mixin, proposal_dof
        self.failures, self.kernel, self.kernel_bandwidth = failures, kernel, float(kernel_bandwidth)
        self.classifier_degree, self.continual_learning = classifier_degree, bool(continual_learning)
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
        return SNPEProposal(self.prior, mixture, prior_mixin=self.prior_mixin if self.rounds else 0.0, classifier=clf)

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
                raise ValueError(f"simulator's bad mask must have {theta.shape[0]} entries; got {bad.numel()}")
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
        raise RuntimeError(f"only {have} of {n} simulations succeeded after {self.max_attempts} attempts")

    # -- one round --------------------------------------------------------------------------------
    def run_round(self, n_simulations: int, *, generator: torch.Generator | None = None) -> SNPEBRound:
        """Propose, simulate (resampling failures), weight, and train once (one round)."""
        if not isinstance(n_simulations, int) or isinstance(n_simulations, bool) or n_simulations < 2:
            raise ValueError(
                f"n_simulations must be an integer >= 2 (an empty budget cannot be used); got {n_simulations!r}"
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

    def run(self, n_rounds: int, n_simulations, *, generator: torch.Generator | None = None) -> SNPEB:
        """Run ``n_rounds`` rounds; ``n_simulations`` is one number or one per round."""
        if not isinstance(n_rounds, int) or n_rounds < 1:
            raise ValueError(f"n_rounds must be a positive integer; got {n_rounds!r}")
        sims = [n_simulations] * n_rounds if isinstance(n_simulations, int) else list(n_simulations)
        if len(sims) != n_rounds:
            raise ValueError(f"n_simulations must be one number or {n_rounds} numbers; got {len(sims)}")
        for n in sims:
            self.run_round(n, generator=generator)
        return self

    # -- results ------------------------------------------------------------------------------------
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
        """``n`` draws from q(θ | x_o) (mean weights), inside the prior's support if ``truncate``."""
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
    """Mean, standard deviation and central ``level`` interval of every marginal of ``samples`` ``(n, d)``."""
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
    if not isinstance(n_rounds, int) or n_rounds < 2:
        raise ValueError(f"n_rounds must be an integer >= 2; got {n_rounds!r}")
    weighted = SNPEB(prior, simulator, x_o, density, importance_weighting=True, **settings)
    weighted.run_round(n_simulations, generator=generator)
    unweighted = weighted.clone(importance_weighting=False)
    for _ in range(n_rounds - 1):
        weighted.run_round(n_simulations, generator=generator)
        unweighted.run_round(n_simulations, generator=generator)
    return weighted, unweighted
