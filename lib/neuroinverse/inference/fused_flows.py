"""All members of an emulator ensemble in one batched pass: a speed-up with the same densities.

Used by :class:`~neuroinverse.inference.emulators.EmulatorEnsemble`, the emulator ensemble of
J.-M. Lueckmann, G. Bassetto, T. Karaletsos, J. H. Macke, *Likelihood-free inference with
emulator networks*, AABI 2018, PMLR 96:32–53 (2019), arXiv:1805.09294. A batched linear
layer with its own backward pass, a foreach Adam over the members, and the flows of all
members evaluated together (identical affine-MAF members only; any other ensemble takes the
members' own ``log_prob``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..models.density import ConditionalDensity, ConditionalFlow

__all__ = [
    "FUSABLE_ACTIVATIONS",
    "BatchedLinear",
    "ForeachAdam",
    "FusedFlows",
]


# ---------------------------------------------------------------------------------------------
# all members in one batched pass (a speed-up; same densities as the members' own log_prob)
# ---------------------------------------------------------------------------------------------
FUSABLE_ACTIVATIONS = (
    nn.ReLU,
    nn.Tanh,
    nn.ELU,
    nn.SiLU,
    nn.GELU,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.Softplus,
)


class BatchedLinear(torch.autograd.Function):
    """``h_m W_mᵀ + b_m`` for every member m at once: ``h (M, n, i)``, ``W (M, o, i)``,
    ``b (M, o)``.

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
        if BatchedLinear._small(h, w):
            return torch.stack([nn.functional.linear(h[m], w[m], b[m]) for m in range(w.shape[0])])
        return torch.baddbmm(b[:, None], h, w.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, w = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad
        M = w.shape[0]
        if BatchedLinear._small(h, w):
            grad_h = torch.stack([grad[m].mm(w[m]) for m in range(M)]) if need_h else None
            grad_w = torch.stack([grad[m].t().mm(h[m]) for m in range(M)]) if need_w else None
            grad_b = torch.stack([grad[m].sum(0) for m in range(M)]) if need_b else None
        else:
            grad_h = torch.bmm(grad, w) if need_h else None
            grad_w = torch.bmm(grad.transpose(1, 2), h) if need_w else None
            grad_b = grad.sum(1) if need_b else None
        return grad_h, grad_w, grad_b


class ForeachAdam:
    """Adam (Kingma & Ba 2015; β = (0.9, 0.999), ε = 1e-8, no weight decay) on a few tensors.

    The update of ``torch.optim.Adam(params, lr, foreach=True)``, operation for operation
    (the same ``torch._foreach_*`` calls with the same scalars), without the optimiser
    framework's per-step bookkeeping, and without its first construction importing
    ``torch._dynamo`` (about 2 s of CPU time in a chapter that never compiles anything).
    """

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params, self.lr, self.betas, self.eps = params, float(lr), betas, float(eps)
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self.exp_avg_sqs = [
            torch.zeros_like(p, memory_format=torch.preserve_format) for p in params
        ]
        self.steps = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

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
        torch._foreach_addcdiv_(
            self.params, self.exp_avgs, denom, [(self.lr / bias_correction1) * -1] * n
        )


class FusedFlows:
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

    def __init__(
        self,
        members: Sequence[ConditionalFlow],
        transforms: list[tuple[bool, list[tuple]]],
        params: list[list[torch.Tensor]],
        slope: float,
        base_loc: torch.Tensor,
        base_scale: torch.Tensor,
    ):
        self.members = list(members)
        self.transforms = transforms  # per transform: (uses the value?, ops)
        self.params = params  # per member, its parameters in the order the ops index them
        self.log_slope = math.log(slope)
        self.base_loc, self.base_scale = base_loc, base_scale
        self.standard_base = bool((base_loc == 0).all() and (base_scale == 1).all())
        dev = self.members[0].device
        self.value_shift = torch.stack([m.value_shift for m in members]).to(dev)[
            :, None
        ]  # (M, 1, d_v)
        self.value_scale = torch.stack([m.value_scale for m in members]).to(dev)[:, None]
        self.context_shift = torch.stack([m.context_shift for m in members]).to(dev)[:, None]
        self.context_scale = torch.stack([m.context_scale for m in members]).to(dev)[:, None]
        self.log_det_scale = torch.log(self.value_scale[:, 0]).sum(-1)[:, None]  # (M, 1)

    @classmethod
    def build(cls, members: Sequence[ConditionalDensity]) -> FusedFlows | None:
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
            if (
                type(member) is not ConditionalFlow
                or member.kind != "maf"
                or type(member.flow) is not zuko.flows.MAF
            ):
                return None
            structure, plist = [], []
            for t in member.flow.transform.transforms:
                if type(t) is MaskedAutoregressiveTransform:
                    uses_value = True
                elif type(t) is ElementWiseTransform and hasattr(t, "hyper"):
                    uses_value = False
                else:
                    return None
                if t.univariate is not MonotonicAffineTransform or [tuple(s) for s in t.shapes] != [
                    (),
                    (),
                ]:
                    return None
                ops = []
                for layer in t.hyper:
                    if type(layer) in (MaskedLinear, nn.Linear, ZukoLinear):
                        if layer.bias is None or layer.weight.ndim != 2:
                            return None
                        mask = layer.mask if type(layer) is MaskedLinear else None
                        ops.append(("linear", len(plist), len(plist) + 1, mask))
                        plist += [layer.weight, layer.bias]
                    elif type(layer) in FUSABLE_ACTIVATIONS:
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
                u != u0 or len(ops) != len(ops0)
                for (u, ops), (u0, ops0) in zip(s, first, strict=True)
            ):
                return None
            for (_, ops), (_, ops0) in zip(s, first, strict=True):
                for op, op0 in zip(ops, ops0, strict=True):
                    if op[0] != op0[0]:
                        return None
                    if op[0] == "act" and (
                        type(op[1]) is not type(op0[1]) or repr(op[1]) != repr(op0[1])
                    ):
                        return None
                    if op[0] == "linear" and (
                        (op[3] is None) != (op0[3] is None)
                        or (op[3] is not None and not torch.equal(op[3], op0[3]))
                    ):
                        return None
            if any(p.shape != p0.shape for p, p0 in zip(plist, params[0], strict=True)):
                return None
        bases = [m.flow.base() for m in members]
        if any(type(b) is not zuko.distributions.DiagNormal for b in bases):
            return None
        loc, scale = bases[0].base_dist.loc, bases[0].base_dist.scale
        if any(
            not (torch.equal(b.base_dist.loc, loc) and torch.equal(b.base_dist.scale, scale))
            for b in bases
        ):
            return None
        slope = inspect.signature(MonotonicAffineTransform).parameters["slope"].default
        transforms = [
            (
                u,
                [
                    (
                        op[0],
                        op[1],
                        op[2],
                        None if op[3] is None or bool(op[3].all()) else op[3].to(torch.float32),
                    )
                    if op[0] == "linear"
                    else op
                    for op in ops
                ],
            )
            for u, ops in first
        ]  # an all-ones mask is dropped (W · 1 = W)
        return cls(members, transforms, params, float(slope), loc, scale)

    @staticmethod
    def _linear(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return BatchedLinear.apply(h, w, b)

    def stacked(self) -> list[torch.Tensor]:
        """The members' parameters stacked along a leading member axis (differentiable)."""
        return [
            torch.stack([plist[k] for plist in self.params]) for k in range(len(self.params[0]))
        ]

    @torch.no_grad()
    def write_back(self, stacked: Sequence[torch.Tensor]) -> None:
        """Copy stacked parameters into the members' own."""
        for m, plist in enumerate(self.params):
            for p, s in zip(plist, stacked, strict=True):
                p.copy_(s[m])

    def standardize(
        self, x: torch.Tensor, theta: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member's z-scored ``x`` and ``θ``, ``(M, n, d)`` each (``n`` may be 1 for one of
        them)."""
        return (x - self.value_shift) / self.value_scale, (
            theta - self.context_shift
        ) / self.context_scale

    def log_prob(
        self,
        stacked: Sequence[torch.Tensor],
        x: torch.Tensor,
        theta: torch.Tensor,
        cap: float | None,
    ) -> torch.Tensor:
        """``log q_m(x_{m,i} | θ_{m,i})``, shape ``(M, n)``, with the standardised-density cap.

        ``x`` ``(M, n, d_x)`` or ``(n, d_x)`` (shared by all members), ``theta`` likewise.
        """
        return self.log_prob_z(stacked, *self.standardize(x, theta), cap)

    def log_prob_z(
        self, stacked: Sequence[torch.Tensor], vz: torch.Tensor, cz: torch.Tensor, cap: float | None
    ) -> torch.Tensor:
        """:meth:`log_prob` from already z-scored ``vz`` ``(M, n, d_x)`` and ``cz``
        ``(M, n, d_θ)``."""
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
            base = (
                -((z - self.base_loc) ** 2) / (2 * var)
                - self.base_scale.log()
                - math.log(math.sqrt(2 * math.pi))
            )
        lp = base.sum(-1) + ladj - self.log_det_scale
        if cap is None:
            return lp
        return torch.clamp(lp + self.log_det_scale, max=cap) - self.log_det_scale
