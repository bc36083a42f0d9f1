"""Hexagonal lattice of visual columns and stimuli drawn on it (moving edges, flashes, textures).

Columns sit at axial coordinates ``(u, v)`` with ``|u| <= R``, ``|v| <= R``, ``|u + v| <= R``
(``3R(R+1) + 1`` columns). Their positions in the visual field follow the convention of the
fly connectome model of Lappalainen et al. (Nature 2024, Methods): ``x = 1.5 v`` and
``y = -sqrt(3) (u + v / 2)``, in units of the lattice constant, so that neighbouring columns
lie ``sqrt(3)`` units apart. Directions of motion are angles in this ``(x, y)`` frame.

Every stimulus is an intensity per column and time step, shape ``(T, n_columns)`` (or with a
leading batch axis), values in ``[0, 1]`` with a grey background of 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_positive, check_positive_int, check_range

__all__ = [
    "HexLattice",
    "hex_columns",
    "rotate_axial",
    "moving_edges",
    "full_field_flash",
    "moving_textures",
    "check_stimulus",
]


def hex_columns(extent: int) -> tuple[np.ndarray, np.ndarray]:
    """Axial coordinates ``(u, v)`` of the columns within hex radius ``extent``, u-major order."""
    extent = check_positive_int(extent, "extent", minimum=0)
    u, v = [], []
    for uu in range(-extent, extent + 1):
        for vv in range(max(-extent, -extent - uu), min(extent, extent - uu) + 1):
            u.append(uu)
            v.append(vv)
    return np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)


def rotate_axial(u, v, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotate axial offsets by ``k`` steps of 60 degrees (``(u, v) -> (-v, u + v)`` per step)."""
    u, v = np.asarray(u), np.asarray(v)
    for _ in range(int(k) % 6):
        u, v = -v, u + v
    return u, v


@dataclass(frozen=True)
class HexLattice:
    """The columns of a hexagonal eye of radius ``extent`` (≥ 1).

    Attributes:
        extent: hex radius R.
        u, v: axial coordinates, shape ``(n_columns,)``.
        x, y: positions in lattice units, shape ``(n_columns,)``.
    """

    extent: int

    def __post_init__(self) -> None:
        check_positive_int(self.extent, "extent", minimum=1)

    @property
    def u(self) -> np.ndarray:
        return hex_columns(self.extent)[0]

    @property
    def v(self) -> np.ndarray:
        return hex_columns(self.extent)[1]

    @property
    def n_columns(self) -> int:
        return 3 * self.extent * (self.extent + 1) + 1

    @property
    def x(self) -> np.ndarray:
        return 1.5 * self.v.astype(float)

    @property
    def y(self) -> np.ndarray:
        return -math.sqrt(3.0) * (self.u + self.v / 2.0)

    @property
    def centre(self) -> int:
        """Index of the column at ``(0, 0)``."""
        return int(np.flatnonzero((self.u == 0) & (self.v == 0))[0])

    def index(self, u: int, v: int) -> int:
        """Column index of ``(u, v)``; raises if it lies outside the lattice."""
        hit = np.flatnonzero((self.u == u) & (self.v == v))
        if hit.size == 0:
            raise ValueError(f"column ({u}, {v}) lies outside the lattice of extent {self.extent}")
        return int(hit[0])


def check_stimulus(stimulus: torch.Tensor, n_columns: int) -> torch.Tensor:
    """Raise unless ``stimulus`` has shape ``(..., T, n_columns)``; return it as a float tensor."""
    s = torch.as_tensor(stimulus, dtype=torch.float32)
    if s.dim() < 2 or s.shape[-1] != n_columns:
        raise ValueError(
            f"stimulus must have shape (..., T, {n_columns}) for this lattice; got {tuple(s.shape)}"
        )
    if not torch.isfinite(s).all():
        raise ValueError("stimulus must be finite")
    return s


def _positions(lattice: HexLattice) -> torch.Tensor:
    return torch.tensor(np.stack([lattice.x, lattice.y], 1), dtype=torch.float32)


def moving_edges(
    lattice: HexLattice,
    *,
    angles_deg,
    speed: float,
    dt: float,
    t_pre: float,
    t_stim: float,
    polarity: int = 1,
    background: float = 0.5,
    softness: float = 0.3,
) -> torch.Tensor:
    """Straight edges sweeping across the lattice, one per direction.

    After ``t_pre`` seconds of grey, an edge enters at the lattice's trailing side and moves
    at ``speed`` columns per second (one column = the ``sqrt(3)`` spacing of neighbours)
    along the direction ``angle`` (degrees, the
    ``(x, y)`` frame); columns it has passed turn bright (``polarity = 1``, ON edge) or dark
    (``polarity = -1``, OFF edge).

    Returns:
        Intensities, shape ``(n_angles, T, n_columns)`` with ``T = round((t_pre + t_stim) / dt)``.
    """
    check_positive(speed, "speed")
    check_positive(dt, "dt")
    if polarity not in (1, -1):
        raise ValueError(f"polarity must be 1 (ON) or -1 (OFF); got {polarity!r}")
    ang = torch.deg2rad(torch.as_tensor(angles_deg, dtype=torch.float32).reshape(-1))
    pos = _positions(lattice) / math.sqrt(3.0)  # in column spacings
    proj = pos[:, 0][None] * torch.cos(ang)[:, None] + pos[:, 1][None] * torch.sin(ang)[:, None]
    n_pre, n_all = round(t_pre / dt), round((t_pre + t_stim) / dt)
    t = (torch.arange(n_all, dtype=torch.float32) - n_pre) * dt
    start = -float(lattice.extent) - 1.0
    front = start + speed * t  # (T,)
    passed = torch.sigmoid((front[None, :, None] - proj[:, None, :]) / softness)
    passed = passed * (t >= 0).float()[None, :, None]
    level = 1.0 if polarity == 1 else 0.0
    return background + (level - background) * passed


def full_field_flash(
    lattice: HexLattice,
    *,
    dt: float,
    t_pre: float,
    t_on: float,
    t_post: float,
    polarity: int = 1,
    background: float = 0.5,
) -> torch.Tensor:
    """``background``, then the whole lattice bright (ON, 1) or dark (OFF, 0) for ``t_on`` s, then
    ``background`` again: ``(T, n_columns)``."""
    check_positive(dt, "dt")
    check_range(background, "background", 0.0, 1.0)
    n_pre, n_on, n_post = round(t_pre / dt), round(t_on / dt), round(t_post / dt)
    s = torch.full((n_pre + n_on + n_post, lattice.n_columns), float(background))
    s[n_pre : n_pre + n_on] = 1.0 if polarity == 1 else 0.0
    return s


def moving_textures(
    lattice: HexLattice,
    *,
    n: int,
    n_steps: int,
    dt: float,
    speed_range: tuple[float, float],
    generator: torch.Generator,
    n_waves: int = 6,
    contrast: float = 0.5,
    p_edge: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random textures translating rigidly across the lattice, with their true flow.

    Each texture is a sum of ``n_waves`` plane waves with random orientation, spatial period
    (3 to 12 lattice units) and phase, squashed into ``[0, 1]``; the whole pattern moves at
    one random velocity (direction uniform, speed uniform in ``speed_range`` lattice units/s).
    A fraction ``p_edge`` of the samples are instead single edges at the same velocity: ON
    (dark to bright) or OFF (bright to dark) with equal probability.

    Returns:
        ``stimulus`` of shape ``(n, n_steps, n_columns)`` and ``flow`` of shape ``(n, 2)``
        (velocity in lattice units per second, ``(x, y)`` frame).
    """
    n = check_positive_int(n, "n")
    check_range(p_edge, "p_edge", 0.0, 1.0)
    n_steps = check_positive_int(n_steps, "n_steps")
    check_positive(dt, "dt")
    lo, hi = speed_range
    check_range(lo, "speed_range[0]", 0.0, hi)
    g = generator
    pos = _positions(lattice)  # (C, 2)
    theta = torch.rand(n, generator=g) * 2 * math.pi
    speed = lo + (hi - lo) * torch.rand(n, generator=g)
    vel = torch.stack([torch.cos(theta), torch.sin(theta)], 1) * speed[:, None]  # (n, 2)
    t = torch.arange(n_steps, dtype=torch.float32) * dt
    shifted = pos[None, None] - vel[:, None, None, :] * t[None, :, None, None]  # (n, T, C, 2)
    wa = torch.rand(n, n_waves, generator=g) * 2 * math.pi
    k = 2 * math.pi / (3.0 + 9.0 * torch.rand(n, n_waves, generator=g))
    ph = torch.rand(n, n_waves, generator=g) * 2 * math.pi
    kvec = torch.stack([torch.cos(wa), torch.sin(wa)], -1) * k[..., None]  # (n, W, 2)
    arg = torch.einsum("ntcd,nwd->ntcw", shifted, kvec) + ph[:, None, None, :]
    tex = torch.sin(arg).sum(-1) / math.sqrt(n_waves / 2)
    tex = 0.5 + contrast * torch.tanh(tex)
    # edges: the projection on the motion direction against a moving front
    proj = torch.einsum(
        "ntcd,nd->ntc", shifted, torch.stack([torch.cos(theta), torch.sin(theta)], 1)
    )
    sign = torch.where(torch.rand(n, generator=g) < 0.5, 1.0, -1.0)
    offset = (torch.rand(n, generator=g) - 0.5) * 2 * lattice.extent
    passed = torch.sigmoid((offset[:, None, None] - proj) / 0.3)
    edge = torch.where(sign[:, None, None] > 0, passed, 1.0 - passed)
    use_edge = (torch.rand(n, generator=g) < p_edge)[:, None, None]
    return torch.where(use_edge, edge, tex), vel
