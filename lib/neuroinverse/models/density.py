"""Conditional density estimators q(value | context) for simulation-based inference.

One small interface, :class:`ConditionalDensity`, shared by the SBI chapters:

* posterior estimators q(θ | x) (neural posterior estimation: SNPE-A/B, APT), where
  ``value`` is the parameter θ and ``context`` the data x;
* likelihood emulators q(x | θ), where ``value`` is the data and ``context`` the parameter.

Every estimator z-scores its value and its context with statistics set **once**, from the
first round's (prior-drawn) data, by :meth:`ConditionalDensity.set_standardization`; they
are stored as buffers (so they move with ``.to(device)`` and are saved in the state dict).
:meth:`ConditionalDensity.log_prob` returns the density of the *unstandardised* value: it
adds the log-Jacobian ``-Σ_j log s_j`` of the value z-scoring ``z = (v - m) / s``.

Subclasses implement two methods in standardised coordinates, ``_log_prob(value_z,
context_z) -> (n,)`` and ``_sample(n, context_z, generator) -> (n, d_v)``; the base class
does the argument checks, broadcasting, z-scoring and the Jacobian.

:class:`ConditionalFlow` wraps a conditional masked autoregressive flow (MAF, Papamakarios
et al., NeurIPS 2017) or neural spline flow (NSF, Durkan et al., NeurIPS 2019) from
`zuko <https://github.com/probabilists/zuko>`_; the flow itself is generic machinery, not a
contribution of the papers the book reproduces.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .._checks import check_choice, check_positive_int, check_rows

__all__ = ["ConditionalDensity", "ConditionalFlow"]


class ConditionalDensity(nn.Module):
    """Base class of a conditional density ``q(value | context)`` with built-in z-scoring.

    Args:
        value_dim: dimension ``d_v`` of the modelled variable.
        context_dim: dimension ``d_c`` of the conditioning variable.

    Subclasses implement ``_log_prob(value_z (n, d_v), context_z (n, d_c)) -> (n,)`` and
    ``_sample(n, context_z (1, d_c), generator) -> (n, d_v)``, both in z-scored coordinates.
    """

    def __init__(self, value_dim: int, context_dim: int) -> None:
        super().__init__()
        check_positive_int(value_dim, "value_dim")
        check_positive_int(context_dim, "context_dim")
        self.value_dim = int(value_dim)
        self.context_dim = int(context_dim)
        self.register_buffer("value_shift", torch.zeros(value_dim))
        self.register_buffer("value_scale", torch.ones(value_dim))
        self.register_buffer("context_shift", torch.zeros(context_dim))
        self.register_buffer("context_scale", torch.ones(context_dim))
        self.register_buffer("standardized", torch.tensor(False))

    # -- z-scoring -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.value_shift.device

    def _rows(self, x, name: str, dim: int, *, allow_1d: bool = False) -> torch.Tensor:
        """``x`` checked as rows ``(n, dim)`` (see :func:`~neuroinverse._checks.check_rows`),
        float32 on this density's device."""
        return check_rows(x, name, dim, allow_1d=allow_1d).to(
            device=self.device, dtype=torch.float32
        )

    @torch.no_grad()
    def set_standardization(self, value, context, *, min_std: float = 1e-6) -> None:
        """Set the z-scoring of value and context from data (first round / prior draws only).

        Args:
            value: ``(n, d_v)`` samples of the modelled variable, ``n >= 2``.
            context: ``(n, d_c)`` samples of the conditioning variable.
            min_std: floor on every standard deviation (a constant feature gets scale
                ``min_std`` rather than a division by zero).
        """
        v = self._rows(value, "value", self.value_dim)
        c = self._rows(context, "context", self.context_dim)
        if v.shape[0] != c.shape[0]:
            raise ValueError(
                "value and context must have the same number of rows; "
                f"got {v.shape[0]} and {c.shape[0]}"
            )
        if v.shape[0] < 2:
            raise ValueError(
                f"value needs at least 2 rows to estimate a standard deviation; got {v.shape[0]}"
            )
        if not (torch.isfinite(v).all() and torch.isfinite(c).all()):
            raise ValueError("value and context must be finite to set the standardisation")
        self.value_shift.copy_(v.mean(0))
        self.value_scale.copy_(v.std(0).clamp_min(min_std))
        self.context_shift.copy_(c.mean(0))
        self.context_scale.copy_(c.std(0).clamp_min(min_std))
        self.standardized.fill_(True)

    def standardize_value(self, value: torch.Tensor) -> torch.Tensor:
        return (value - self.value_shift) / self.value_scale

    def standardize_context(self, context: torch.Tensor) -> torch.Tensor:
        return (context - self.context_shift) / self.context_scale

    def log_abs_det_value_scale(self) -> torch.Tensor:
        """``Σ_j log s_j``: subtracted from the standardised log density."""
        return torch.log(self.value_scale).sum()

    # -- public API ------------------------------------------------------------------------
    def log_prob(self, value, context) -> torch.Tensor:
        """Log density ``log q(value | context)`` in the original units, shape ``(n,)``.

        Args:
            value: ``(n, d_v)``.
            context: ``(n, d_c)``, or one context ``(d_c,)`` / ``(1, d_c)`` shared by all rows.
        """
        v = self._rows(value, "value", self.value_dim)
        c = self._rows(context, "context", self.context_dim, allow_1d=True)
        if c.shape[0] == 1 and v.shape[0] != 1:
            c = c.expand(v.shape[0], -1)
        if c.shape[0] != v.shape[0]:
            raise ValueError(
                f"context must have 1 or {v.shape[0]} rows (one per value); got {c.shape[0]}"
            )
        out = self._log_prob(self.standardize_value(v), self.standardize_context(c))
        return out - self.log_abs_det_value_scale()

    def sample(self, n: int, context, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws from ``q(· | context)``, shape ``(n, d_v)``, on the module's device.

        Args:
            n: number of samples (>= 1).
            context: one context, ``(d_c,)`` or ``(1, d_c)``.
            generator: source of randomness (its device is used for the base noise, so a CPU
                generator gives the same samples on every device).
        """
        n = check_positive_int(n, "n")
        c = self._rows(context, "context", self.context_dim, allow_1d=True)
        if c.shape[0] != 1:
            raise ValueError(
                f"context must be one context, (d_c,) or (1, d_c); got {tuple(c.shape)}"
            )
        z = self._sample(n, self.standardize_context(c), generator)
        return z * self.value_scale + self.value_shift

    def _base_noise(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """Standard normal ``(n, d_v)`` drawn on the generator's device, moved to the module's."""
        dev = generator.device if generator is not None else self.device
        return torch.randn(n, self.value_dim, generator=generator, device=dev).to(self.device)

    # -- to implement ----------------------------------------------------------------------
    def _log_prob(self, value_z: torch.Tensor, context_z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _sample(
        self, n: int, context_z: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        raise NotImplementedError


class ConditionalFlow(ConditionalDensity):
    """Conditional normalising flow ``q(value | context)`` from zuko (MAF or NSF).

    The context is fed to every transform's conditioner network (concatenated to its
    input), as in the conditional MAF of Papamakarios et al. (2017) used by APT.

    Args:
        value_dim: ``d_v``.
        context_dim: ``d_c``.
        kind: ``"maf"`` (affine masked autoregressive transforms) or ``"nsf"`` (rational
            quadratic spline transforms with ``bins`` bins).
        transforms: number of autoregressive transforms (orders alternate between layers).
        hidden: hidden layer sizes of each conditioner network.
        activation: activation of the conditioner networks (``nn.ReLU``, ``nn.Tanh`` ...).
        bins: spline bins (NSF only).

    Example:
        >>> q = ConditionalFlow(2, 3, kind="maf", transforms=3, hidden=(32, 32))
        >>> q.log_prob(torch.zeros(4, 2), torch.zeros(3)).shape
        torch.Size([4])
    """

    def __init__(
        self,
        value_dim: int,
        context_dim: int,
        *,
        kind: str = "maf",
        transforms: int = 5,
        hidden: Sequence[int] = (50, 50),
        activation: type[nn.Module] = nn.ReLU,
        bins: int = 8,
    ) -> None:
        super().__init__(value_dim, context_dim)
        import zuko

        check_choice(kind, "kind", ("maf", "nsf"))
        transforms = check_positive_int(transforms, "transforms")
        hidden = tuple(int(h) for h in hidden)
        if not hidden or min(hidden) < 1:
            raise ValueError(
                f"hidden must be a non-empty sequence of positive sizes; got {hidden!r}"
            )
        self.kind = kind
        kw = dict(
            features=value_dim,
            context=context_dim,
            transforms=transforms,
            hidden_features=hidden,
            activation=activation,
        )
        if kind == "maf":
            self.flow = zuko.flows.MAF(**kw)
        else:
            self.flow = zuko.flows.NSF(bins=int(bins), **kw)

    def _log_prob(self, value_z: torch.Tensor, context_z: torch.Tensor) -> torch.Tensor:
        return self.flow(context_z).log_prob(value_z)

    def _sample(
        self, n: int, context_z: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        dist = self.flow(context_z.expand(n, -1))
        # Base noise from our generator, pushed through the inverse of the flow's transform
        # (zuko's own .sample would draw from torch's global generator).
        return dist.transform.inv(self._base_noise(n, generator))

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, value_dim={self.value_dim}, context_dim={self.context_dim}"
