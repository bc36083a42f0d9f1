"""SMLM image formation: the pixel-integrated Gaussian PSF, the camera, and the Mortensen precision.

Image formation of the generative model of Speiser et al., "Deep learning enables fast and
dense single-molecule localization with high accuracy", *Nature Methods* 18:1082–1090 (2021)
(DECODE; defaults from the paper's Methods and the configuration files of its reference code
``TuragaLab/DECODE``), written for the book and used by
:class:`~neuroinverse.simulators.smlm.SMLMSimulator`:

* **PSF** (reference code's Gaussian PSF): the pixel-integrated Gaussian
  ``μ(i, j) = N/4 [erf((x_{i+½} − x)/(√2 σx)) − erf((x_{i−½} − x)/(√2 σx))] [same in y]``,
  with the astigmatic widths ``σx(z) = σ0 √(1 + ((z + f)/d)²)``,
  ``σy(z) = σ0 √(1 + ((z − f)/d)²)`` (focal shift ``f = 250`` nm, depth ``d = 280`` nm) in 3D.
* **Camera** (reference code's EMCCD camera model): ``k ~ Poisson(qe μ + spur)``; EM gain
  ``Gamma(k, G)`` (EMCCD only); read noise ``N(0, σ_read²)``;
  ``ADU = floor(e / e_per_adu) + baseline`` clamped at 0. :meth:`Camera.backward` converts ADU
  back to photon units.

Conventions as in :mod:`~neuroinverse.simulators.smlm`: x is the column and y the row
coordinate in pixels (pixel centres at integers), z is in nm, frames have shape
``(..., H, W)``, and every random draw comes from an explicit ``torch.Generator``.

The analytic Cramér–Rao-like precision of Mortensen et al., *Nat Methods* 7:377 (2010) is
shipped beside the PSF as :func:`mortensen_precision`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import as_tensor, check_finite, check_positive
from .smlm_emitters import EmitterTable

__all__ = [
    "GaussianPSF",
    "Camera",
    "render_gaussian",
    "mortensen_precision",
]

_SQRT2 = math.sqrt(2.0)


# --------------------------------------------------------------------------------------------
# PSF
# --------------------------------------------------------------------------------------------


@dataclass
class GaussianPSF:
    """Pixel-integrated (astigmatic) Gaussian PSF.

    Args:
        sigma0: in-focus standard deviation in pixels (float, or a 0-d tensor to fit it).
        astigmatic: use the z-dependent widths; otherwise ``σx = σy = σ0`` for every z.
        focal_shift: nm, the foci of x and y lie at ``z = −f`` and ``z = +f``.
        depth: nm, the "Rayleigh range" ``d`` of the width model.
    """

    sigma0: float | torch.Tensor = 1.0
    astigmatic: bool = False
    focal_shift: float = 250.0
    depth: float = 280.0

    def __post_init__(self) -> None:
        if not isinstance(self.sigma0, torch.Tensor):
            check_positive(self.sigma0, "sigma0")
        check_positive(self.depth, "depth")

    def sigmas(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(σx, σy)`` in pixels for axial positions ``z`` (nm), each shaped like ``z``."""
        s0 = torch.as_tensor(self.sigma0, dtype=z.dtype, device=z.device)
        if not self.astigmatic:
            s = s0 * torch.ones_like(z)
            return s, s.clone()
        sx = s0 * torch.sqrt(1 + ((z + self.focal_shift) / self.depth) ** 2)
        sy = s0 * torch.sqrt(1 + ((z - self.focal_shift) / self.depth) ** 2)
        return sx, sy

    def render(
        self, table: EmitterTable, shape: tuple[int, int], *, chunk: int = 2**22
    ) -> torch.Tensor:
        """Expected photons ``(table.n_frames, H, W)`` of all emitters of ``table`` (no
        background)."""
        sx, sy = self.sigmas(table.z)
        return render_gaussian(
            table.frame,
            table.x,
            table.y,
            sx,
            sy,
            table.photons,
            n_frames=table.n_frames,
            shape=shape,
            chunk=chunk,
        )


def _erf_profile(centre: torch.Tensor, sigma: torch.Tensor, n: int) -> torch.Tensor:
    """``(E, n)`` fraction of a unit 1-D Gaussian falling into each pixel ``[i − ½, i + ½]``."""
    edges = torch.arange(n + 1, dtype=centre.dtype, device=centre.device) - 0.5
    cdf = torch.erf((edges[None, :] - centre[:, None]) / (_SQRT2 * sigma[:, None]))
    return 0.5 * (cdf[:, 1:] - cdf[:, :-1])


def render_gaussian(
    frame: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    sigma_x: torch.Tensor,
    sigma_y: torch.Tensor,
    photons: torch.Tensor,
    *,
    n_frames: int,
    shape: tuple[int, int],
    chunk: int = 2**22,
) -> torch.Tensor:
    """Render pixel-integrated Gaussians into ``(n_frames, H, W)`` frames (reference code's
    Gaussian PSF).

    Vectorised over all emitters: each emitter's separable erf profiles are multiplied into an
    ``(H, W)`` patch and index-added into its frame, in chunks of at most ``chunk`` pixels.
    Differentiable in every argument.

    Args:
        frame: ``(E,)`` int64 frame index of each emitter.
        x, y: ``(E,)`` positions in pixels (column, row).
        sigma_x, sigma_y: ``(E,)`` PSF widths in pixels (positive).
        photons: ``(E,)`` photon counts (non-negative).
        n_frames: number of output frames.
        shape: ``(H, W)`` frame shape in pixels.

    Returns:
        ``(n_frames, H, W)`` expected photons per pixel.
    """
    H, W = (int(s) for s in shape)
    if H < 1 or W < 1:
        raise ValueError(f"shape must be a positive (H, W); got {shape!r}")
    if photons.numel() and bool((photons < 0).any()):
        raise ValueError(
            "photons must be non-negative (negative photon counts in the emitter table)"
        )
    if sigma_x.numel() and bool(((sigma_x <= 0) | (sigma_y <= 0)).any()):
        raise ValueError("PSF widths sigma_x, sigma_y must be positive")
    out = torch.zeros(n_frames, H, W, dtype=x.dtype, device=x.device)
    if frame.numel() == 0:
        return out
    step = max(1, chunk // (H * W))
    for s in range(0, frame.numel(), step):
        sl = slice(s, s + step)
        ex = _erf_profile(x[sl], sigma_x[sl], W)
        ey = _erf_profile(y[sl], sigma_y[sl], H)
        patch = photons[sl, None, None] * ey[:, :, None] * ex[:, None, :]
        out = out.index_add(0, frame[sl], patch)
    return out


# --------------------------------------------------------------------------------------------
# Camera
# --------------------------------------------------------------------------------------------


def _gamma_integer_shape(k: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``Gamma(shape=k, scale=1)`` draws for integer ``k ≥ 0`` (0 where ``k = 0``).

    Marsaglia & Tsang (2000) rejection sampler, vectorised, drawing from ``generator`` (torch's
    own gamma sampler takes no generator).
    """
    kk = k.reshape(-1)
    res = torch.zeros_like(kk)
    idx = torch.nonzero(kk > 0).squeeze(1)
    d_all = kk - 1.0 / 3.0
    while idx.numel():
        d = d_all[idx]
        c = 1.0 / torch.sqrt(9.0 * d)
        xn = torch.randn(idx.shape, generator=generator, dtype=k.dtype, device=k.device)
        v = (1 + c * xn) ** 3
        u = torch.rand(idx.shape, generator=generator, dtype=k.dtype, device=k.device)
        ok = (v > 0) & (torch.log(u) < 0.5 * xn**2 + d - d * v + d * torch.log(v.clamp_min(1e-30)))
        res[idx[ok]] = (d * v)[ok]
        idx = idx[~ok]
    return res.reshape(k.shape)


@dataclass
class Camera:
    """EMCCD / sCMOS / perfect camera: expected photons → ADU and back (reference code's EMCCD
    camera model).

    Args:
        qe: quantum efficiency.
        spurious: spurious charge (electrons per pixel and frame, mean).
        em_gain: EM gain ``G`` (EMCCD); ``None`` for sCMOS / perfect cameras.
        e_per_adu: electrons per ADU.
        baseline: ADU offset.
        read_sigma: read noise SD in electrons (a float or an ``(H, W)`` per-pixel map).
        quantise: floor to integer ADU (off for the perfect camera).

    The defaults are the SMLM 2016 challenge EMCCD; see :meth:`emccd`, :meth:`scmos`,
    :meth:`perfect`.
    """

    qe: float = 1.0
    spurious: float = 0.002
    em_gain: float | None = 300.0
    e_per_adu: float = 45.0
    baseline: float = 100.0
    read_sigma: float | torch.Tensor = 74.4
    quantise: bool = True

    def __post_init__(self) -> None:
        check_positive(self.qe, "qe")
        check_positive(self.spurious, "spurious", allow_zero=True)
        if self.em_gain is not None:
            check_positive(self.em_gain, "em_gain")
        check_positive(self.e_per_adu, "e_per_adu")
        if isinstance(self.read_sigma, torch.Tensor):
            if bool((self.read_sigma < 0).any()):
                raise ValueError("read_sigma must be non-negative")
        else:
            check_positive(self.read_sigma, "read_sigma", allow_zero=True)

    @classmethod
    def emccd(cls, **kw) -> Camera:
        """The SMLM 2016 challenge EMCCD (qe 1, spur 0.002, G 300, 45 e/ADU, 100 ADU, 74.4 e⁻)."""
        return cls(**kw)

    @classmethod
    def scmos(
        cls,
        *,
        qe: float = 1.0,
        read_sigma: float | torch.Tensor = 1.6,
        e_per_adu: float = 0.5,
        baseline: float = 100.0,
    ) -> Camera:
        """An sCMOS camera (no EM gain; read noise may be a per-pixel map)."""
        return cls(
            qe=qe,
            spurious=0.0,
            em_gain=None,
            e_per_adu=e_per_adu,
            baseline=baseline,
            read_sigma=read_sigma,
        )

    @classmethod
    def perfect(cls) -> Camera:
        """Poisson shot noise only; ADU equal photon counts."""
        return cls(
            qe=1.0,
            spurious=0.0,
            em_gain=None,
            e_per_adu=1.0,
            baseline=0.0,
            read_sigma=0.0,
            quantise=False,
        )

    @property
    def excess_noise(self) -> float:
        """Variance factor ``F`` of the gain register: 2 for EMCCD, 1 otherwise."""
        return 2.0 if self.em_gain is not None else 1.0

    def forward(
        self, expected: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw camera frames (ADU) for expected photons ``expected`` (any shape
        ``(..., H, W)``)."""
        if not isinstance(expected, torch.Tensor):
            raise ValueError("expected must be a tensor of expected photons")
        check_finite(expected, "expected")
        if bool((expected < 0).any()):
            raise ValueError("expected photons must be non-negative (negative photon counts)")
        e = torch.poisson(self.qe * expected + self.spurious, generator=generator)
        if self.em_gain is not None:
            e = _gamma_integer_shape(e, generator) * self.em_gain
        rs = self.read_sigma
        if isinstance(rs, torch.Tensor) or rs > 0:
            rs_t = torch.as_tensor(rs, dtype=e.dtype, device=e.device)
            if rs_t.dim() and rs_t.shape != e.shape[-rs_t.dim() :]:
                raise ValueError(
                    f"read_sigma map {tuple(rs_t.shape)} does not match frames {tuple(e.shape)}"
                )
            e = e + rs_t * torch.randn(e.shape, generator=generator, dtype=e.dtype, device=e.device)
        adu = e / self.e_per_adu
        if self.quantise:
            adu = torch.floor(adu)
        return (adu + self.baseline).clamp_min(0.0)

    def backward(self, adu: torch.Tensor) -> torch.Tensor:
        """Convert ADU to photon units: ``((ADU − baseline) e_per_adu / G − spur) / qe``."""
        gain = self.em_gain if self.em_gain is not None else 1.0
        return ((adu - self.baseline) * self.e_per_adu / gain - self.spurious) / self.qe


def mortensen_precision(
    photons, background, *, sigma: float = 1.0, pixel_size: float = 100.0, excess_noise: float = 1.0
) -> torch.Tensor:
    """Per-axis localisation precision (nm) of a 2D Gaussian spot, Mortensen et al. (2010).

    ``var = F (σa²/N) (16/9 + 8π σa² b / (N a²))`` with ``σa² = σ² + a²/12`` (``σ`` and the
    pixel size ``a`` in nm, ``b`` photons per pixel, ``F`` the excess noise factor: 2 for EMCCD).

    Args:
        photons: ``(n,)`` photons per spot (positive).
        background: ``(n,)`` or scalar photons per pixel.
        sigma: PSF SD in pixels.
        pixel_size: nm.
        excess_noise: ``F``.

    Returns:
        ``(n,)`` standard deviation per axis in nm.
    """
    N = as_tensor(photons, "photons", dtype=torch.float64)
    b = as_tensor(background, "background", dtype=torch.float64)
    if bool((N <= 0).any()):
        raise ValueError("photons must be positive")
    if bool((b < 0).any()):
        raise ValueError("background must be non-negative")
    a = float(pixel_size)
    sa2 = (float(sigma) * a) ** 2 + a**2 / 12
    var = excess_noise * sa2 / N * (16 / 9 + 8 * math.pi * sa2 * b / (N * a**2))
    return var.sqrt()
