"""SMLM emitter tables: localisations or true emitters, one row per emitter and frame.

The data structure shared by the single-molecule localisation microscopy simulator and the
localisation methods of Speiser et al., "Deep learning enables fast and dense single-molecule
localization with high accuracy", *Nature Methods* 18:1082–1090 (2021) (DECODE), written for
the book.

Conventions: x is the column and y the row coordinate, both in pixels with pixel centres at
integers (a frame of width ``W`` spans ``[−0.5, W − 0.5]``); z is in nm; the pixel size is an
``(x, y)`` pair in nm, checked by :func:`as_pixel_size` (shared with
:class:`~neuroinverse.simulators.smlm.SMLMSimulator`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from .._checks import check_positive_int

__all__ = [
    "EmitterTable",
    "as_pixel_size",
]


def as_pixel_size(value) -> tuple[float, float]:
    """A pixel size in nm as a positive ``(x, y)`` pair of floats (a number is used for both
    axes)."""
    if isinstance(value, (int, float)):
        value = (value, value)
    try:
        px = tuple(float(v) for v in value)
    except TypeError:
        raise ValueError(
            f"pixel_size must be a number or an (x, y) pair in nm; got {value!r}"
        ) from None
    if len(px) != 2 or not all(math.isfinite(p) and p > 0 for p in px):
        raise ValueError(f"pixel_size must be positive (x, y) nm; got {value!r}")
    return px


_OPTIONAL = ("sigma_x", "sigma_y", "sigma_z", "sigma_photons", "prob", "background", "id")


@dataclass
class EmitterTable:
    """A list of localisations (or true emitters), one row per emitter and frame.

    Attributes:
        frame: ``(n,)`` int64 frame index. For batched data of shape ``(B, T, H, W)`` it is
            the flat index ``b · T + t``.
        x, y: ``(n,)`` positions in pixels (column, row; pixel centres at integers).
        z: ``(n,)`` axial position in nm (0 in 2D).
        photons: ``(n,)`` photons of the emitter in that frame.
        n_frames: number of frames the table refers to (frames without rows count as empty).
        pixel_size: ``(x, y)`` pixel size in nm.
        sigma_x, sigma_y, sigma_z, sigma_photons: optional ``(n,)`` predicted uncertainties
            (px, px, nm, photons).
        prob: optional ``(n,)`` detection probability.
        background: optional ``(n,)`` local background (photons per pixel).
        id: optional ``(n,)`` int64 identity of the fluorophore (simulations).
    """

    frame: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor
    photons: torch.Tensor
    n_frames: int
    pixel_size: tuple[float, float] = (100.0, 100.0)
    sigma_x: torch.Tensor | None = None
    sigma_y: torch.Tensor | None = None
    sigma_z: torch.Tensor | None = None
    sigma_photons: torch.Tensor | None = None
    prob: torch.Tensor | None = None
    background: torch.Tensor | None = None
    id: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.pixel_size = as_pixel_size(self.pixel_size)
        check_positive_int(self.n_frames, "n_frames", minimum=0)
        n = self.frame.shape[0] if self.frame.dim() == 1 else -1
        for name in ("frame", "x", "y", "z", "photons") + _OPTIONAL:
            v = getattr(self, name)
            if v is None:
                continue
            if v.dim() != 1 or v.shape[0] != n:
                raise ValueError(
                    f"EmitterTable.{name} must have shape ({n},); got {tuple(v.shape)}"
                )
        if n and (int(self.frame.min()) < 0 or int(self.frame.max()) >= self.n_frames):
            raise ValueError(f"EmitterTable.frame must lie in [0, n_frames={self.n_frames})")

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @classmethod
    def empty(cls, n_frames: int, *, pixel_size=(100.0, 100.0), device=None) -> EmitterTable:
        """A table with no rows."""
        z = torch.zeros(0, device=device)
        return cls(
            torch.zeros(0, dtype=torch.long, device=device),
            z,
            z.clone(),
            z.clone(),
            z.clone(),
            n_frames=n_frames,
            pixel_size=pixel_size,
        )

    @classmethod
    def concat(cls, tables: list[EmitterTable]) -> EmitterTable:
        """Stack tables of consecutive frame sets: frames of table ``i`` are offset by the
        ``n_frames`` of the tables before it. Pixel sizes must agree; optional columns are kept
        only if every table has them."""
        if not tables:
            raise ValueError("tables must hold at least one EmitterTable")
        px = tables[0].pixel_size
        if any(tuple(t.pixel_size) != tuple(px) for t in tables):
            raise ValueError(f"pixel sizes differ: {[t.pixel_size for t in tables]}")
        offsets = [0]
        for t in tables[:-1]:
            offsets.append(offsets[-1] + t.n_frames)
        cols = {}
        for k in ("frame", "x", "y", "z", "photons") + _OPTIONAL:
            vals = [getattr(t, k) for t in tables]
            if all(v is not None for v in vals):
                cols[k] = torch.cat(
                    [v + o if k == "frame" else v for v, o in zip(vals, offsets, strict=True)]
                )
        return cls(**cols, n_frames=offsets[-1] + tables[-1].n_frames, pixel_size=px)

    def _columns(self) -> dict[str, torch.Tensor]:
        cols = {k: getattr(self, k) for k in ("frame", "x", "y", "z", "photons") + _OPTIONAL}
        return {k: v for k, v in cols.items() if v is not None}

    def select(self, index) -> EmitterTable:
        """The rows ``index`` (boolean mask or integer indices)."""
        return replace(self, **{k: v[index] for k, v in self._columns().items()})

    def to(self, device) -> EmitterTable:
        return replace(self, **{k: v.to(device) for k, v in self._columns().items()})

    def in_frames(self, start: int, stop: int) -> EmitterTable:
        """Rows of frames ``[start, stop)``, re-indexed from 0 (``n_frames = stop − start``)."""
        t = self.select((self.frame >= start) & (self.frame < stop))
        return replace(t, frame=t.frame - start, n_frames=stop - start)

    def counts(self) -> torch.Tensor:
        """``(n_frames,)`` number of rows per frame."""
        return torch.bincount(self.frame, minlength=self.n_frames)

    def xyz_nm(self) -> torch.Tensor:
        """``(n, 3)`` positions in nm (x, y scaled by the pixel size)."""
        return torch.stack([self.x * self.pixel_size[0], self.y * self.pixel_size[1], self.z], 1)
