"""SNPE-B's proposals: Student-t mixtures with a prior mix-in, and the failure classifier.

Lueckmann, Goncalves, Bassetto, Öcal, Nonnenmacher & Macke, "Flexible statistical inference
for mechanistic models of neural dynamics", NIPS 2017 (arXiv:1711.01861): section 2 (the
proposal of each round: the posterior estimate as a mixture of Student-t distributions, mixed
with the prior, drawn inside the prior's support) and section 3 (a classifier that rejects
parameters predicted to make the simulator fail). Also the SNPE-A analytic correction of a
Gaussian-mixture proposal posterior (Papamakarios & Murray 2016), for comparison. The
algorithm that uses them is :class:`neuroinverse.inference.snpe.SNPEB`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import as_tensor
from .abc import sample_prior_checked

__all__ = ["StudentTMixture", "SNPEProposal", "FailureClassifier", "snpe_a_correction"]


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
            f"proposal_mean must be ({d},) and proposal_cov ({d}, {d}); "
            f"got {tuple(m0.shape)}, {tuple(S0.shape)}"
        )
    if (prior_mean is None) != (prior_cov is None):
        raise ValueError(
            "give both prior_mean and prior_cov (Gaussian prior) or neither (uniform prior)"
        )
    P0 = torch.linalg.inv(S0)
    if prior_mean is None:
        Pp, hp, cp, logdet_Sp = (
            torch.zeros(d, d, dtype=torch.float64),
            torch.zeros(d, dtype=torch.float64),
            0.0,
            0.0,
        )
    else:
        mp = as_tensor(prior_mean, "prior_mean", dtype=torch.float64).reshape(-1)
        Sp = as_tensor(prior_cov, "prior_cov", dtype=torch.float64)
        if mp.shape != (d,) or Sp.shape != (d, d):
            raise ValueError(
                f"prior_mean must be ({d},) and prior_cov ({d}, {d}); "
                f"got {tuple(mp.shape)}, {tuple(Sp.shape)}"
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
    log_c = (
        0.5
        * (torch.logdet(Sn) + float(torch.logdet(S0)) - torch.logdet(mixture.scales) - logdet_Sp)
        - 0.5 * quad
    )
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
        self.model = (
            lr if degree == 1 else make_pipeline(PolynomialFeatures(degree, include_bias=False), lr)
        )
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
        self.prior, self.mixture, self.alpha, self.classifier = (
            prior,
            mixture,
            float(prior_mixin),
            classifier,
        )
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
            return sample_prior_checked(self.prior, n, generator=generator)
        th = self.mixture.sample(n, generator=generator).float()
        if self.alpha > 0:
            use_prior = torch.rand(n, generator=generator) < self.alpha
            if use_prior.any():
                th[use_prior] = sample_prior_checked(
                    self.prior, int(use_prior.sum()), generator=generator
                )
        return th

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, max_batches: int = 1000
    ) -> torch.Tensor:
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
