"""Small argument checks shared by the library: clear ``ValueError`` messages naming the argument.

One helper per kind of argument: numbers (:func:`check_positive`, :func:`check_positive_int`,
:func:`check_range`, :func:`check_probability`), choices (:func:`check_choice`), arrays and
their shapes (:func:`as_tensor`, :func:`to_numpy`, :func:`check_ndim`, :func:`check_rows`,
:func:`check_finite`) and label images (:func:`check_labels`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "to_numpy",
    "check_finite",
    "check_positive",
    "check_positive_int",
    "check_probability",
    "check_choice",
    "check_ndim",
    "check_rows",
    "check_vector",
    "check_range",
    "check_labels",
]


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


def check_ndim(
    x: torch.Tensor, name: str, ndims: int | tuple[int, ...], shape_doc: str
) -> torch.Tensor:
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
        raise ValueError(
            f"{name} must be {'non-negative' if allow_zero else 'positive'}; got {value!r}"
        )
    return v


def check_range(
    value: float,
    name: str,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float in [low, high]; ``low_open``/``high_open`` exclude an end,
    e.g. (0, 1)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {value!r}") from None
    above = v > low if low_open else v >= low
    below = v < high if high_open else v <= high
    if math.isnan(v) or not (above and below):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}; got {value!r}")
    return v


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """``value`` as an ``int`` ≥ ``minimum`` (booleans and floats are refused)."""
    if (
        not isinstance(value, (int, np.integer))
        or isinstance(value, (bool, np.bool_))
        or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_probability(value: float, name: str) -> float:
    """``value`` as a float in [0, 1]."""
    return check_range(value, name, 0.0, 1.0)


def check_choice(value, name: str, choices) -> object:
    """``value`` if it is one of ``choices``; otherwise a ``ValueError`` listing them."""
    if value not in tuple(choices):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def to_numpy(x, name: str) -> np.ndarray:
    """``x`` as a NumPy array (a tensor is detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as err:  # pragma: no cover - numpy accepts nearly anything
        raise ValueError(f"{name} must be array-like: {err}") from None


def check_rows(x, name: str, dim: int | None = None, *, allow_1d: bool = False) -> torch.Tensor:
    """``x`` as a tensor of rows ``(n, dim)`` without NaN (float64 kept, else float32).

    A ``(dim,)`` vector becomes ``(1, dim)`` when ``allow_1d``.
    """
    t = x if isinstance(x, torch.Tensor) else as_tensor(x, name)
    if allow_1d and t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or (dim is not None and t.shape[1] != dim):
        want = f"(n, {dim if dim is not None else 'd'})" + (
            f" or ({dim if dim is not None else 'd'},)" if allow_1d else ""
        )
        raise ValueError(f"{name} must have shape {want}; got {tuple(t.shape)}")
    if torch.isnan(t).any():
        raise ValueError(f"{name} contains NaN")
    return t.float() if t.dtype != torch.float64 else t


def check_labels(
    x,
    name: str = "labels",
    *,
    ndims: tuple[int, ...] | None = None,
    non_negative: bool = True,
    integer_floats: bool = True,
) -> np.ndarray:
    """A label image or volume as int64: integer or bool ids.

    Args:
        ndims: allowed numbers of dimensions (``None``: any).
        non_negative: refuse negative ids (0 is the boundary / unlabelled id).
        integer_floats: also accept a float array whose values are all whole numbers.
    """
    lab = to_numpy(x, name)
    if ndims is not None and lab.ndim not in ndims:
        shapes = {2: "(H, W)", 3: "(Z, Y, X)"}
        raise ValueError(
            f"{name} must have shape {' or '.join(shapes.get(d, f'{d}-D') for d in ndims)}; "
            f"got {lab.shape}"
        )
    if not (np.issubdtype(lab.dtype, np.integer) or lab.dtype == bool):
        if not (
            integer_floats
            and np.issubdtype(lab.dtype, np.floating)
            and np.all(lab == np.round(lab))
        ):
            raise ValueError(f"{name} must hold integer ids; got dtype {lab.dtype}")
    lab = lab.astype(np.int64)
    if non_negative and (lab < 0).any():
        raise ValueError(f"{name} must be non-negative (0 = boundary/unlabelled)")
    return lab


def check_vector(x, name: str, dim: int) -> torch.Tensor:
    """``x`` as a finite float ``(dim,)`` tensor (a ``(1, dim)`` row is flattened)."""
    t = x if isinstance(x, torch.Tensor) else as_tensor(x, name)
    t = t.float().reshape(-1) if t.ndim <= 1 or (t.ndim == 2 and t.shape[0] == 1) else t
    if t.ndim != 1 or t.numel() != dim:
        raise ValueError(f"{name} must have {dim} entries; got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t
