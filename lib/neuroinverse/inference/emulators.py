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
* The two acquisition families named in the paper's abstract: uncertainty about the
  posterior, :func:`log_alpha_post`, and information gain about the emulator parameters,
  :func:`alpha_info_moment_matched` and :func:`alpha_info_mc` (BALD-style).
* Candidate generation (:func:`generate_candidates`), greedy batch selection with an
  exclusion radius (:func:`select_batch`) and the active-learning loop
  (:func:`run_active_learning`, with random/prior acquisition as the baseline).
* The synthetic-likelihood posterior on a 1-D/2-D grid (:func:`grid_posterior`,
  :func:`sample_grid`) or by vectorised slice sampling (:func:`slice_sample`, with
  :func:`split_rhat`), and grid diagnostics (:func:`fraction_in_hpd`).

The paper's text was not available to the book's authors, only its abstract. The ensemble
(instead of the prototype's Bayesian network with factorised Gaussian weights), the exact
acquisition formulas, candidate generation and batch selection are **the book's
reconstruction** (marked as such below), following the prototype code's ideas and
standard practice (deep ensembles; BALD).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .._checks import as_tensor, check_positive_int, check_range, check_rows
from ..models.density import ConditionalDensity, ConditionalFlow
from ..training import fit as fit_loop
from .abc import sample_prior_checked, simulate_checked

__all__ = [
    "EmulatorEnsemble",
    "FitLog",
    "make_flow_ensemble",
    "log_alpha_post",
    "alpha_info_moment_matched",
    "alpha_info_mc",
    "generate_candidates",
    "select_batch",
    "ActiveLearningResult",
    "run_active_learning",
    "posterior_samples",
    "grid_posterior",
    "sample_grid",
    "grid_kde",
    "hpd_threshold",
    "fraction_in_hpd",
    "slice_sample",
    "split_rhat",
    "ACQUISITIONS",
]

#: Acquisition rules of :func:`run_active_learning`: posterior variance, information gain,
#: and the baseline that simulates prior draws.
ACQUISITIONS: tuple[str, ...] = ("post", "info", "prior")


# ---------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------
def _observation(x_o, dim: int) -> torch.Tensor:
    """The observation as a ``(dim,)`` tensor; ``ValueError`` naming ``x_o`` on a mismatch."""
    t = x_o if isinstance(x_o, torch.Tensor) else as_tensor(x_o, "x_o")
    t = t.float().reshape(-1) if t.ndim <= 1 or (t.ndim == 2 and t.shape[0] == 1) else t
    if t.ndim != 1 or t.numel() != dim:
        raise ValueError(f"x_o must have {dim} entries (the emulator's data dimension); got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("x_o contains NaN or infinite values")
    return t


# ---------------------------------------------------------------------------------------------
# all members in one batched pass (a speed-up; same densities as the members' own log_prob)
# ---------------------------------------------------------------------------------------------
_ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.ELU, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.Sigmoid, nn.Softplus)


class _BatchedLinear(torch.autograd.Function):
    """``h_m W_mᵀ + b_m`` for every member m at once: ``h (M, n, i)``, ``W (M, o, i)``, ``b (M, o)``.

    The same products as ``F.linear`` on each member (whose weight gradient is ``gradᵀ h``
    for a row-major weight), batched with ``bmm``, so that the members' densities and
    gradients equal those of evaluating and training each member on its own, bit for bit on
    the CPUs we tested. Problems so small that ``bmm`` switches to its naive kernel
    (n·i·o < 400) loop over the members instead.
    """

    @staticmethod
    def _small(h: torch.Tensor, w: torch.Tensor) -> bool:
        return h.shape[1] * w.shape[1] * w.shape[2] < 400

    @staticmethod
    def forward(ctx, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(h, w)
        if _BatchedLinear._small(h, w):
            return torch.stack([nn.functional.linear(h[m], w[m], b[m]) for m in range(w.shape[0])])
        return torch.baddbmm(b[:, None], h, w.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, w = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad
        M = w.shape[0]
        if _BatchedLinear._small(h, w):
            grad_h = torch.stack([grad[m].mm(w[m]) for m in range(M)]) if need_h else None
            grad_w = torch.stack([grad[m].t().mm(h[m]) for m in range(M)]) if need_w else None
            grad_b = torch.stack([grad[m].sum(0) for m in range(M)]) if need_b else None
        else:
            grad_h = torch.bmm(grad, w) if need_h else None
            grad_w = torch.bmm(grad.transpose(1, 2), h) if need_w else None
            grad_b = grad.sum(1) if need_b else None
        return grad_h, grad_w, grad_b


class _ForeachAdam:
    """Adam (Kingma & Ba 2015; β = (0.9, 0.999), ε = 1e-8, no weight decay) on a few tensors.

    The update of ``torch.optim.Adam(params, lr, foreach=True)``, operation for operation
    (the same ``torch._foreach_*`` calls with the same scalars), without the optimiser
    framework's per-step bookkeeping, and without its first construction importing
    ``torch._dynamo`` (about 2 s of CPU time in a chapter that never compiles anything).
    """

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, float(lr), betas, float(eps)
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        grads = [p.grad for p in self.params]
        self.steps += 1
        torch._foreach_lerp_(self.exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(self.exp_avg_sqs, beta2)
        torch._foreach_addcmul_(self.exp_avg_sqs, grads, grads, 1 - beta2)
        n = len(self.params)
        bias_correction1 = 1 - beta1 ** float(self.steps)
        bias_correction2 = 1 - beta2 ** float(self.steps)
        denom = torch._foreach_sqrt(self.exp_avg_sqs)
        torch._foreach_div_(denom, [bias_correction2**0.5] * n)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.exp_avgs, denom, [(self.lr / bias_correction1) * -1] * n)


class _FusedFlows:
    """The log densities of M affine-MAF members of one architecture, computed together.

    Training M small flows one after another costs M sets of tiny matrix products and M
    autograd graphs per step, which on a CPU is mostly per-operation overhead. When every
    member is a :class:`~neuroinverse.models.density.ConditionalFlow` wrapping zuko's affine
    MAF (``kind="maf"``: masked autoregressive transforms, or the element-wise transform zuko
    uses for a 1-D value, with the monotonic affine univariate transform and a standard
    normal base) and all members share the architecture, the members' weights are stacked
    along a leading member axis and every layer becomes one batched matrix product
    (``torch.baddbmm``) for all members. The result is each member's own ``log_prob`` (same
    formula, same masks, same z-scoring), up to floating-point rounding.

    :meth:`build` returns ``None`` for any other kind of member; the ensemble then falls back
    to one pass per member.
    """

    def __init__(self, members: Sequence[ConditionalFlow], transforms: list[tuple[bool, list[tuple]]],
                 params: list[list[torch.Tensor]], slope: float, base_loc: torch.Tensor, base_scale: torch.Tensor):
        self.members = list(members)
        self.transforms = transforms  # per transform: (uses the value?, ops)
        self.params = params  # per member, its parameters in the order the ops index them
        self.log_slope = math.log(slope)
        self.base_loc, self.base_scale = base_loc, base_scale
        self.standard_base = bool((base_loc == 0).all() and (base_scale == 1).all())
        dev = self.members[0].device
        self.value_shift = torch.stack([m.value_shift for m in members]).to(dev)[:, None]  # (M, 1, d_v)
        self.value_scale = torch.stack([m.value_scale for m in members]).to(dev)[:, None]
        self.context_shift = torch.stack([m.context_shift for m in members]).to(dev)[:, None]
        self.context_scale = torch.stack([m.context_scale for m in members]).to(dev)[:, None]
        self.log_det_scale = torch.log(self.value_scale[:, 0]).sum(-1)[:, None]  # (M, 1)

    @classmethod
    def build(cls, members: Sequence[ConditionalDensity]) -> _FusedFlows | None:
        """The fused form of ``members``, or ``None`` if they are not identical affine-MAF flows."""
        try:
            import zuko
            from zuko.flows.autoregressive import MaskedAutoregressiveTransform
            from zuko.flows.gaussianization import ElementWiseTransform
            from zuko.nn import Linear as ZukoLinear
            from zuko.nn import MaskedLinear
            from zuko.transforms import MonotonicAffineTransform
        except ImportError:  # pragma: no cover - zuko is a dependency of ConditionalFlow
            return None
        import inspect

        structures, params = [], []
        for member in members:
            if type(member) is not ConditionalFlow or member.kind != "maf" or type(member.flow) is not zuko.flows.MAF:
                return None
            structure, plist = [], []
            for t in member.flow.transform.transforms:
                if type(t) is MaskedAutoregressiveTransform:
                    uses_value = True
                elif type(t) is ElementWiseTransform and hasattr(t, "hyper"):
                    uses_value = False
                else:
                    return None
                if t.univariate is not MonotonicAffineTransform or [tuple(s) for s in t.shapes] != [(), ()]:
                    return None
                ops = []
                for layer in t.hyper:
                    if type(layer) in (MaskedLinear, nn.Linear, ZukoLinear):
                        if layer.bias is None or layer.weight.ndim != 2:
                            return None
                        mask = layer.mask if type(layer) is MaskedLinear else None
                        ops.append(("linear", len(plist), len(plist) + 1, mask))
                        plist += [layer.weight, layer.bias]
                    elif type(layer) in _ACTIVATIONS:
                        ops.append(("act", layer))
                    else:
                        return None
                structure.append((uses_value, ops))
            if sum(1 for _ in member.parameters()) != len(plist):
                return None  # parameters the fused pass would not train
            structures.append(structure)
            params.append(plist)
        first = structures[0]
        for s, plist in zip(structures[1:], params[1:], strict=True):
            if len(s) != len(first) or any(
                    u != u0 or len(ops) != len(ops0) for (u, ops), (u0, ops0) in zip(s, first, strict=True)):
                return None
            for (_, ops), (_, ops0) in zip(s, first, strict=True):
                for op, op0 in zip(ops, ops0, strict=True):
                    if op[0] != op0[0]:
                        return None
                    if op[0] == "act" and (type(op[1]) is not type(op0[1]) or repr(op[1]) != repr(op0[1])):
                        return None
                    if op[0] == "linear" and ((op[3] is None) != (op0[3] is None)
                                              or (op[3] is not None and not torch.equal(op[3], op0[3]))):
                        return None
            if any(p.shape != p0.shape for p, p0 in zip(plist, params[0], strict=True)):
                return None
        bases = [m.flow.base() for m in members]
        if any(type(b) is not zuko.distributions.DiagNormal for b in bases):
            return None
        loc, scale = bases[0].base_dist.loc, bases[0].base_dist.scale
        if any(not (torch.equal(b.base_dist.loc, loc) and torch.equal(b.base_dist.scale, scale)) for b in bases):
            return None
        slope = inspect.signature(MonotonicAffineTransform).parameters["slope"].default
        transforms = [(u, [(op[0], op[1], op[2], None if op[3] is None or bool(op[3].all())
                            else op[3].to(torch.float32)) if op[0] == "linear" else op for op in ops])
                      for u, ops in first]  # an all-ones mask is dropped (W · 1 = W)
        return cls(members, transforms, params, float(slope), loc, scale)

    @staticmethod
    def _linear(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _BatchedLinear.apply(h, w, b)

    def stacked(self) -> list[torch.Tensor]:
        """The members' parameters stacked along a leading member axis (differentiable)."""
        return [torch.stack([plist[k] for plist in self.params]) for k in range(len(self.params[0]))]

    @torch.no_grad()
    def write_back(self, stacked: Sequence[torch.Tensor]) -> None:
        """Copy stacked parameters into the members' own."""
        for m, plist in enumerate(self.params):
            for p, s in zip(plist, stacked, strict=True):
                p.copy_(s[m])

    def standardize(self, x: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member's z-scored ``x`` and ``θ``, ``(M, n, d)`` each (``n`` may be 1 for one of them)."""
        return (x - self.value_shift) / self.value_scale, (theta - self.context_shift) / self.context_scale

    def log_prob(self, stacked: Sequence[torch.Tensor], x: torch.Tensor, theta: torch.Tensor,
                 cap: float | None) -> torch.Tensor:
        """``log q_m(x_{m,i} | θ_{m,i})``, shape ``(M, n)``, with the standardised-density cap.

        ``x`` ``(M, n, d_x)`` or ``(n, d_x)`` (shared by all members), ``theta`` likewise.
        """
        return self.log_prob_z(stacked, *self.standardize(x, theta), cap)

    def log_prob_z(self, stacked: Sequence[torch.Tensor], vz: torch.Tensor, cz: torch.Tensor,
                   cap: float | None) -> torch.Tensor:
        """:meth:`log_prob` from already z-scored ``vz`` ``(M, n, d_x)`` and ``cz`` ``(M, n, d_θ)``."""
        n = max(vz.shape[1], cz.shape[1])
        vz, cz = vz.expand(-1, n, -1), cz.expand(-1, n, -1)
        z, ladj = vz, 0
        for uses_value, ops in self.transforms:
            h = torch.cat([z, cz], -1) if uses_value else cz
            for op in ops:
                if op[0] == "linear":
                    w = stacked[op[1]] if op[3] is None else stacked[op[1]] * op[3]
                    h = self._linear(h, w, stacked[op[2]])
                else:
                    h = op[1](h)
            phi = h.unflatten(-1, (-1, 2))
            shift, a = phi[..., 0], phi[..., 1]
            log_scale = a / (1 + abs(a / self.log_slope))
            z = z * log_scale.exp() + shift
            ladj = ladj + log_scale.sum(-1)
        if self.standard_base:  # the same numbers as the general formula below, in fewer operations
            base = -(z**2) / 2 - math.log(math.sqrt(2 * math.pi))
        else:
            var = self.base_scale**2
            base = -((z - self.base_loc) ** 2) / (2 * var) - self.base_scale.log() - math.log(math.sqrt(2 * math.pi))
        lp = base.sum(-1) + ladj - self.log_det_scale
        if cap is None:
            return lp
        return torch.clamp(lp + self.log_det_scale, max=cap) - self.log_det_scale


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

    def __init__(self, members: Sequence[ConditionalDensity], *, log_density_cap: float | None | str = "auto",
                 fused: bool = True):
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("members must hold at least one ConditionalDensity")
        for i, m in enumerate(members):
            if not isinstance(m, ConditionalDensity):
                raise ValueError(f"members[{i}] must be a ConditionalDensity; got {type(m).__name__}")
        dims = {(m.value_dim, m.context_dim) for m in members}
        if len(dims) != 1:
            raise ValueError(f"members must share (value_dim, context_dim); got {sorted(dims)}")
        self.members = nn.ModuleList(members)
        self.x_dim, self.theta_dim = dims.pop()
        if log_density_cap == "auto":
            log_density_cap = self.x_dim * (5.0 - 0.5 * math.log(2 * math.pi))
        if log_density_cap is not None and not math.isfinite(float(log_density_cap)):
            raise ValueError(f"log_density_cap must be a finite number or None; got {log_density_cap!r}")
        self.log_density_cap = None if log_density_cap is None else float(log_density_cap)
        self.fused = bool(fused)

    def _fused(self) -> _FusedFlows | None:
        """The members as one batched computation, or ``None`` (disabled, or members not fusable)."""
        return _FusedFlows.build(self.members) if self.fused else None

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
        x = _observation(x_o, self.x_dim).to(self.device)[None]
        fused = self._fused()
        if fused is not None:  # one batched pass for all members
            return fused.log_prob(fused.stacked(), x, theta, self.log_density_cap)
        x = x.expand(theta.shape[0], -1)
        return torch.stack([self._member_log_prob(m, x, theta) for m in range(self.n_members)])

    def log_likelihood(self, theta, x_o) -> torch.Tensor:
        """The ensemble-mean synthetic log likelihood ``log (1/M) Σ_m q_m(x_o | θ)``, shape ``(n,)``."""
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
        """Unnormalised log posterior ``log p(θ) + log q̄(x_o | θ)``, shape ``(n,)`` (−inf outside the prior)."""
        theta = check_rows(theta, "theta", self.theta_dim)
        lp = prior.log_prob(theta.cpu()).to(self.device)
        ll = self.log_likelihood(theta, x_o)
        return torch.where(torch.isfinite(lp), lp + ll, torch.full_like(ll, -math.inf))

    def sample_x(self, theta, n_samples: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
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
            out.append((z * member.value_scale + member.value_shift).reshape(n, n_samples, self.x_dim))
        return torch.stack(out)

    def predictive_moments(self, theta, n_samples: int, *, generator: torch.Generator | None = None):
        """Monte Carlo mean ``(M, n, d_x)`` and covariance ``(M, n, d_x, d_x)`` of every member's q_m(x | θ)."""
        xs = self.sample_x(theta, n_samples, generator=generator).double()
        mean = xs.mean(2)
        d = xs - mean[:, :, None]
        cov = torch.einsum("mnsi,mnsj->mnij", d, d) / max(n_samples - 1, 1)
        return mean, cov

    # -- acquisition -----------------------------------------------------------------------
    def acquisition(self, kind: str, theta, x_o, prior, *, n_samples: int = 16,
                    estimator: str = "moment", generator: torch.Generator | None = None) -> torch.Tensor:
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
                return log_alpha_post(self.member_log_likelihoods(theta, x_o), prior.log_prob(theta.cpu()))
            if kind == "info":
                if estimator == "moment":
                    return alpha_info_moment_matched(*self.predictive_moments(theta, n_samples, generator=generator))
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
    def fit(self, theta, x, *, max_steps: int = 300, batch_size: int = 64, lr: float = 1e-3,
            val_fraction: float = 0.1, patience: int = 50, eval_every: int = 10, bootstrap: bool = False,
            clip_norm: float | None = 5.0, seed: int = 0) -> FitLog:
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
            raise ValueError(f"theta and x must have the same number of rows; got {theta.shape[0]} and {x.shape[0]}")
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
            pick = torch.rand(M, n_train, generator=gen, device=gen.device).argsort(1)[:, :B].to(dev)
            return train_idx.gather(1, pick)  # (M, B): each member's minibatch

        fused = self._fused()
        if fused is not None:
            # All members in one batched pass: the stacked weights are trained and written back
            # into the members at the end. Same minibatches, same per-element Adam updates and
            # the same global gradient-norm clip (its norm taken member by member, in the
            # members' parameter order) as the loop over members below, which this reproduces
            # bit for bit on the CPU while taking a fraction of its time.
            stacked = [p.detach().clone().requires_grad_(True) for p in fused.stacked()]
            cap = self.log_density_cap
            opt = _ForeachAdam(stacked, lr=float(lr))
            xz, thz = fused.standardize(x, theta)  # z-scored once: (M, n, d), rows picked per step
            member = torch.arange(M, device=dev)[:, None]

            def clip() -> None:
                # torch.nn.utils.clip_grad_norm_ over the members' own parameters: the norm of
                # the per-tensor norms, taken member by member in the members' parameter order.
                grads = [p.grad for p in stacked]
                norms = torch._foreach_norm([g[m] for m in range(M) for g in grads], 2.0)
                total = torch.linalg.vector_norm(torch.stack(norms), 2.0)
                torch._foreach_mul_(grads, torch.clamp(clip_norm / (total + 1e-6), max=1.0))

            def run_steps(k: int, chunk_seed: int) -> None:
                gen = torch.Generator(device=dev).manual_seed(chunk_seed)
                for step in range(k):
                    opt.zero_grad()
                    idx = pick_rows(gen)
                    loss = -fused.log_prob_z(stacked, xz[member, idx], thz[member, idx], cap).mean(1).sum()
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"loss is {loss.item()} at step {step}")
                    loss.backward()
                    if clip_norm is not None:
                        clip()
                    opt.step()

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
            opt = torch.optim.Adam(self.parameters(), lr=float(lr), foreach=True)

            def loss_fn(step: int, gen: torch.Generator) -> torch.Tensor:
                idx = pick_rows(gen)
                return -sum(self._member_log_prob(m, x[idx[m]], theta[idx[m]]).mean() for m in range(M))

            def run_steps(k: int, chunk_seed: int) -> None:
                fit_loop(loss_fn, module=self, optimizers=opt, n_steps=k, clip_norm=clip_norm, seed=chunk_seed,
                         progress=False)

            def val_nll() -> list[float]:
                with torch.no_grad():
                    return [float(-self._member_log_prob(m, x[val_idx[m]], theta[val_idx[m]]).mean())
                            for m in range(M)]

            best_state = [copy.deepcopy(mb.state_dict()) for mb in self.members]

            def keep(m: int) -> None:
                best_state[m] = copy.deepcopy(self.members[m].state_dict())

            def finish(use_best: bool) -> None:
                if use_best:
                    for member, state in zip(self.members, best_state, strict=True):
                        member.load_state_dict(state)

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


def make_flow_ensemble(theta_dim: int, x_dim: int, *, n_members: int = 5, kind: str = "maf",
                       transforms: int = 2, hidden: Sequence[int] = (32, 32), activation: type[nn.Module] = nn.ReLU,
                       seed: int = 0, device: str | torch.device = "cpu",
                       log_density_cap: float | None | str = "auto") -> EmulatorEnsemble:
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
            members.append(ConditionalFlow(x_dim, theta_dim, kind=kind, transforms=transforms, hidden=hidden,
                                           activation=activation))
    return EmulatorEnsemble(members, log_density_cap=log_density_cap).to(device)


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
    ll = member_log_lik if isinstance(member_log_lik, torch.Tensor) else as_tensor(member_log_lik, "member_log_lik")
    lp = log_prior if isinstance(log_prior, torch.Tensor) else as_tensor(log_prior, "log_prior")
    ll, lp = ll.detach().double().cpu(), lp.detach().double().cpu().reshape(-1)
    if ll.ndim != 2 or ll.shape[1] != lp.shape[0]:
        raise ValueError(f"member_log_lik must have shape (M, n) with n = {lp.shape[0]}; got {tuple(ll.shape)}")
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
        raise ValueError(f"means must be (M, n, d) and covs (M, n, d, d); got {tuple(mu.shape)} and {tuple(S.shape)}")
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
    lq = cross_log_probs if isinstance(cross_log_probs, torch.Tensor) else as_tensor(cross_log_probs,
                                                                                     "cross_log_probs")
    lq = lq.double().cpu()
    if lq.ndim != 4 or lq.shape[0] != lq.shape[1] or lq.shape[0] < 2:
        raise ValueError(f"cross_log_probs must have shape (M, M, n, S) with M >= 2; got {tuple(lq.shape)}")
    M = lq.shape[0]
    own = torch.diagonal(lq, dim1=0, dim2=1).permute(2, 0, 1)  # (M, n, S): log q_m(x_m)
    mix = torch.logsumexp(lq, 0) - math.log(M)  # (M_m, n, S): log q̄(x_m)
    return (own - mix).mean((0, 2))


# ---------------------------------------------------------------------------------------------
# candidates and batch selection
# ---------------------------------------------------------------------------------------------
def generate_candidates(prior, n: int, *, prior_fraction: float = 0.5,
                        posterior_sampler: Callable[[int, torch.Generator | None], torch.Tensor] | None = None,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Candidate parameters ``(n, d)``: ``prior_fraction`` from the prior, the rest from the posterior.

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
        post = check_rows(posterior_sampler(n_post, generator), "posterior_sampler output", prior.dim).cpu()
        if post.shape[0] != n_post:
            raise ValueError(f"posterior_sampler must return {n_post} rows; got {post.shape[0]}")
        bad = ~prior.contains(post)
        if bad.any():
            post = post.clone()
            post[bad] = sample_prior_checked(prior, int(bad.sum()), generator=generator)
        parts.append(post.float())
    return torch.cat(parts)


def select_batch(candidates, scores, batch_size: int, *, exclusion_radius: float = 0.0,
                 scale=None) -> torch.Tensor:
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
    sc = (scores if isinstance(scores, torch.Tensor) else as_tensor(scores, "scores")).double().cpu().reshape(-1)
    if sc.shape[0] != cand.shape[0]:
        raise ValueError(f"scores must have one entry per candidate ({cand.shape[0]}); got {sc.shape[0]}")
    if torch.isnan(sc).any():
        raise ValueError("scores contains NaN")
    batch_size = check_positive_int(batch_size, "batch_size")
    radius = float(exclusion_radius)
    if not radius >= 0:
        raise ValueError(f"exclusion_radius must be >= 0; got {exclusion_radius!r}")
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
    raise ValueError(f"only {len(chosen)} of {cand.shape[0]} candidates lie farther than exclusion_radius="
                     f"{radius} from each other; batch_size={batch_size} needs more candidates or a smaller radius")


# ---------------------------------------------------------------------------------------------
# posteriors on grids
# ---------------------------------------------------------------------------------------------
def grid_posterior(log_density: Callable[[torch.Tensor], torch.Tensor], low, high, *, points: int = 200,
                   chunk: int = 65536) -> tuple[list[np.ndarray], np.ndarray]:
    """Evaluate and normalise an unnormalised log density on a regular 1-D or 2-D cell grid.

    Args:
        log_density: ``f(theta (n, d)) -> (n,)`` unnormalised log density (e.g.
            ``lambda t: ensemble.log_posterior(t, x_o, prior)``).
        low, high: ``(d,)`` box bounds, d ∈ {1, 2}.
        points: cells per axis (evaluated at the cell centres).
        chunk: evaluations per call of ``log_density``.

    Returns:
        ``(axes, density)``: a list of ``d`` arrays of cell centres ``(points,)`` and the
        density ``(points,)*d`` indexed ``[i₁, i₂]``, normalised so that
        ``density.sum() * cell_volume == 1``.
    """
    lo = as_tensor(low, "low", dtype=torch.float64).reshape(-1)
    hi = as_tensor(high, "high", dtype=torch.float64).reshape(-1)
    d = lo.numel()
    if d not in (1, 2) or hi.numel() != d or not bool((hi > lo).all()):
        raise ValueError(f"low and high must be 1-D or 2-D boxes with high > low; got {lo.tolist()}, {hi.tolist()}")
    points = check_positive_int(points, "points", minimum=2)
    h = (hi - lo) / points
    axes = [(lo[j] + h[j] * (torch.arange(points, dtype=torch.float64) + 0.5)) for j in range(d)]
    mesh = torch.meshgrid(*axes, indexing="ij")
    theta = torch.stack([m.reshape(-1) for m in mesh], 1).float()
    with torch.no_grad():
        lp = torch.cat([log_density(theta[i:i + chunk]).detach().double().cpu().reshape(-1)
                        for i in range(0, theta.shape[0], chunk)])
    if lp.shape[0] != theta.shape[0] or torch.isnan(lp).any():
        raise ValueError("log_density must return one non-NaN value per grid point")
    if not torch.isfinite(lp).any():
        raise ValueError("log_density is -inf on every grid point")
    p = torch.exp(lp - lp.max())
    vol = float(torch.prod(h))
    dens = (p / (p.sum() * vol)).reshape((points,) * d).numpy()
    return [a.numpy() for a in axes], dens


def sample_grid(axes: Sequence[np.ndarray], density: np.ndarray, n: int, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` samples ``(n, d)`` from a grid density: cells by mass, uniform jitter within a cell."""
    n = check_positive_int(n, "n")
    d = len(axes)
    dens = np.asarray(density, dtype=np.float64)
    if dens.ndim != d or any(dens.shape[j] != len(axes[j]) for j in range(d)):
        raise ValueError(f"density must have shape {tuple(len(a) for a in axes)}; got {dens.shape}")
    if not (np.isfinite(dens).all() and (dens >= 0).all() and dens.sum() > 0):
        raise ValueError("density must be finite, non-negative and not all zero")
    probs = torch.as_tensor(dens.ravel() / dens.sum())
    idx = torch.multinomial(probs, n, replacement=True, generator=generator)
    sub = torch.stack(torch.unravel_index(idx, dens.shape), 1)
    centre = torch.stack([torch.as_tensor(axes[j])[sub[:, j]] for j in range(d)], 1)
    h = torch.tensor([float(a[1] - a[0]) for a in axes], dtype=torch.float64)
    jitter = (torch.rand(n, d, generator=generator, dtype=torch.float64) - 0.5) * h
    return (centre + jitter).float()


def grid_kde(samples, axes: Sequence[np.ndarray], *, bandwidth: float | None = None) -> np.ndarray:
    """The density of :func:`~neuroinverse.inference.abc.resample_with_jitter` on a cell grid.

    A Gaussian kernel density estimate of ``samples`` ``(k, d)`` with per-dimension kernel
    width ``h·σ_j`` (``h`` Scott's factor ``k^(-1/(d+4))`` unless ``bandwidth`` is given,
    σ_j the samples' standard deviation), evaluated at the cell centres of ``axes`` and
    normalised over the grid, i.e. truncated to the grid's box as ``resample_with_jitter``
    with a box prior truncates by redrawing. Lets rejection-ABC samples be scored by an exact
    grid KL divergence.

    Args:
        samples: ``(k, d)`` with k ≥ 2, d = ``len(axes)``.
        axes: one array of equally spaced cell centres per dimension.
        bandwidth: the factor ``h``; default Scott's rule.

    Returns:
        ``(len(axes[0]), …)`` density with ``density.sum() · cell volume == 1``.
    """
    s = check_rows(samples, "samples", len(axes)).double().cpu()
    if s.shape[0] < 2:
        raise ValueError(f"samples needs at least 2 rows; got {s.shape[0]}")
    k, d = s.shape
    if d not in (1, 2):
        raise ValueError(f"grid_kde supports 1-D and 2-D grids; got d = {d}")
    h = k ** (-1.0 / (d + 4)) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise ValueError(f"bandwidth must be positive; got {bandwidth!r}")
    width = (h * s.std(0).clamp_min(1e-12)).numpy()
    # a product kernel: the density is a sum over samples of products of 1-D Gaussians
    factors = [np.exp(-0.5 * ((np.asarray(a, dtype=np.float64)[None, :] - s[:, j].numpy()[:, None]) / width[j]) ** 2)
               for j, a in enumerate(axes)]
    dens = np.einsum("ka,kb->ab", *factors) if d == 2 else factors[0].sum(0)
    vol = float(np.prod([a[1] - a[0] for a in axes]))
    if not dens.sum() > 0:
        raise ValueError("the kernel density estimate vanishes on the whole grid")
    return dens / (dens.sum() * vol)


def hpd_threshold(density: np.ndarray, *, level: float = 0.95) -> float:
    """Density level of the ``level`` highest-density region of a grid density (cells above it hold ``level``)."""
    level = check_range(level, "level", 0.0, 1.0)
    flat = np.sort(np.asarray(density, dtype=np.float64).ravel())[::-1]
    if not (np.isfinite(flat).all() and flat.sum() > 0):
        raise ValueError("density must be finite and not all zero")
    cum = np.cumsum(flat) / flat.sum()
    return float(flat[min(int(np.searchsorted(cum, level)), flat.size - 1)])


def fraction_in_hpd(theta, axes: Sequence[np.ndarray], density: np.ndarray, *, level: float = 0.95) -> float:
    """Fraction of the points ``theta`` ``(n, d)`` inside the ``level`` highest-density region of a grid density.

    The region is the set of cells of highest density holding ``level`` of the mass; a point
    is inside if its cell is (points outside the grid are outside).
    """
    t = check_rows(theta, "theta", len(axes)).double().cpu().numpy()
    dens = np.asarray(density, dtype=np.float64)
    thresh = hpd_threshold(dens, level=level)
    inside_grid = np.ones(t.shape[0], dtype=bool)
    idx = []
    for j, a in enumerate(axes):
        h = a[1] - a[0]
        k = np.floor((t[:, j] - (a[0] - h / 2)) / h).astype(int)
        inside_grid &= (k >= 0) & (k < len(a))
        idx.append(np.clip(k, 0, len(a) - 1))
    hit = dens[tuple(idx)] >= thresh
    return float(np.mean(hit & inside_grid))


# ---------------------------------------------------------------------------------------------
# slice sampling (generic machinery, written here for the d > 2 posteriors)
# ---------------------------------------------------------------------------------------------
def slice_sample(log_prob: Callable[[torch.Tensor], torch.Tensor], init, n_samples: int, *, n_warmup: int = 100,
                 thin: int = 1, width=1.0, max_steps_out: int = 10, max_shrink: int = 30,
                 generator: torch.Generator | None = None, progress: bool = False) -> torch.Tensor:
    """Coordinate-wise slice sampling with stepping out (Neal 2003), vectorised over chains.

    Every chain updates one coordinate at a time: draw the slice height log y = log p(θ) +
    log U, place an interval of ``width`` at random around θ_j, step it out until both ends
    leave the slice, then shrink it towards θ_j until a point inside the slice is drawn.

    Args:
        log_prob: ``f(theta (C, d)) -> (C,)`` unnormalised log density (−inf outside support).
        init: ``(C, d)`` starting points, one per chain, each with finite log density (e.g.
            the highest-density training parameters).
        n_samples: samples kept per chain.
        n_warmup: discarded iterations per chain.
        thin: keep every ``thin``-th iteration.
        width: initial interval width, one number or ``(d,)``.
        max_steps_out / max_shrink: caps on the stepping-out and shrinking loops (a chain
            that exhausts the shrink budget keeps its point, which is a valid move).
        generator: randomness (on the CPU).
        progress: tqdm bar over iterations.

    Returns:
        ``(C, n_samples, d)`` samples.
    """
    x = check_rows(init, "init").double().cpu().clone()
    C, d = x.shape
    n_samples = check_positive_int(n_samples, "n_samples")
    n_warmup = check_positive_int(n_warmup, "n_warmup", minimum=0)
    thin = check_positive_int(thin, "thin")
    w = torch.as_tensor(width, dtype=torch.float64).reshape(-1).expand(d).clone()
    if not bool((w > 0).all()):
        raise ValueError(f"width must be positive; got {width!r}")

    def lp_fn(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return log_prob(t.float()).detach().double().cpu().reshape(-1)

    lp = lp_fn(x)
    if not torch.isfinite(lp).all():
        raise ValueError("init must have a finite log density in every chain")
    out = torch.empty(C, n_samples, d, dtype=torch.float64)
    total = n_warmup + n_samples * thin
    for it in tqdm(range(total), desc="slice sampling", disable=not progress, mininterval=1.0):
        for j in range(d):
            log_y = lp + torch.log(1 - torch.rand(C, generator=generator, dtype=torch.float64))
            left = x[:, j] - w[j] * torch.rand(C, generator=generator, dtype=torch.float64)
            right = left + w[j]
            for end, sign in ((left, -1.0), (right, 1.0)):
                grow = torch.ones(C, dtype=torch.bool)
                for _ in range(max_steps_out):
                    probe = x.clone()
                    probe[:, j] = end
                    grow &= lp_fn(probe) > log_y
                    if not grow.any():
                        break
                    end += sign * w[j] * grow
            active = torch.ones(C, dtype=torch.bool)
            for _ in range(max_shrink):
                prop = left + (right - left) * torch.rand(C, generator=generator, dtype=torch.float64)
                cand = x.clone()
                cand[:, j] = prop
                lp_c = lp_fn(cand)
                acc = active & (lp_c > log_y)
                x[acc, j] = prop[acc]
                lp[acc] = lp_c[acc]
                rej = active & ~acc
                below = rej & (prop < x[:, j])
                left = torch.where(below, prop, left)
                right = torch.where(rej & ~below, prop, right)
                active = rej
                if not active.any():
                    break
        k = it - n_warmup
        if k >= 0 and k % thin == thin - 1:
            out[:, k // thin] = x
    return out.float()


def split_rhat(samples) -> torch.Tensor:
    """Split-R̂ (Gelman et al., BDA3) per dimension of ``(C, n, d)`` chains; ≈ 1 when mixed."""
    s = _as_chains(samples)
    C, n, d = s.shape
    if n < 4:
        raise ValueError(f"split_rhat needs at least 4 samples per chain; got {n}")
    half = n // 2
    ch = torch.cat([s[:, :half], s[:, half:2 * half]], 0)  # (2C, half, d)
    W = ch.var(1).mean(0)
    B = half * ch.mean(1).var(0)
    var = (half - 1) / half * W + B / half
    return torch.sqrt(var / W)


def _as_chains(samples) -> torch.Tensor:
    s = samples if isinstance(samples, torch.Tensor) else as_tensor(samples, "samples")
    if s.ndim != 3:
        raise ValueError(f"samples must have shape (chains, n, d); got {tuple(s.shape)}")
    return s.double()


# ---------------------------------------------------------------------------------------------
# posterior samples from the ensemble
# ---------------------------------------------------------------------------------------------
def posterior_samples(ensemble: EmulatorEnsemble, prior, x_o, n: int, *, method: str = "grid",
                      grid_points: int = 200, init=None, mcmc: dict[str, Any] | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
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
    _observation(x_o, ensemble.x_dim)

    def logp(t: torch.Tensor) -> torch.Tensor:
        return ensemble.log_posterior(t, x_o, prior)

    if method == "grid":
        axes, dens = grid_posterior(logp, prior.low, prior.high, points=grid_points)
        return sample_grid(axes, dens, n, generator=generator)
    if method == "mcmc":
        if init is None:
            raise ValueError("init (chain starting points) is required for method='mcmc'")
        init = check_rows(init, "init", ensemble.theta_dim)
        per_chain = math.ceil(n / init.shape[0])
        chains = slice_sample(logp, init, per_chain, generator=generator, **(mcmc or {}))
        flat = chains.permute(1, 0, 2).reshape(-1, ensemble.theta_dim)  # interleave chains
        return flat[:n]
    raise ValueError(f"method must be 'grid' or 'mcmc'; got {method!r}")


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


def run_active_learning(prior, simulator: Callable, x_o, *, ensemble: EmulatorEnsemble | None = None, acquisition: str = "post",
                        n_initial: int = 20, n_rounds: int = 6, batch_size: int = 30, n_candidates: int = 2000,
                        prior_fraction: float = 0.5, explore_fraction: float = 0.0,
                        exclusion_radius: float = 0.05, info_samples: int = 16, info_estimator: str = "moment",
                        train: dict[str, Any] | None = None, initial_train: dict[str, Any] | None = None,
                        posterior_method: str = "grid", grid_points: int = 200,
                        mcmc: dict[str, Any] | None = None, generator: torch.Generator | None = None,
                        callback: Callable[[int, ActiveLearningResult], Any] | None = None,
                        start: ActiveLearningResult | None = None, progress: bool = True,
                        desc: str | None = None) -> ActiveLearningResult:
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
            ``start`` object is not modified) and is used instead of ``ensemble``; the rounds continue
            from its last round.
        progress: tqdm bar over rounds.

    Returns:
        :class:`ActiveLearningResult`.
    """
    if acquisition not in ACQUISITIONS:
        raise ValueError(f"acquisition must be one of {ACQUISITIONS}; got {acquisition!r}")
    if not isinstance(n_initial, (int, np.integer)) or isinstance(n_initial, bool) or n_initial < 2:
        raise ValueError(f"n_initial must be an integer >= 2 (an empty budget cannot train an emulator); "
                         f"got {n_initial!r}")
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
        raise ValueError(f"prior has dimension {prior.dim} but the ensemble expects d_theta = {ensemble.theta_dim}")
    x_o = _observation(x_o, ensemble.x_dim)
    train = dict(train or {})
    base_seed = int(train.pop("seed", 0))

    if start is not None:
        if (start.ensemble.theta_dim, start.ensemble.x_dim) != (ensemble.theta_dim, ensemble.x_dim):
            raise ValueError("start's ensemble and ensemble must have the same dimensions")
        ensemble = copy.deepcopy(start.ensemble)
        res = ActiveLearningResult(ensemble=ensemble, theta=start.theta.clone(), x=start.x.clone(),
                                   round=start.round.clone(), fits=list(start.fits), snapshots=list(start.snapshots),
                                   candidates=list(start.candidates))
        first = int(start.round.max()) + 1
    else:
        theta = sample_prior_checked(prior, int(n_initial), generator=generator)
        x = simulate_checked(simulator, theta, generator=generator, x_dim=ensemble.x_dim).cpu()
        if not torch.isfinite(x).all():
            raise ValueError("simulator returned NaN or infinite data for the initial design")
        res = ActiveLearningResult(ensemble=ensemble, theta=theta, x=x,
                                   round=torch.zeros(theta.shape[0], dtype=torch.long))
        first = 0
    scale = prior.std.reshape(-1)
    bar = tqdm(range(first, first + n_rounds + (first == 0)), desc=desc or f"active learning ({acquisition})",
               disable=not progress)
    for r in bar:
        if r > 0:
            new, cand = _acquire(res, prior, x_o, acquisition=acquisition, batch_size=batch_size,
                           n_candidates=n_candidates, prior_fraction=prior_fraction,
                           explore_fraction=explore_fraction, exclusion_radius=exclusion_radius, scale=scale,
                           info_samples=info_samples, info_estimator=info_estimator,
                           posterior_method=posterior_method, grid_points=grid_points, mcmc=mcmc,
                           generator=generator)
            res.candidates.append(cand)
            x_new = simulate_checked(simulator, new, generator=generator, x_dim=ensemble.x_dim).cpu()
            if not torch.isfinite(x_new).all():
                raise ValueError(f"simulator returned NaN or infinite data in round {r}")
            res.theta = torch.cat([res.theta, new])
            res.x = torch.cat([res.x, x_new])
            res.round = torch.cat([res.round, torch.full((new.shape[0],), r, dtype=torch.long)])
        kw = {**train, **(initial_train or {})} if r == 0 else train
        kw.pop("seed", None)
        log = ensemble.fit(res.theta, res.x, seed=base_seed * 1000 + r, **kw)
        res.fits.append(log)
        bar.set_postfix(sims=res.theta.shape[0], steps=log.steps,
                        val_nll=f"{float(np.nanmean(log.best_val_nll)):.3g}")
        if callback is not None:
            res.snapshots.append(callback(r, res))
    bar.close()
    return res


def _acquire(res: ActiveLearningResult, prior, x_o, *, acquisition, batch_size, n_candidates, prior_fraction,
             explore_fraction, exclusion_radius, scale, info_samples, info_estimator, posterior_method, grid_points,
             mcmc, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``batch_size`` parameters to simulate next (one round of acquisition), and the candidates."""
    if acquisition == "prior":
        return sample_prior_checked(prior, batch_size, generator=generator), torch.zeros(0, prior.dim)
    ens = res.ensemble
    init = None
    if posterior_method == "mcmc":
        n_chains = int((mcmc or {}).get("n_chains", 20))
        with torch.no_grad():
            lp = ens.log_posterior(res.theta, x_o, prior).cpu()
        init = res.theta[torch.topk(lp, min(n_chains, lp.shape[0])).indices]
    mc = {k: v for k, v in (mcmc or {}).items() if k != "n_chains"}

    def post_sampler(k: int, g: torch.Generator | None) -> torch.Tensor:
        return posterior_samples(ens, prior, x_o, k, method=posterior_method, grid_points=grid_points, init=init,
                                 mcmc=mc, generator=g)

    cand = generate_candidates(prior, n_candidates, prior_fraction=prior_fraction,
                               posterior_sampler=post_sampler if prior_fraction < 1 else None, generator=generator)
    scores = ens.acquisition(acquisition, cand, x_o, prior, n_samples=info_samples, estimator=info_estimator,
                             generator=generator)
    n_explore = int(round(explore_fraction * batch_size))
    idx = select_batch(cand, scores, batch_size - n_explore, exclusion_radius=exclusion_radius, scale=scale) \
        if batch_size > n_explore else torch.zeros(0, dtype=torch.long)
    parts = [cand[idx]]
    if n_explore:
        parts.append(sample_prior_checked(prior, n_explore, generator=generator))
    return torch.cat(parts), cand
