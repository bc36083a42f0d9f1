"""Direction selectivity of tuning curves: preferred direction, DSI and angular errors.

As in Lappalainen et al. (Nature 2024, Methods "Direction selectivity index"): for responses
``r_theta`` to motion in directions ``theta``, the vector sum ``z = sum r_theta e^{i theta}``
gives the preferred direction ``PD = arg z`` and ``DSI = |z| / sum |r_theta|`` (0: no
preference, 1: responds to one direction only).
"""

from __future__ import annotations

import numpy as np

__all__ = ["direction_selectivity", "angular_error", "polarity_agreement"]


def direction_selectivity(responses, angles_deg) -> tuple[np.ndarray, np.ndarray]:
    """Preferred direction (degrees in [0, 360)) and DSI of tuning curves ``(..., n_angles)``."""
    r = np.asarray(responses, dtype=float)
    a = np.deg2rad(np.asarray(angles_deg, dtype=float))
    if r.shape[-1] != a.size:
        raise ValueError(f"responses must end with {a.size} directions; got shape {r.shape}")
    z = (r * np.exp(1j * a)).sum(-1)
    norm = np.abs(r).sum(-1)
    dsi = np.where(norm > 0, np.abs(z) / np.where(norm > 0, norm, 1.0), 0.0)
    return np.rad2deg(np.angle(z)) % 360.0, dsi


def angular_error(a_deg, b_deg) -> np.ndarray:
    """Absolute angular difference in degrees, in [0, 180]."""
    d = (np.asarray(a_deg, dtype=float) - np.asarray(b_deg, dtype=float)) % 360.0
    return np.minimum(d, 360.0 - d)


def polarity_agreement(measured: dict, truth: dict) -> int:
    """Number of cell types whose measured sign (±1) equals the known polarity."""
    return int(sum(int(np.sign(measured[k]) == truth[k]) for k in truth))
