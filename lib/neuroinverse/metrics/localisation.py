"""Localisation metrics of the SMLM challenge: matching, Jaccard index, RMSE, efficiency.

Conventions of Sage et al., "Super-resolution fight club: assessment of 2D and 3D
single-molecule localization microscopy software", *Nat Methods* 16:387 (2019), as used by
Speiser et al., *Nat Methods* 18:1082 (2021) (DECODE):

* predictions and ground truth are matched one-to-one **per frame**; a pair may match only
  if its lateral distance is ≤ 250 nm and its axial distance ≤ 500 nm;
* ``JI = TP / (TP + FP + FN)``; on the true positives ``RMSE_lat = sqrt(Σ(Δx² + Δy²)/TP)``
  and ``RMSE_ax = sqrt(Σ Δz²/TP)`` in nm;
* efficiency ``E = 1 − sqrt((1 − JI)² + (α · RMSE / 100 nm)²)`` with ``α = 1`` (lateral) and
  ``α = 0.5`` (axial); ``E_3D = (E_lat + E_ax) / 2``.

Matching uses the optimal assignment (``scipy.optimize.linear_sum_assignment``) on the 3D
distance, forbidden pairs excluded; the challenge's greedy matcher is available with
``method="greedy"``. :func:`render_localisations` draws a super-resolution image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr

from .._checks import check_choice, check_positive, check_positive_int, check_range
from ..simulators.smlm_emitters import EmitterTable

__all__ = [
    "Matching",
    "LocalisationScores",
    "match_localisations",
    "efficiency",
    "localisation_scores",
    "uncertainty_calibration",
    "isolated",
    "render_localisations",
]


@dataclass
class Matching:
    """Result of :func:`match_localisations`.

    Attributes:
        pred_index, truth_index: ``(TP,)`` row indices of matched pairs.
        n_pred, n_truth: table lengths.
        delta_nm: ``(TP, 3)`` prediction − truth in nm (x, y, z).
    """

    pred_index: np.ndarray
    truth_index: np.ndarray
    n_pred: int
    n_truth: int
    delta_nm: np.ndarray

    @property
    def tp(self) -> int:
        return int(self.pred_index.size)

    @property
    def fp(self) -> int:
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        return self.n_truth - self.tp


@dataclass
class LocalisationScores:
    """Detection and localisation scores (SMLM challenge conventions; lengths in nm)."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    jaccard: float
    rmse_lat: float
    rmse_ax: float
    rmse_vol: float
    efficiency_lat: float
    efficiency_ax: float
    efficiency_3d: float

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def _check_pair(pred: EmitterTable, truth: EmitterTable) -> None:
    for name, t in (("pred", pred), ("truth", truth)):
        if not isinstance(t, EmitterTable):
            raise ValueError(f"{name} must be an EmitterTable; got {type(t).__name__}")
    if tuple(pred.pixel_size) != tuple(truth.pixel_size):
        raise ValueError(
            f"pixel sizes differ: pred {pred.pixel_size} nm vs truth {truth.pixel_size} nm"
        )
    if pred.n_frames != truth.n_frames:
        raise ValueError(f"pred covers {pred.n_frames} frames but truth {truth.n_frames}")


def _greedy(cost: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pi, ti = np.nonzero(ok)
    order = np.argsort(cost[pi, ti], kind="stable")
    used_p, used_t, rp, rt = set(), set(), [], []
    for k in order:
        p, t = int(pi[k]), int(ti[k])
        if p in used_p or t in used_t:
            continue
        used_p.add(p)
        used_t.add(t)
        rp.append(p)
        rt.append(t)
    return np.asarray(rp, dtype=np.int64), np.asarray(rt, dtype=np.int64)


def match_localisations(
    pred: EmitterTable,
    truth: EmitterTable,
    *,
    lateral_radius: float = 250.0,
    axial_radius: float = 500.0,
    method: str = "hungarian",
) -> Matching:
    """Match predictions to ground truth one-to-one within each frame.

    Args:
        pred: predicted localisations.
        truth: ground-truth emitters (same ``n_frames`` and ``pixel_size``).
        lateral_radius: nm, the largest lateral distance of a pair.
        axial_radius: nm, the largest axial distance of a pair.
        method: ``"hungarian"`` (minimum total 3D distance, ``linear_sum_assignment``) or
            ``"greedy"`` (closest pairs first, the challenge's matcher).

    Returns:
        The :class:`Matching`.
    """
    _check_pair(pred, truth)
    check_choice(method, "method", ("hungarian", "greedy"))
    check_positive(lateral_radius, "lateral_radius")
    check_positive(axial_radius, "axial_radius")
    P = pred.xyz_nm().detach().cpu().double().numpy()
    T = truth.xyz_nm().detach().cpu().double().numpy()
    fp_, ft_ = pred.frame.cpu().numpy(), truth.frame.cpu().numpy()
    op, ot = np.argsort(fp_, kind="stable"), np.argsort(ft_, kind="stable")
    bp = np.searchsorted(fp_[op], np.arange(pred.n_frames + 1))
    bt = np.searchsorted(ft_[ot], np.arange(truth.n_frames + 1))
    frames = np.intersect1d(np.unique(fp_), np.unique(ft_))
    rp, rt = [], []
    for f in frames:
        ip, it = op[bp[f] : bp[f + 1]], ot[bt[f] : bt[f + 1]]
        d = P[ip, None, :] - T[None, it, :]
        lat = np.hypot(d[..., 0], d[..., 1])
        ok = (lat <= lateral_radius) & (np.abs(d[..., 2]) <= axial_radius)
        if not ok.any():
            continue
        cost = np.sqrt(lat**2 + d[..., 2] ** 2)
        if method == "hungarian":
            big = cost[ok].max() * (ip.size + it.size) + 1.0
            r, c = linear_sum_assignment(np.where(ok, cost, big))
            keep = ok[r, c]
            r, c = r[keep], c[keep]
        else:
            r, c = _greedy(cost, ok)
        rp.append(ip[r])
        rt.append(it[c])
    pi = np.concatenate(rp) if rp else np.zeros(0, np.int64)
    ti = np.concatenate(rt) if rt else np.zeros(0, np.int64)
    return Matching(
        pred_index=pi, truth_index=ti, n_pred=len(pred), n_truth=len(truth), delta_nm=P[pi] - T[ti]
    )


def efficiency(jaccard: float, rmse: float, *, alpha: float = 1.0) -> float:
    """SMLM-challenge efficiency ``1 − sqrt((1 − JI)² + (α · RMSE / 100 nm)²)``.

    Args:
        jaccard: Jaccard index in [0, 1].
        rmse: RMSE in nm.
        alpha: 1 for the lateral and 0.5 for the axial efficiency.
    """
    check_range(jaccard, "jaccard", 0.0, 1.0)
    check_positive(rmse, "rmse", allow_zero=True)
    return 1.0 - math.sqrt((1.0 - jaccard) ** 2 + (alpha * rmse / 100.0) ** 2)


def localisation_scores(
    pred: EmitterTable, truth: EmitterTable, *, matching: Matching | None = None, **match_kw
) -> LocalisationScores:
    """Jaccard index, precision, recall, RMSEs and efficiencies of ``pred`` against ``truth``.

    Raises ``ValueError`` if ``truth`` is empty (nothing to detect: JI and recall undefined).
    RMSEs and efficiencies are NaN when there is no true positive.
    """
    _check_pair(pred, truth)
    if len(truth) == 0:
        raise ValueError("truth is an empty emitter table: detection scores are undefined")
    m = matching if matching is not None else match_localisations(pred, truth, **match_kw)
    tp, fp, fn = m.tp, m.fp, m.fn
    ji = tp / (tp + fp + fn)
    if tp:
        d = m.delta_nm
        rl = float(np.sqrt((d[:, 0] ** 2 + d[:, 1] ** 2).sum() / tp))
        ra = float(np.sqrt((d[:, 2] ** 2).sum() / tp))
        rv = float(np.sqrt((d**2).sum() / tp))
        el, ea = efficiency(ji, rl, alpha=1.0), efficiency(ji, ra, alpha=0.5)
    else:
        rl = ra = rv = el = ea = float("nan")
    return LocalisationScores(
        tp=tp,
        fp=fp,
        fn=fn,
        precision=tp / max(tp + fp, 1),
        recall=tp / (tp + fn),
        jaccard=ji,
        rmse_lat=rl,
        rmse_ax=ra,
        rmse_vol=rv,
        efficiency_lat=el,
        efficiency_ax=ea,
        efficiency_3d=(el + ea) / 2,
    )


def isolated(
    table: EmitterTable, *, radius: float = 2.0, others: EmitterTable | None = None
) -> torch.Tensor:
    """Which rows of ``table`` have no other emitter in the same frame within ``radius`` pixels.

    Args:
        table: the emitters to test (e.g. the labelled ground truth).
        radius: lateral distance in pixels (strictly closer counts as a neighbour).
        others: the emitters that count as neighbours (default ``table`` itself); pass every
            rendered emitter to count dim, unlabelled ones too. A row is never its own
            neighbour: a neighbour at distance 0 in the same frame is taken to be the row itself.

    Returns:
        ``(len(table),)`` boolean tensor.

    >>> import torch
    >>> t = EmitterTable(frame=torch.tensor([0, 0, 0, 1]), x=torch.tensor([0.0, 1.5, 9.0, 0.5]),
    ...                  y=torch.zeros(4), z=torch.zeros(4), photons=torch.ones(4), n_frames=2)
    >>> isolated(t).tolist()
    [False, False, True, True]
    """
    check_positive(radius, "radius")
    nb = table if others is None else others
    out = torch.ones(len(table), dtype=torch.bool)
    f, x, y = (v.detach().cpu() for v in (table.frame, table.x, table.y))
    fo, xo, yo = (v.detach().cpu() for v in (nb.frame, nb.x, nb.y))
    for fr in torch.unique(f).tolist():
        i, j = torch.nonzero(f == fr).flatten(), torch.nonzero(fo == fr).flatten()
        if j.numel() == 0:
            continue
        d = torch.hypot(
            x[i, None].double() - xo[None, j].double(), y[i, None].double() - yo[None, j].double()
        )
        near = (d < radius) & (d > 0)
        out[i] = ~near.any(1)
    return out


def uncertainty_calibration(
    pred: EmitterTable,
    truth: EmitterTable,
    *,
    matching: Matching | None = None,
    n_bins: int = 8,
    truth_mask: torch.Tensor | np.ndarray | None = None,
    **match_kw,
) -> dict[str, np.ndarray | float]:
    """How well predicted lateral uncertainties match the actual errors of true positives.

    Args:
        pred: localisations with ``sigma_x``, ``sigma_y`` (pixels).
        truth: ground truth.
        matching: a precomputed matching (else :func:`match_localisations` with ``match_kw``).
        n_bins: quantile bins of the predicted lateral σ.
        truth_mask: ``(len(truth),)`` booleans; only true positives matched to a ``True`` row
            are scored (e.g. :func:`isolated` emitters). Default: all.

    Returns:
        dict with ``z_x``, ``z_y`` (``Δ / σ̂`` per TP), ``z_std_x``, ``z_std_y``, ``spearman``
        (Spearman ρ between ``σ̂_lat = sqrt(σ̂x² + σ̂y²)`` and ``|Δ_lat|``), and per bin
        ``bin_sigma`` (RMS predicted σ per axis, nm) and ``bin_rmse`` (empirical RMSE per
        axis, nm).
    """
    _check_pair(pred, truth)
    if pred.sigma_x is None or pred.sigma_y is None:
        raise ValueError("pred needs sigma_x and sigma_y columns (predicted uncertainties)")
    m = matching if matching is not None else match_localisations(pred, truth, **match_kw)
    if truth_mask is not None:
        keep = np.asarray(truth_mask, dtype=bool)
        if keep.shape != (m.n_truth,):
            raise ValueError(f"truth_mask must have shape ({m.n_truth},); got {keep.shape}")
        sel = keep[m.truth_index]
        m = Matching(
            pred_index=m.pred_index[sel],
            truth_index=m.truth_index[sel],
            n_pred=m.n_pred,
            n_truth=m.n_truth,
            delta_nm=m.delta_nm[sel],
        )
    if m.tp < 2 * n_bins:
        raise ValueError(f"only {m.tp} true positives: too few for {n_bins} calibration bins")
    sx = pred.sigma_x.detach().cpu().double().numpy()[m.pred_index] * pred.pixel_size[0]
    sy = pred.sigma_y.detach().cpu().double().numpy()[m.pred_index] * pred.pixel_size[1]
    dx, dy = m.delta_nm[:, 0], m.delta_nm[:, 1]
    s_lat, e_lat = np.hypot(sx, sy), np.hypot(dx, dy)
    edges = np.quantile(s_lat, np.linspace(0, 1, n_bins + 1))
    idx = np.clip(np.searchsorted(edges, s_lat, side="right") - 1, 0, n_bins - 1)
    bin_sigma = np.array(
        [np.sqrt(np.mean((sx[idx == b] ** 2 + sy[idx == b] ** 2) / 2)) for b in range(n_bins)]
    )
    bin_rmse = np.array(
        [np.sqrt(np.mean((dx[idx == b] ** 2 + dy[idx == b] ** 2) / 2)) for b in range(n_bins)]
    )
    zx, zy = dx / sx, dy / sy
    return dict(
        z_x=zx,
        z_y=zy,
        z_std_x=float(np.std(zx)),
        z_std_y=float(np.std(zy)),
        spearman=float(spearmanr(s_lat, e_lat)[0]),
        bin_sigma=bin_sigma,
        bin_rmse=bin_rmse,
    )


def render_localisations(
    table: EmitterTable, *, shape: tuple[int, int], upsample: int = 8, sigma_nm: float | None = 10.0
) -> torch.Tensor:
    """Super-resolution image: every localisation as a normalised Gaussian on a fine grid.

    Args:
        table: localisations (all frames are summed).
        shape: ``(H, W)`` of the camera frames in pixels.
        upsample: fine pixels per camera pixel.
        sigma_nm: width of each blob in nm; ``None`` uses each row's predicted
            ``sigma_x``/``sigma_y`` (needs them).

    Returns:
        ``(H · upsample, W · upsample)`` image (localisations per fine pixel).
    """
    if len(table) == 0:
        raise ValueError("table is an empty emitter table: nothing to render")
    if sigma_nm is None and (table.sigma_x is None or table.sigma_y is None):
        raise ValueError("sigma_nm=None needs predicted sigma_x and sigma_y in the table")
    H, W = shape
    u = check_positive_int(upsample, "upsample")
    x = (table.x.detach().double().cpu() + 0.5) * u - 0.5
    y = (table.y.detach().double().cpu() + 0.5) * u - 0.5
    if sigma_nm is None:
        sx = table.sigma_x.detach().double().cpu() * u
        sy = table.sigma_y.detach().double().cpu() * u
    else:
        sx = torch.full_like(x, sigma_nm / table.pixel_size[0] * u)
        sy = torch.full_like(y, sigma_nm / table.pixel_size[1] * u)
    sx, sy = sx.clamp_min(0.3), sy.clamp_min(0.3)
    gy = torch.arange(H * u, dtype=torch.float64)
    gx = torch.arange(W * u, dtype=torch.float64)
    img = torch.zeros(H * u, W * u, dtype=torch.float64)
    for s in range(0, x.numel(), 4096):
        sl = slice(s, s + 4096)
        ey = torch.exp(-0.5 * ((gy[None] - y[sl, None]) / sy[sl, None]) ** 2) / (
            math.sqrt(2 * math.pi) * sy[sl, None]
        )
        ex = torch.exp(-0.5 * ((gx[None] - x[sl, None]) / sx[sl, None]) ** 2) / (
            math.sqrt(2 * math.pi) * sx[sl, None]
        )
        img += ey.T @ ex
    return img.float()
