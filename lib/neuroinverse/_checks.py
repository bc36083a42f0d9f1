"""Small argument checks shared by the library: clear ``ValueError`` messages naming the argument."""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["as_tensor", "check_finite", "check_positive", "check_ndim", "check_range"]


def as_tensor(x, name: str, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Convert ``x`` to a tensor; raise ``ValueError`` naming ``name`` if it cannot be."""
    try:
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=dtype)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be array-like of numbers: {err}") from None
    return t.to(device) if device is not None else t


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_ndim(x: torch.Tensor, name: str, ndims: int | tuple[int, ...], shape_doc: str) -> torch.Tensor:
    ok = (x.dim() in ndims) if isinstance(ndims, tuple) else x.dim() == ndims
    if not ok:
        raise ValueError(f"{name} must have shape {shape_doc}; got {tuple(x.shape)}")
    return x


def check_positive(value: float, name: str, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {value!r}") from None
    if math.isnan(v) or (v < 0 if allow_zero else v <= 0):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}; got {value!r}")
    return v


def check_range(value: float, name: str, low: float, high: float) -> float:
    v = check_positive(value, name, allow_zero=True) if low >= 0 else float(value)
    if math.isnan(v) or not (low <= v <= high):
        raise ValueError(f"{name} must lie in [{low}, {high}]; got {value!r}")
    return v
