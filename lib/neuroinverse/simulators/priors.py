"""Priors for simulation-based inference.

Two small prior classes shared by the SBI chapters (snpe-hh, apt, emulators): a box-uniform
distribution with sampling from an explicit ``torch.Generator``, a log density that is
``-inf`` outside the box, and the moments used for z-scoring parameters; and an independent
Gaussian prior with the same interface (``dim``, ``mean``, ``std``, ``sample``, ``contains``,
``log_prob``), used by the Gaussian linear task of sbibm (Lueckmann et al., AISTATS 2021).
"""

from __future__ import annotations

import math

import torch

from .._checks import as_tensor, check_finite, check_positive_int

__all__ = ["BoxUniform", "GaussianPrior"]


class BoxUniform:
    """Independent uniform prior on the box ``[low, high]`` (one interval per dimension).

    Args:
        low: lower bounds, shape ``(d,)``.
        high: upper bounds, shape ``(d,)``; every ``high > low``.

    Example:
        >>> prior = BoxUniform([-1.0, -1.0], [1.0, 1.0])
        >>> theta = prior.sample(5, generator=torch.Generator().manual_seed(0))
        >>> theta.shape
        torch.Size([5, 2])
    """

    def __init__(self, low, high):
        low = as_tensor(low, "low", dtype=torch.float32)
        high = as_tensor(high, "high", dtype=torch.float32)
        if low.ndim != 1 or high.shape != low.shape:
            raise ValueError(
                f"low and high must be 1-D with the same shape, got {tuple(low.shape)} and "
                f"{tuple(high.shape)}"
            )
        check_finite(low, "low")
        check_finite(high, "high")
        if not bool((high > low).all()):
            raise ValueError("high must exceed low in every dimension")
        self.low, self.high = low, high

    @property
    def dim(self) -> int:
        return int(self.low.numel())

    @property
    def mean(self) -> torch.Tensor:
        return (self.low + self.high) / 2

    @property
    def std(self) -> torch.Tensor:
        return (self.high - self.low) / math.sqrt(12.0)

    def _check_theta(self, theta: torch.Tensor) -> torch.Tensor:
        theta = as_tensor(theta, "theta", dtype=torch.float32)
        if theta.ndim != 2 or theta.shape[1] != self.dim:
            raise ValueError(f"theta must have shape (n, {self.dim}), got {tuple(theta.shape)}")
        if torch.isnan(theta).any():
            raise ValueError("theta contains NaN")
        return theta

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws, shape ``(n, d)``, on the CPU (move them where they are needed)."""
        n = check_positive_int(n, "n")
        u = torch.rand(n, self.dim, generator=generator)
        return self.low + (self.high - self.low) * u

    def contains(self, theta) -> torch.Tensor:
        """Boolean mask ``(n,)``: which rows of ``theta`` lie inside the box."""
        theta = self._check_theta(theta)
        low, high = self.low.to(theta.device), self.high.to(theta.device)
        return ((theta >= low) & (theta <= high)).all(dim=1)

    def log_prob(self, theta) -> torch.Tensor:
        """Log density ``(n,)``: ``-sum(log(high - low))`` inside the box, ``-inf`` outside."""
        theta = self._check_theta(theta)
        inside = self.contains(theta)
        value = -torch.log(self.high - self.low).sum().to(theta.device)
        return torch.where(inside, value, torch.full_like(value, -math.inf))

    def __repr__(self) -> str:
        return f"BoxUniform(low={self.low.tolist()}, high={self.high.tolist()})"


class GaussianPrior:
    """Independent Gaussian prior ``N(mean, diag(std**2))`` with the :class:`BoxUniform` interface.

    Args:
        mean: prior means, shape ``(d,)``.
        std: prior standard deviations, shape ``(d,)`` (or one number for every dimension);
            all positive.

    ``contains`` is true everywhere (the support is the whole space).
    """

    def __init__(self, mean, std):
        mean = as_tensor(mean, "mean", dtype=torch.float32)
        std = as_tensor(std, "std", dtype=torch.float32)
        if mean.ndim != 1:
            raise ValueError(f"mean must be 1-D, shape (d,); got {tuple(mean.shape)}")
        if std.ndim == 0:
            std = std.expand(mean.shape).clone()
        if std.shape != mean.shape:
            raise ValueError(
                f"std must be a number or have the shape of mean {tuple(mean.shape)}; "
                f"got {tuple(std.shape)}"
            )
        check_finite(mean, "mean")
        check_finite(std, "std")
        if not bool((std > 0).all()):
            raise ValueError("std must be positive in every dimension")
        self._mean, self._std = mean, std

    @property
    def dim(self) -> int:
        return int(self._mean.numel())

    @property
    def mean(self) -> torch.Tensor:
        return self._mean

    @property
    def std(self) -> torch.Tensor:
        return self._std

    _check_theta = BoxUniform._check_theta

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws, shape ``(n, d)``, on the CPU."""
        n = check_positive_int(n, "n")
        return self._mean + self._std * torch.randn(n, self.dim, generator=generator)

    def contains(self, theta) -> torch.Tensor:
        """All ``True`` ``(n,)``: a Gaussian has full support."""
        theta = self._check_theta(theta)
        return torch.ones(theta.shape[0], dtype=torch.bool, device=theta.device)

    def log_prob(self, theta) -> torch.Tensor:
        """Log density ``(n,)``."""
        theta = self._check_theta(theta)
        m, s = self._mean.to(theta.device), self._std.to(theta.device)
        z = (theta - m) / s
        return (-0.5 * z**2 - torch.log(s) - 0.5 * math.log(2 * math.pi)).sum(1)

    def __repr__(self) -> str:
        return f"GaussianPrior(mean={self._mean.tolist()}, std={self._std.tolist()})"
