"""Classical SMLM fitting: local-maximum detection plus per-spot Gaussian maximum likelihood.

The baseline of Speiser et al., *Nat Methods* 18:1082 (2021) (DECODE) is the standard
"detect, then fit one emitter per spot" pipeline (e.g. SMAP, ThunderSTORM; Smith et al.,
*Nat Methods* 7:373 (2010)), written for the book and vectorised over all spots at once:

1. :func:`detect_spots`: Gaussian smoothing, local maxima within a ``(2d + 1)²`` window
   (what ``skimage.feature.peak_local_max`` does with ``min_distance = d``), threshold
   ``b̂ + k √b̂`` with ``b̂`` the frame's median;
2. :func:`extract_rois`: a square region of interest around every maximum;
3. :func:`fit_gaussian_mle`: Poisson maximum likelihood of ``μ = b + N · PSF(x, y[, z])``
   with the pixel-integrated (astigmatic) Gaussian of :mod:`neuroinverse.simulators.smlm_imaging`,
   by Levenberg–Marquardt-damped Fisher scoring with analytic derivatives, all ROIs in one
   batch (float64). The inverse Fisher information gives each fit's Cramér–Rao bound.

:func:`fit_frames` runs the three steps. :func:`calibrate_psf` fits the PSF width of a
frame set given detections (the "PSF self-calibration" form of the unsupervised idea of
Speiser, Turaga & Macke, arXiv:1907.00770): Poisson NLL of the rendered frames minimised
over ``σ0`` (and nuisance photon scale / backgrounds) with L-BFGS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import check_positive, check_positive_int
from ..simulators.smlm_emitters import EmitterTable
from ..simulators.smlm_imaging import GaussianPSF, render_gaussian

__all__ = [
    "detect_spots",
    "extract_rois",
    "fit_gaussian_mle",
    "GaussianFit",
    "fit_frames",
    "gaussian_crlb",
    "calibrate_psf",
]

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)
_SQRTPI = math.sqrt(math.pi)


def _check_frames(frames: torch.Tensor, name: str = "frames") -> torch.Tensor:
    if not isinstance(frames, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of shape (n_frames, H, W)")
    if frames.dim() != 3:
        raise ValueError(f"{name} must have shape (n_frames, H, W); got {tuple(frames.shape)}")
    if not torch.isfinite(frames).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return frames


def _gaussian_smooth(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=frames.dtype, device=frames.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    x = F.pad(frames[:, None], (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return x[:, 0]


def detect_spots(
    frames: torch.Tensor,
    *,
    sigma: float = 1.0,
    min_distance: int = 2,
    threshold_k: float = 3.0,
    background: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Local maxima of the smoothed frames above ``b̂ + k √b̂``.

    Args:
        frames: ``(F, H, W)`` frames in photon units.
        sigma: Gaussian smoothing SD in pixels.
        min_distance: maxima are the largest value in a ``(2 d + 1)²`` window.
        threshold_k: ``k`` of the threshold.
        background: ``(F,)`` background per frame (photons per pixel); default the frame's median.

    Returns:
        ``(frame, row, col)`` int64 tensors, one entry per spot.
    """
    _check_frames(frames)
    check_positive(sigma, "sigma")
    min_distance = check_positive_int(min_distance, "min_distance")
    s = _gaussian_smooth(frames.float(), float(sigma))
    if background is None:
        background = frames.float().flatten(1).median(1).values
    b = background.to(s).clamp_min(0.0)
    thr = (b + threshold_k * b.sqrt())[:, None, None]
    w = 2 * min_distance + 1
    pooled = F.max_pool2d(s[:, None], w, stride=1, padding=min_distance)[:, 0]
    peaks = (s >= pooled) & (s > thr)
    f, r, c = torch.nonzero(peaks, as_tuple=True)
    return f, r, c


def extract_rois(
    frames: torch.Tensor,
    frame: torch.Tensor,
    row: torch.Tensor,
    col: torch.Tensor,
    *,
    size: int = 7,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Square ``size × size`` regions of interest centred on ``(row, col)``.

    Returns:
        ``rois`` ``(n, size, size)`` (0 outside the frame), ``mask`` ``(n, size, size)`` (True
        inside the frame), ``origin`` ``(n, 2)`` the (row, col) of each ROI's pixel ``[0, 0]``.
    """
    _check_frames(frames)
    if not isinstance(size, int) or size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 3; got {size!r}")
    h = size // 2
    Fn, H, W = frames.shape
    pad = F.pad(frames, (h, h, h, h))
    valid = (
        F.pad(torch.ones(1, H, W, dtype=torch.bool, device=frames.device).float(), (h, h, h, h))[0]
        > 0
    )
    d = torch.arange(size, device=frames.device)
    rr = row[:, None, None] + d[None, :, None]  # padded coordinates
    cc = col[:, None, None] + d[None, None, :]
    rois = pad[frame[:, None, None], rr, cc]
    mask = valid[rr, cc]
    origin = torch.stack([row - h, col - h], 1)
    return rois, mask, origin


def _profile(n: int, centre: torch.Tensor, sigma: torch.Tensor):
    """Pixel fractions ``E`` ``(m, n)`` and their derivatives in the centre and in σ."""
    i = torch.arange(n, dtype=centre.dtype, device=centre.device)[None]
    c, s = centre[:, None], sigma[:, None]
    up = (i + 0.5 - c) / (_SQRT2 * s)
    um = (i - 0.5 - c) / (_SQRT2 * s)
    gp, gm = torch.exp(-(up**2)), torch.exp(-(um**2))
    e = 0.5 * (torch.erf(up) - torch.erf(um))
    de_dc = -(gp - gm) / (_SQRT2PI * s)
    de_ds = -(up * gp - um * gm) / (_SQRTPI * s)
    return e, de_dc, de_ds


@dataclass
class GaussianFit:
    """Batched MLE result; positions are ROI-local (pixel ``[0, 0]`` of the ROI at 0).

    Attributes:
        params: ``(n, P)`` fitted ``(x, y, N, b)`` or ``(x, y, z, N, b)`` (px, px, [nm], photons,
            photons/px).
        crlb: ``(n, P)`` square roots of the diagonal of the inverse Fisher information.
        nll: ``(n,)`` final Poisson negative log-likelihood (up to data-only terms).
    """

    params: torch.Tensor
    crlb: torch.Tensor
    nll: torch.Tensor


def _model(theta: torch.Tensor, size: int, psf: GaussianPSF, three_d: bool):
    x, y = theta[:, 0], theta[:, 1]
    if three_d:
        z, N, b = theta[:, 2], theta[:, 3], theta[:, 4]
        sx, sy = psf.sigmas(z)
    else:
        N, b = theta[:, 2], theta[:, 3]
        s0 = torch.as_tensor(float(psf.sigma0), dtype=theta.dtype, device=theta.device)
        sx = sy = s0.expand_as(x)
    ex, dex, dsx = _profile(size, x, sx)
    ey, dey, dsy = _profile(size, y, sy)
    psf_img = ey[:, :, None] * ex[:, None, :]
    mu = b[:, None, None] + N[:, None, None] * psf_img
    jac = [
        N[:, None, None] * ey[:, :, None] * dex[:, None, :],
        N[:, None, None] * dey[:, :, None] * ex[:, None, :],
    ]
    if three_d:
        s0 = float(psf.sigma0)
        dsx_dz = s0**2 * (z + psf.focal_shift) / (psf.depth**2 * sx)
        dsy_dz = s0**2 * (z - psf.focal_shift) / (psf.depth**2 * sy)
        jac.append(
            N[:, None, None]
            * (
                dsy[:, :, None] * ex[:, None, :] * dsy_dz[:, None, None]
                + ey[:, :, None] * dsx[:, None, :] * dsx_dz[:, None, None]
            )
        )
    jac += [psf_img, torch.ones_like(mu)]
    return mu, torch.stack(jac, -1)


def fit_gaussian_mle(
    rois: torch.Tensor,
    *,
    psf: GaussianPSF,
    mask: torch.Tensor | None = None,
    init: torch.Tensor | None = None,
    n_iter: int = 20,
    z_range=(-750.0, 750.0),
) -> GaussianFit:
    """Poisson MLE of one Gaussian spot per ROI, all ROIs at once (Levenberg–Marquardt).

    Maximises ``Σ_pix [x log μ − μ]`` with ``μ = b + N · PSF`` over ``θ = (x, y[, z], N, b)``
    by Fisher scoring (``I = Jᵀ diag(1/μ) J``) damped with ``λ diag(I)``; ``λ`` shrinks after
    an accepted step and grows after a rejected one, per ROI.

    Args:
        rois: ``(n, s, s)`` photon counts.
        psf: the PSF model (``psf.astigmatic`` selects the 3D fit with z).
        mask: ``(n, s, s)`` pixels that count (default all).
        init: ``(n, P)`` starting values (default: the ROI centre, the border median as b and
            the background-subtracted sum as N; z = 0).
        n_iter: iterations.
        z_range: nm, the fitted z is clamped to this interval (3D).

    Returns:
        :class:`GaussianFit` in ROI-local pixel coordinates.
    """
    if rois.dim() != 3 or rois.shape[1] != rois.shape[2]:
        raise ValueError(f"rois must have shape (n, s, s); got {tuple(rois.shape)}")
    n, s, _ = rois.shape
    three_d = bool(psf.astigmatic)
    P = 5 if three_d else 4
    dev = rois.device
    x = rois.double()
    m = torch.ones_like(x) if mask is None else mask.to(x.dtype)
    if init is None:
        border = torch.cat([x[:, 0], x[:, -1], x[:, 1:-1, 0], x[:, 1:-1, -1]], 1)
        bmask = torch.cat([m[:, 0], m[:, -1], m[:, 1:-1, 0], m[:, 1:-1, -1]], 1)
        bord = torch.where(bmask > 0, border, torch.full_like(border, float("nan")))
        b0 = torch.nan_to_num(bord.nanmedian(1).values, nan=1.0).clamp_min(0.1)
        N0 = ((x - b0[:, None, None]) * m).sum((1, 2)).clamp_min(10.0)
        c = torch.full((n,), (s - 1) / 2, dtype=x.dtype, device=dev)
        cols = [c, c.clone()] + ([torch.zeros_like(c)] if three_d else []) + [N0, b0]
        theta = torch.stack(cols, 1)
    else:
        if init.shape != (n, P):
            raise ValueError(f"init must have shape ({n}, {P}); got {tuple(init.shape)}")
        theta = init.double().clone()
    if n == 0:
        z = theta.new_zeros(0, P)
        return GaussianFit(z, z.clone(), theta.new_zeros(0))
    lo = torch.tensor(
        [-1.0, -1.0] + ([z_range[0]] if three_d else []) + [1.0, 1e-3], dtype=x.dtype, device=dev
    )
    hi = torch.tensor(
        [s, s] + ([z_range[1]] if three_d else []) + [1e9, 1e9], dtype=x.dtype, device=dev
    )

    def nll_of(th):
        mu, jac = _model(th, s, psf, three_d)
        return ((mu - x * torch.log(mu)) * m).sum((1, 2)), mu, jac

    nll, mu, jac = nll_of(theta)
    lam = torch.full((n,), 1e-3, dtype=x.dtype, device=dev)
    eye = torch.eye(P, dtype=x.dtype, device=dev)
    for _ in range(int(n_iter)):
        w = (m / mu)[..., None]
        J = jac.flatten(1, 2)  # (n, s*s, P)
        fisher = torch.einsum("nkp,nkq->npq", J * w.flatten(1, 2), J)
        grad = torch.einsum("nk,nkp->np", ((1 - x / mu) * m).flatten(1), J)
        diag = torch.diagonal(fisher, dim1=1, dim2=2).clamp_min(1e-12)
        A = fisher + lam[:, None, None] * eye * diag[:, None, :]
        step = torch.linalg.solve(A, -grad[..., None])[..., 0]
        cand = torch.maximum(torch.minimum(theta + step, hi), lo)
        nll_c, mu_c, jac_c = nll_of(cand)
        better = nll_c <= nll
        theta = torch.where(better[:, None], cand, theta)
        nll = torch.where(better, nll_c, nll)
        mu = torch.where(better[:, None, None], mu_c, mu)
        jac = torch.where(better[:, None, None, None], jac_c, jac)
        lam = torch.where(better, lam * 0.1, lam * 10.0).clamp(1e-7, 1e7)
    w = (m / mu)[..., None]
    J = jac.flatten(1, 2)
    fisher = torch.einsum("nkp,nkq->npq", J * w.flatten(1, 2), J)
    cov = torch.linalg.pinv(fisher)
    crlb = torch.diagonal(cov, dim1=1, dim2=2).clamp_min(0).sqrt()
    return GaussianFit(theta, crlb, nll)


def gaussian_crlb(
    photons: torch.Tensor,
    background: torch.Tensor,
    *,
    psf: GaussianPSF,
    z: torch.Tensor | None = None,
    roi_size: int = 15,
    excess_noise: float = 1.0,
) -> torch.Tensor:
    """Cramér–Rao bounds of an isolated spot: ``sqrt(diag(I⁻¹))`` at the true parameters.

    The Fisher information ``I = Σ_pix ∂μ ∂μᵀ / μ`` of the pixel-integrated model
    (:func:`fit_gaussian_mle`'s), on a ``roi_size²`` window centred on the spot, times the
    excess noise factor (2 for EMCCD). In 2D it reproduces Mortensen et al. (2010) closely
    (:func:`neuroinverse.simulators.smlm_imaging.mortensen_precision`); it also covers 3D
    astigmatism.

    Args:
        photons: ``(n,)`` photons per spot.
        background: ``(n,)`` photons per pixel.
        psf: PSF model.
        z: ``(n,)`` nm (3D only).
        roi_size: odd window side in pixels.
        excess_noise: variance factor ``F``.

    Returns:
        ``(n, P)`` bounds (px, px[, nm], photons, photons/px) for ``(x, y[, z], N, b)``.
    """
    N = photons.double()
    b = torch.as_tensor(background, dtype=torch.float64, device=N.device).expand_as(N)
    if bool((N <= 0).any()) or bool((b < 0).any()):
        raise ValueError("photons must be positive and background non-negative")
    c = torch.full_like(N, (roi_size - 1) / 2)
    cols = [c, c.clone()]
    if psf.astigmatic:
        if z is None:
            raise ValueError("z is required for an astigmatic PSF")
        cols.append(z.double())
    theta = torch.stack(cols + [N, b.clamp_min(1e-6)], 1)
    mu, jac = _model(theta, roi_size, psf, bool(psf.astigmatic))
    J = jac.flatten(1, 2)
    fisher = torch.einsum("nkp,nkq->npq", J / mu.flatten(1)[..., None], J)
    return (torch.diagonal(torch.linalg.inv(fisher), dim1=1, dim2=2) * excess_noise).sqrt()


def fit_frames(
    frames: torch.Tensor,
    *,
    psf: GaussianPSF,
    pixel_size=(100.0, 100.0),
    roi_size: int = 7,
    sigma_smooth: float = 1.0,
    min_distance: int = 2,
    threshold_k: float = 3.0,
    n_iter: int = 20,
    excess_noise: float = 1.0,
    z_seeds=(-400.0, 0.0, 400.0),
) -> EmitterTable:
    """Classical pipeline: :func:`detect_spots` → :func:`extract_rois` → :func:`fit_gaussian_mle`.

    Args:
        frames: ``(F, H, W)`` frames in photon units.
        psf: PSF model (fixed width; astigmatic for 3D, then each spot is fitted from every
            z in ``z_seeds`` and the best likelihood kept).
        pixel_size: ``(x, y)`` nm of the returned table.
        roi_size: odd ROI side in pixels.
        sigma_smooth, min_distance, threshold_k: detection settings.
        n_iter: LM iterations.
        excess_noise: variance factor applied to the Cramér–Rao bounds (2 for EMCCD data).

    Returns:
        Localisations with ``photons``, ``background`` and CRLB-based ``sigma_*`` columns;
        fits whose centre left the ROI are dropped.
    """
    _check_frames(frames)
    fr, r, c = detect_spots(
        frames, sigma=sigma_smooth, min_distance=min_distance, threshold_k=threshold_k
    )
    rois, mask, origin = extract_rois(frames, fr, r, c, size=roi_size)
    if psf.astigmatic:
        best = None
        for z0 in z_seeds:
            init = None
            fit0 = fit_gaussian_mle(rois, psf=psf, mask=mask, n_iter=0)
            init = fit0.params.clone()
            init[:, 2] = z0
            fit = fit_gaussian_mle(rois, psf=psf, mask=mask, init=init, n_iter=n_iter)
            if best is None:
                best = fit
            else:
                b = fit.nll < best.nll
                best = GaussianFit(
                    torch.where(b[:, None], fit.params, best.params),
                    torch.where(b[:, None], fit.crlb, best.crlb),
                    torch.where(b, fit.nll, best.nll),
                )
        fit = best
    else:
        fit = fit_gaussian_mle(rois, psf=psf, mask=mask, n_iter=n_iter)
    th, cr = fit.params, fit.crlb * math.sqrt(excess_noise)
    h = roi_size // 2
    inside = ((th[:, 0] - h).abs() <= h) & ((th[:, 1] - h).abs() <= h) & torch.isfinite(th).all(1)
    x = th[:, 0] + origin[:, 1]
    y = th[:, 1] + origin[:, 0]
    Hh, Ww = frames.shape[1:]
    inside &= (x >= -0.5) & (x <= Ww - 0.5) & (y >= -0.5) & (y <= Hh - 0.5)
    zcol = th[:, 2] if psf.astigmatic else torch.zeros_like(x)
    k = 3 if psf.astigmatic else 2
    table = EmitterTable(
        frame=fr,
        x=x.float(),
        y=y.float(),
        z=zcol.float(),
        photons=th[:, k].float(),
        n_frames=frames.shape[0],
        pixel_size=pixel_size,
        background=th[:, k + 1].float(),
        sigma_x=cr[:, 0].float(),
        sigma_y=cr[:, 1].float(),
        sigma_z=(cr[:, 2] if psf.astigmatic else torch.zeros_like(x)).float(),
        sigma_photons=cr[:, k].float(),
    )
    return table.select(inside)


def calibrate_psf(
    frames: torch.Tensor,
    detections: EmitterTable,
    *,
    background: torch.Tensor,
    psf: GaussianPSF | None = None,
    fit_photon_scale: bool = True,
    fit_background: bool = True,
    n_iter: int = 50,
) -> tuple[float, list[float]]:
    """Fit the PSF width ``σ0`` of frames given detected emitters (PSF self-calibration).

    Minimises the Poisson NLL ``Σ_pix (μ − x log μ)`` of
    ``μ(θ) = b_f + s · Σ_i N̂_i · PSF(x − x̂_i; σ0)`` over ``log σ0`` and, optionally, a global
    photon scale ``s`` and per-frame backgrounds ``b_f`` (nuisances), with L-BFGS. Detections
    stay fixed.

    Args:
        frames: ``(F, H, W)`` frames in photon units.
        detections: localisations of those frames (``n_frames = F``).
        background: ``(F,)`` starting background per frame (photons per pixel).
        psf: the PSF model whose ``sigma0`` is the starting value (astigmatic: the widths
            ``σx(z), σy(z)`` scale with ``σ0``); default ``GaussianPSF(1.0)``.
        fit_photon_scale, fit_background: also fit these nuisances.
        n_iter: largest number of L-BFGS iterations (strong-Wolfe line search).

    Returns:
        ``(σ̂0, trace)``: the fitted width in pixels and ``σ0`` at every likelihood evaluation.
    """
    _check_frames(frames)
    if len(detections) == 0:
        raise ValueError("detections is an empty emitter table: nothing to calibrate the PSF on")
    if detections.n_frames != frames.shape[0]:
        raise ValueError(
            f"detections cover {detections.n_frames} frames but frames has {frames.shape[0]}"
        )
    if bool((detections.photons < 0).any()):
        raise ValueError("detections have negative photon counts")
    psf = GaussianPSF() if psf is None else psf
    x = frames.double()
    det = detections.to(x.device)
    log_s0 = torch.tensor(
        math.log(float(psf.sigma0)), dtype=x.dtype, device=x.device, requires_grad=True
    )
    log_scale = torch.zeros((), dtype=x.dtype, device=x.device, requires_grad=fit_photon_scale)
    log_b = background.to(x).clamp_min(1e-3).log().clone().requires_grad_(fit_background)
    params = [p for p in (log_s0, log_scale, log_b) if p.requires_grad]
    opt = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=int(n_iter),
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
    )
    fr, px, py, pz, N = (
        det.frame,
        det.x.double(),
        det.y.double(),
        det.z.double(),
        det.photons.double(),
    )
    trace: list[float] = []

    def closure():
        opt.zero_grad()
        model = GaussianPSF(
            sigma0=log_s0.exp(),
            astigmatic=psf.astigmatic,
            focal_shift=psf.focal_shift,
            depth=psf.depth,
        )
        sx, sy = model.sigmas(pz)
        mu = (
            render_gaussian(
                fr,
                px,
                py,
                sx,
                sy,
                N * log_scale.exp(),
                n_frames=x.shape[0],
                shape=tuple(x.shape[1:]),
            )
            + log_b.exp()[:, None, None]
        )
        loss = (mu - x * torch.log(mu)).sum() / x.numel()
        loss.backward()
        trace.append(float(log_s0.detach().exp()))
        return loss

    opt.step(closure)
    return float(log_s0.detach().exp()), trace
