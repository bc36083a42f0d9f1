"""The sequential NPE methods as small objects: APT's atomic loss, naive SNPE, pooled SNPE-B.

:func:`~neuroinverse.inference.npe.run_npe` runs one loop for every method; a method
(:class:`NPEMethod`) only says which simulations it trains on and with which minibatch loss.

* :class:`APT`: the atomic loss of Greenberg, Nonnenmacher & Macke, "Automatic Posterior
  Transformation for Likelihood-Free Inference", ICML 2019 (arXiv:1905.07488), Sec. 3
  (:func:`apt_atomic_loss`), on all rounds pooled;
* :class:`NaiveSNPE`: uncorrected maximum likelihood on the latest round (a baseline);
* :class:`PooledSNPEB`: importance-weighted maximum likelihood (Lueckmann et al., NeurIPS
  2017) with the mixture of all proposals so far (:func:`log_mixture_proposal`), as sbi's
  NPE_B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch

from ..models.density import ConditionalDensity
from .snpe import self_normalized_weights

__all__ = [
    "METHODS",
    "NPEMethod",
    "APT",
    "NaiveSNPE",
    "PooledSNPEB",
    "npe_method",
    "RoundData",
    "sample_atom_indices",
    "apt_atomic_loss",
    "log_mixture_proposal",
]


# ---------------------------------------------------------------------------------------------
# The atomic loss
# ---------------------------------------------------------------------------------------------
def sample_atom_indices(
    batch_size: int,
    num_atoms: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Indices of the contrasting atoms of every row of a minibatch.

    Row ``i`` gets ``num_atoms - 1`` distinct indices drawn uniformly without replacement from
    the other ``batch_size - 1`` rows (never ``i`` itself), so that the true θ_i is never
    duplicated among its atoms.

    Returns:
        ``(batch_size, num_atoms - 1)`` long tensor.
    """
    if not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(
            f"batch_size must be an integer >= 2 for atomic proposals; got {batch_size!r}"
        )
    if not isinstance(num_atoms, int) or not 2 <= num_atoms <= batch_size:
        raise ValueError(
            f"num_atoms must be an integer in [2, batch_size={batch_size}]; got {num_atoms!r}"
        )
    gdev = generator.device if generator is not None else torch.device(device)
    weights = 1.0 - torch.eye(batch_size, device=gdev)
    idx = torch.multinomial(weights, num_atoms - 1, replacement=False, generator=generator)
    return idx.to(device)


def apt_atomic_loss(
    density: ConditionalDensity,
    theta: torch.Tensor,
    x: torch.Tensor,
    *,
    prior_log_prob: Callable[[torch.Tensor], torch.Tensor],
    num_atoms: int,
    generator: torch.Generator | None = None,
    reduce: bool = True,
) -> torch.Tensor:
    """APT's atomic proposal-posterior loss (Greenberg et al. 2019, Sec. 3, atomic proposals).

    For each row i, the atoms are θ_i followed by θ_j for the ``num_atoms - 1`` indices of
    :func:`sample_atom_indices`; with logits ``ℓ_ij = log q(θ_j | x_i) − log p(θ_j)``
    the loss is ``−ℓ_i0 + logsumexp_j ℓ_ij`` (cross-entropy with target atom 0).

    Args:
        density: ``q(θ | x)``.
        theta: ``(B, d_θ)``.
        x: ``(B, d_x)``.
        prior_log_prob: ``log p(θ)`` for ``(n, d_θ)`` → ``(n,)``.
        num_atoms: M, ``2 <= M <= B``.
        generator: draws the atoms.
        reduce: return the mean over rows (else the ``(B,)`` per-row losses).
    """
    B = theta.shape[0]
    if x.shape[0] != B:
        raise ValueError(f"theta and x must have the same number of rows; got {B} and {x.shape[0]}")
    others = sample_atom_indices(B, num_atoms, generator=generator, device=theta.device)
    idx = torch.cat([torch.arange(B, device=theta.device)[:, None], others], 1)  # (B, M)
    atoms = theta[idx].reshape(B * num_atoms, -1)
    x_rep = x.repeat_interleave(num_atoms, 0)
    log_q = density.log_prob(atoms, x_rep).reshape(B, num_atoms)
    log_p = prior_log_prob(atoms).reshape(B, num_atoms).to(log_q)
    logits = log_q - log_p
    loss = torch.logsumexp(logits, 1) - logits[:, 0]
    return loss.mean() if reduce else loss


def log_mixture_proposal(
    theta: torch.Tensor, prior, proposals: list, counts: list[int]
) -> torch.Tensor:
    """log p̃(θ) of the mixture of all proposals so far, weighted by their simulation counts.

    ``proposals[r]`` is ``None`` for the prior, else ``(density_snapshot, x_o, acceptance)``;
    a restricted proposal's density is ``q(θ | x_o) / acceptance`` inside the support.
    """
    total = sum(counts)
    terms = []
    log_prior = prior.log_prob(theta).to(theta)
    for prop, c in zip(proposals, counts, strict=True):
        if prop is None:
            lp = log_prior
        else:
            dens, x_o, acc = prop
            lp = dens.log_prob(theta, x_o) - math.log(acc)
            lp = torch.where(torch.isfinite(log_prior), lp, torch.full_like(lp, -math.inf))
        terms.append(lp + math.log(c / total))
    return torch.logsumexp(torch.stack(terms), 0)


# ---------------------------------------------------------------------------------------------
# The methods: what each trains on and with which loss
# ---------------------------------------------------------------------------------------------
BatchLoss = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


@dataclass(frozen=True)
class RoundData:
    """Every simulation so far, on the density's device, for :meth:`NPEMethod.round_loss`.

    ``theta``/``x``: ``(n, ·)``; ``round_index``: the round (0-based) each row was simulated
    in; ``train``: the training rows (not held out); ``proposals``: per round, ``None`` (the
    prior, or not kept) or ``(frozen density, x_o, acceptance rate)``.
    """

    theta: torch.Tensor
    x: torch.Tensor
    round_index: torch.Tensor
    train: torch.Tensor
    proposals: tuple


@dataclass(frozen=True)
class NPEMethod:
    """One sequential NPE method, as :func:`run_npe` uses it; round 1 is maximum likelihood for all.

    A method says which of the simulations so far it trains on in round ``r`` (0-based,
    :meth:`trains_on`) and returns the minibatch loss of that round (:meth:`round_loss`, a
    function of the row indices and a generator). This base class is amortised NPE: maximum
    likelihood on every simulation. Subclasses change one of the two and nothing else.
    """

    name: ClassVar[str] = "npe"
    #: whether :func:`run_npe` keeps a frozen copy of every round's proposal (for weights)
    keeps_proposals: ClassVar[bool] = False

    def __str__(self) -> str:
        return self.name

    def trains_on(self, round_index: torch.Tensor, r: int) -> torch.Tensor:
        """Boolean mask of the simulations (rows of all rounds so far) used in round ``r``."""
        return torch.ones_like(round_index, dtype=torch.bool)

    def round_loss(self, r: int, density: ConditionalDensity, prior, data: RoundData) -> BatchLoss:
        """The loss of a minibatch of rows ``idx`` in round ``r``."""

        def loss(idx: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
            return -density.log_prob(data.theta[idx], data.x[idx]).mean()

        return loss


@dataclass(frozen=True)
class APT(NPEMethod):
    """APT with atomic proposals on all rounds pooled (Greenberg et al. 2019, Sec. 3).

    Args:
        num_atoms: atoms per row (M >= 2; clipped to the minibatch size).
        combined_loss: add the maximum-likelihood loss of the prior-drawn (round-1) rows to
            the atomic loss (sbi's ``use_combined_loss``).
    """

    name: ClassVar[str] = "apt"
    num_atoms: int = 10
    combined_loss: bool = False

    def __post_init__(self) -> None:
        if (
            not isinstance(self.num_atoms, int)
            or isinstance(self.num_atoms, bool)
            or self.num_atoms < 2
        ):
            raise ValueError(f"num_atoms must be an integer >= 2; got {self.num_atoms!r}")

    def round_loss(self, r: int, density: ConditionalDensity, prior, data: RoundData) -> BatchLoss:
        ml = super().round_loss(r, density, prior, data)
        if r == 0:
            return ml
        from_prior = data.round_index == 0

        def loss(idx: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
            if idx.numel() < 2:
                return ml(idx, gen)
            th, xx = data.theta[idx], data.x[idx]
            m = min(self.num_atoms, idx.numel())
            out = apt_atomic_loss(
                density, th, xx, prior_log_prob=prior.log_prob, num_atoms=m, generator=gen
            )
            if self.combined_loss:
                fp = from_prior[idx]
                if bool(fp.any()):
                    out = out - density.log_prob(th[fp], xx[fp]).sum() / idx.numel()
            return out

        return loss


@dataclass(frozen=True)
class NaiveSNPE(NPEMethod):
    """Uncorrected maximum likelihood on the latest round's simulations only (a baseline)."""

    name: ClassVar[str] = "naive"

    def trains_on(self, round_index: torch.Tensor, r: int) -> torch.Tensor:
        return round_index == r


@dataclass(frozen=True)
class PooledSNPEB(NPEMethod):
    """Importance-weighted maximum likelihood on all rounds pooled (Lueckmann et al. 2017).

    Weights ``p(θ) / p̃(θ)`` with p̃ the mixture of every proposal so far, weighted by its
    share of the simulations, self-normalised over the training rows (as sbi's NPE_B). The
    delfi-style algorithm of the paper (one round's data per round, Student-t proposals with a
    prior mix-in, a Bayesian MDN) is :class:`~neuroinverse.inference.snpe.SNPEB`; both weight
    with :func:`~neuroinverse.inference.snpe.self_normalized_weights`.
    """

    name: ClassVar[str] = "snpe-b"
    keeps_proposals: ClassVar[bool] = True

    def round_loss(self, r: int, density: ConditionalDensity, prior, data: RoundData) -> BatchLoss:
        if r == 0:
            return super().round_loss(r, density, prior, data)
        with torch.no_grad():
            counts = [int((data.round_index == k).sum()) for k in range(r + 1)]
            log_w = prior.log_prob(data.theta).to(data.theta) - log_mixture_proposal(
                data.theta, prior, list(data.proposals), counts
            )
            w = self_normalized_weights(log_w, over=data.train)

        def loss(idx: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
            return -(w[idx] * density.log_prob(data.theta[idx], data.x[idx])).mean()

        return loss


#: The methods by name (``run_npe(method="apt")`` is ``run_npe(method=APT())``).
METHODS: dict[str, type[NPEMethod]] = {"apt": APT, "naive": NaiveSNPE, "snpe-b": PooledSNPEB}


def npe_method(method: str | NPEMethod) -> NPEMethod:
    """``method`` itself, or the method of that name with its default options."""
    if isinstance(method, NPEMethod):
        return method
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be an NPEMethod or one of {tuple(METHODS)}; got {method!r}")
    return METHODS[method]()
