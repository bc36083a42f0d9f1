"""Scalar wave optics of a programmable-pupil microscope: phase masks, defocus and PSF stacks.

The microscope of Deb et al., "FourierNets enable the design of highly non-local optical
encoders for computational imaging" (NeurIPS 2022, arXiv:2104.10611, Sec. 3 and the
supplement's simulation details): a phase mask φ(k) sits in the pupil (Fourier) plane of a
4f system; a point at axial offset z is imaged with the pupil field

    U_z(k) = P(k) · exp(iφ(k)) · exp(2πi z sqrt((n/λ)² − |k|²)),

P the disc |k| ≤ NA/λ normalised so that Σ|P|² dk² = 1, and the PSF is
h_z = |dk² · FFT2(U_z)|² (a density per µm², Σ h_z dx² = 1). The PSF is then cropped from the
padded grid back to N × N, tapered at the crop edge, and sum-pooled to camera pixels. Every
step is a torch operation, so the PSF stack is differentiable in the mask.

Grid: M = N + pad pixels of size dx (µm); frequencies k_j = (j − (M − 1)/2)/(M dx), symmetric
about the centre, so that a flat mask gives h_z = h_{−z} exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .._checks import check_finite, check_positive, check_positive_int

__all__ = [
    "PupilMicroscope",
    "flat_mask",
    "ramps_mask",
    "random_phase_mask",
    "radial_profile_zero",
    "r80",
    "airy_first_zero",
]


def airy_first_zero(wavelength: float, na: float) -> float:
    """First zero of the in-focus Airy pattern, 0.61 λ / NA (µm)."""
    return 0.6098 * check_positive(wavelength, "wavelength") / check_positive(na, "na")


@dataclass(frozen=True)
class PupilMicroscope:
    """A scalar pupil-plane microscope with a programmable phase mask, checked once when made.

    Args:
        n_pixels: N, the simulation field in pixels of size ``dx`` (before camera pooling).
        pad: extra pixels of the FFT grid (M = N + pad); ``pad`` must be even.
        dx: simulation pixel (µm).
        wavelength: λ (µm).
        na: numerical aperture; NA/λ must stay below 1/(2 dx) (Nyquist) and NA below ``n``.
        n_immersion: refractive index n of the immersion medium.
        z: the axial offsets of the planes (µm), shape (D,).
        downsample: camera pooling factor s (sum-pooling); N must be divisible by s.
        taper_width: τ of the edge taper 2(sigmoid(d/τ) − 1/2), in pixels.
    """

    n_pixels: int
    pad: int
    dx: float
    wavelength: float
    na: float
    n_immersion: float
    z: tuple[float, ...]
    downsample: int = 2
    taper_width: float = 5.0

    def __post_init__(self) -> None:
        check_positive_int(self.n_pixels, "n_pixels")
        check_positive_int(self.pad, "pad", minimum=0)
        if self.pad % 2:
            raise ValueError(f"pad must be even; got {self.pad}")
        check_positive(self.dx, "dx")
        check_positive(self.wavelength, "wavelength")
        check_positive(self.na, "na")
        check_positive(self.n_immersion, "n_immersion")
        check_positive_int(self.downsample, "downsample")
        check_positive(self.taper_width, "taper_width")
        if self.n_pixels % self.downsample:
            raise ValueError(
                f"n_pixels ({self.n_pixels}) must be divisible by downsample ({self.downsample})"
            )
        if self.na >= self.n_immersion:
            raise ValueError(f"na ({self.na}) must be below n_immersion ({self.n_immersion})")
        if self.na / self.wavelength >= 1 / (2 * self.dx):
            raise ValueError(
                f"the pupil aliases: NA/λ = {self.na / self.wavelength:.4g} µm⁻¹ must be below "
                f"1/(2 dx) = {1 / (2 * self.dx):.4g} µm⁻¹"
            )
        z = tuple(float(v) for v in self.z)
        if not z or any(not math.isfinite(v) for v in z):
            raise ValueError("z must hold at least one finite plane offset (µm)")
        object.__setattr__(self, "z", z)

    # ------------------------------------------------------------------ geometry
    @property
    def grid(self) -> int:
        """M, the FFT grid size."""
        return self.n_pixels + self.pad

    @property
    def dk(self) -> float:
        """Frequency spacing 1/(M dx) (µm⁻¹)."""
        return 1.0 / (self.grid * self.dx)

    @property
    def n_planes(self) -> int:
        return len(self.z)

    @property
    def camera_pixels(self) -> int:
        """Camera image side N / s."""
        return self.n_pixels // self.downsample

    @property
    def camera_pixel(self) -> float:
        """Camera pixel s·dx (µm)."""
        return self.downsample * self.dx

    def frequencies(self, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(k_y, k_x), each (M, M), in µm⁻¹, centred on (M − 1)/2."""
        k = (
            torch.arange(self.grid, dtype=torch.float64, device=device) - (self.grid - 1) / 2
        ) * self.dk
        return torch.meshgrid(k, k, indexing="ij")

    def pupil(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """P(k), (M, M) real, the disc |k| ≤ NA/λ with Σ|P|² dk² = 1."""
        ky, kx = self.frequencies(device)
        inside = (kx**2 + ky**2 <= (self.na / self.wavelength) ** 2).to(torch.float64)
        return (inside / torch.sqrt(inside.sum() * self.dk**2)).to(dtype)

    def normalised_coordinates(self, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(u_y, u_x) = k / (NA/λ): the pupil edge at radius 1."""
        ky, kx = self.frequencies(device)
        return ky / (self.na / self.wavelength), kx / (self.na / self.wavelength)

    def defocus_phase(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """ψ_z(k) = 2π z sqrt((n/λ)² − |k|²) inside the pupil, 0 outside; (D, M, M)."""
        ky, kx = self.frequencies(device)
        k2 = kx**2 + ky**2
        inside = k2 <= (self.na / self.wavelength) ** 2
        kz = torch.where(
            inside,
            torch.sqrt(torch.clamp((self.n_immersion / self.wavelength) ** 2 - k2, min=0)),
            0.0,
        )
        z = torch.tensor(self.z, dtype=torch.float64, device=device)
        return (2 * math.pi * z[:, None, None] * kz).to(dtype)

    def taper(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """2(sigmoid(d/τ) − 1/2) on the N × N crop, d the distance (px) to the nearest crop edge."""
        i = torch.arange(self.n_pixels, dtype=torch.float64, device=device)
        d1 = torch.minimum(i + 0.5, self.n_pixels - 0.5 - i)
        d = torch.minimum(d1[:, None], d1[None, :])
        return (2 * (torch.sigmoid(d / self.taper_width) - 0.5)).to(dtype)

    def _taper(self, device, dtype) -> torch.Tensor:
        cache = self.__dict__.setdefault("_cache", {})
        key = ("taper", str(device), dtype)
        if key not in cache:
            cache[key] = self.taper(device, dtype)
        return cache[key]

    # ------------------------------------------------------------------ PSFs
    def _constant(self, name: str, device, dtype) -> torch.Tensor:
        """The pupil or the defocus phase on ``device``/``dtype``, computed once per microscope.

        Performance only: the two depend on the microscope alone, not on the mask, and
        rebuilding them costs far more than the FFTs of a PSF stack.
        """
        cache = self.__dict__.setdefault("_cache", {})  # frozen dataclass: write the dict itself
        key = (name, str(device), dtype)
        if key not in cache:  # stored in FFT order (ifftshifted), as field_psf uses them
            value = (self.pupil if name == "pupil" else self.defocus_phase)(device, dtype)
            cache[key] = torch.fft.ifftshift(value, dim=(-2, -1))
        return cache[key]

    def check_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """Raise ``ValueError`` unless ``mask`` is a finite (M, M) real phase in radians."""
        if not isinstance(mask, torch.Tensor) or mask.shape != (self.grid, self.grid):
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(
                f"mask must be a ({self.grid}, {self.grid}) tensor (the pupil grid M × M); "
                f"got {shape}"
            )
        if mask.is_complex():
            raise ValueError("mask must be a real phase in radians, not complex")
        return check_finite(mask, "mask")

    def field_psf(self, mask: torch.Tensor) -> torch.Tensor:
        """The uncropped PSF density h_z (µm⁻²) on the M × M grid, (D, M, M); Σ h_z dx² = 1."""
        mask = self.check_mask(mask)
        dev = mask.device
        pupil = self._constant("pupil", dev, mask.dtype)
        phase = torch.fft.ifftshift(mask, dim=(-2, -1))[None] + self._constant(
            "defocus", dev, mask.dtype
        )
        field = torch.fft.fft2(torch.polar(pupil.expand_as(phase), phase))  # FFT2(ifftshift(U_z))
        return torch.fft.fftshift(field.real**2 + field.imag**2, dim=(-2, -1)) * self.dk**4

    def psf_stack(self, mask: torch.Tensor) -> torch.Tensor:
        """The camera PSF stack, (D, N/s, N/s): the fraction of a plane's light on each pixel.

        Cropped from the padded grid to N × N, tapered, multiplied by dx² (so that an
        uncropped stack sums to 1 per plane) and sum-pooled by ``downsample``.
        """
        h = self.field_psf(mask) * self.dx**2
        c = self.pad // 2
        h = h[:, c : c + self.n_pixels, c : c + self.n_pixels] * self._taper(h.device, h.dtype)
        s = self.downsample
        if s > 1:
            h = F.avg_pool2d(h[None], s, divisor_override=1)[0]
        return h


# ---------------------------------------------------------------------- masks
def flat_mask(scope: PupilMicroscope, device=None) -> torch.Tensor:
    """The zero phase (a widefield microscope), (M, M)."""
    return torch.zeros(scope.grid, scope.grid, device=device)


def ramps_mask(
    scope: PupilMicroscope,
    shift: float,
    defocus: tuple[float, ...] = (-5.0, 15.0, -10.0, 5.0, -15.0, 10.0),
    inner_radius: float = 1 / math.sqrt(7),
    device=None,
) -> torch.Tensor:
    """The "DefocusedRamps" initialisation of the paper's code, (M, M) radians.

    The pupil disc beyond ``inner_radius`` (normalised units) is cut into ``len(defocus)``
    angular sectors; sector i, centred on angle c_i, gets a linear ramp δ (u_y cos c_i −
    u_x sin c_i), which shifts its sub-image sideways by ``shift`` µm (δ = 2π (NA/λ) shift),
    plus d_i |u − (cos c_i, sin c_i)(r_c + 1)/2|², a defocus that focuses each view at another
    depth; each sector's phase has zero mean. Inside ``inner_radius`` the phase is zero.
    """
    check_positive(shift, "shift", allow_zero=True)
    n = len(defocus)
    if n < 1:
        raise ValueError("defocus needs one entry per sector")
    uy, ux = scope.normalised_coordinates(device)
    r = torch.sqrt(ux**2 + uy**2)
    theta = torch.atan2(uy, ux) % (2 * math.pi)
    delta = 2 * math.pi * scope.na / scope.wavelength * shift
    mask = torch.zeros_like(r)
    pupil = r <= 1
    for i, d in enumerate(defocus):
        ci = 2 * math.pi * (i + 0.5) / n
        sector = (
            pupil
            & (r > inner_radius)
            & (theta >= 2 * math.pi * i / n)
            & (theta < 2 * math.pi * (i + 1) / n)
        )
        centre = (inner_radius + 1) / 2
        phi = delta * (uy * math.cos(ci) - ux * math.sin(ci))
        phi = phi + d * ((ux - centre * math.cos(ci)) ** 2 + (uy - centre * math.sin(ci)) ** 2)
        if sector.any():
            phi = phi - phi[sector].mean()
        mask = torch.where(sector, phi, mask)
    return mask.to(torch.float32)


def random_phase_mask(
    scope: PupilMicroscope, rms: float = 0.5, generator=None, device=None
) -> torch.Tensor:
    """A weak random phase, N(0, rms²) per pupil pixel inside the pupil, 0 outside; (M, M)."""
    check_positive(rms, "rms", allow_zero=True)
    noise = torch.randn(scope.grid, scope.grid, generator=generator) * rms
    return (noise * (scope.pupil() > 0)).to(device)


# ---------------------------------------------------------------------- PSF measures
def radial_profile_zero(
    scope: PupilMicroscope, mask: torch.Tensor, plane: int, step: float = 0.002
) -> float:
    """Position (µm) of the first minimum of the PSF along +x, evaluated off-grid.

    The field is the same pupil sum as :meth:`PupilMicroscope.field_psf`, evaluated by a direct
    DFT at x = 0, ``step``, 2·``step``, … µm along the x axis through the optical axis, so that
    the first zero of the in-focus PSF is located far more finely than one pixel.
    """
    mask = scope.check_mask(mask)
    check_positive(step, "step")
    ky, kx = scope.frequencies()
    u = torch.polar(
        scope.pupil(dtype=torch.float64),
        mask.double() + scope.defocus_phase(dtype=torch.float64)[plane],
    )
    x = torch.arange(0, 4 * scope.wavelength / scope.na, step, dtype=torch.float64)
    # sum over k_y first (x-axis cut: y = 0), then a DFT over k_x
    col = u.sum(0)
    k = kx[0]
    f = (col[None, :] * torch.exp(2j * math.pi * x[:, None] * k[None, :])).sum(1)
    h = f.abs() ** 2
    is_min = (h[1:-1] < h[:-2]) & (h[1:-1] <= h[2:])
    idx = torch.nonzero(is_min)
    if len(idx) == 0:
        raise ValueError("no minimum found along x")
    return float(x[int(idx[0]) + 1])


def r80(psf: torch.Tensor, fraction: float = 0.8) -> torch.Tensor:
    """Radius (pixels) around each plane's energy centroid holding ``fraction`` of its energy.

    Args:
        psf: (D, H, W) non-negative PSF stack (or (H, W)).

    Returns:
        (D,) radii in pixels (the camera pixel for a camera PSF).
    """
    if psf.dim() == 2:
        psf = psf[None]
    if psf.dim() != 3:
        raise ValueError(f"psf must have shape (D, H, W); got {tuple(psf.shape)}")
    d, h, w = psf.shape
    p = psf.detach().double().clamp(min=0).reshape(d, -1)
    p = p / p.sum(1, keepdim=True)
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    yy, xx = yy.reshape(-1).to(p.device), xx.reshape(-1).to(p.device)
    cy, cx = (p * yy).sum(1), (p * xx).sum(1)
    rad = torch.sqrt((yy[None] - cy[:, None]) ** 2 + (xx[None] - cx[:, None]) ** 2)
    order = torch.argsort(rad, dim=1)
    cum = torch.cumsum(torch.gather(p, 1, order), 1)
    k = torch.searchsorted(
        cum, torch.full((d, 1), fraction, dtype=cum.dtype, device=cum.device)
    ).clamp(max=h * w - 1)
    return torch.gather(torch.gather(rad, 1, order), 1, k)[:, 0].float()
