"""Single-molecule localisation microscopy (SMLM) simulator: blinking, PSF, camera.

The generative model of Speiser et al., "Deep learning enables fast and dense single-molecule
localization with high accuracy", *Nature Methods* 18:1082–1090 (2021) (DECODE; defaults from
the paper's Methods and the configuration files of its reference code ``TuragaLab/DECODE``),
written for the book:

* **Blinking** (paper, Methods, "Simulation"; reference code's blinking model): per simulated sequence of ``T`` frames,
  ``n ~ Poisson(λ)`` fluorophores with ``λ = em_avg (T + 1 + 6τ) / (τ + 1)``, onset
  ``t0 ~ U(−3τ, T + 3τ)``, one on-period ``T_on ~ Exp(mean τ)``, flux
  ``I ~ Normal(μ_I, σ_I)`` (clamped below) photons per full frame. Photons in frame ``f`` are
  ``I · |[t0, t0 + T_on] ∩ [f, f + 1]|``, so partial first and last frames are dimmer.
* **PSF** (reference code's Gaussian PSF): the pixel-integrated Gaussian
  ``μ(i, j) = N/4 [erf((x_{i+½} − x)/(√2 σx)) − erf((x_{i−½} − x)/(√2 σx))] [same in y]``,
  with the astigmatic widths ``σx(z) = σ0 √(1 + ((z + f)/d)²)``,
  ``σy(z) = σ0 √(1 + ((z − f)/d)²)`` (focal shift ``f = 250`` nm, depth ``d = 280`` nm) in 3D.
* **Background**: spatially uniform per frame, ``b ~ U(b_lo, b_hi)`` photons per pixel.
* **Camera** (reference code's EMCCD camera model): ``k ~ Poisson(qe μ + spur)``; EM gain ``Gamma(k, G)``
  (EMCCD only); read noise ``N(0, σ_read²)``; ``ADU = floor(e / e_per_adu) + baseline``
  clamped at 0. :meth:`Camera.backward` converts ADU back to photon units.

Conventions: x is the column and y the row coordinate, both in pixels with pixel centres at
integers (a frame of width ``W`` spans ``[−0.5, W − 0.5]``); z is in nm. Frames have shape
``(..., H, W)``. Every random draw comes from an explicit ``torch.Generator``.

The analytic Cramér–Rao-like precision of Mortensen et al., *Nat Methods* 7:377 (2010) is
shipped beside the simulator as :func:`mortensen_precision`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from .._checks import as_tensor, check_finite, check_positive

__all__ = [
    "EmitterTable",
    "GaussianPSF",
    "Camera",
    "SMLMBatch",
    "SMLMSimulator",
    "sample_blinking",
    "render_gaussian",
    "mortensen_precision",
]

_SQRT2 = math.sqrt(2.0)


def _pixel_size(value) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        value = (value, value)
    try:
        px = tuple(float(v) for v in value)
    except TypeError:
        raise ValueError(f"pixel_size must be a number or an (x, y) pair in nm; got {value!r}") from None
    if len(px) != 2 or not all(math.isfinite(p) and p > 0 for p in px):
        raise ValueError(f"pixel_size must be positive (x, y) nm; got {value!r}")
    return px


# --------------------------------------------------------------------------------------------
# Emitter tables
# --------------------------------------------------------------------------------------------

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
        self.pixel_size = _pixel_size(self.pixel_size)
        if not isinstance(self.n_frames, int) or self.n_frames < 0:
            raise ValueError(f"n_frames must be a non-negative integer; got {self.n_frames!r}")
        n = self.frame.shape[0] if self.frame.dim() == 1 else -1
        for name in ("frame", "x", "y", "z", "photons") + _OPTIONAL:
            v = getattr(self, name)
            if v is None:
                continue
            if v.dim() != 1 or v.shape[0] != n:
                raise ValueError(f"EmitterTable.{name} must have shape ({n},); got {tuple(v.shape)}")
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
                cols[k] = torch.cat([v + o if k == "frame" else v for v, o in zip(vals, offsets, strict=True)])
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

    def render(self, table: EmitterTable, shape: tuple[int, int], *, chunk: int = 2**22) -> torch.Tensor:
        """Expected photons ``(table.n_frames, H, W)`` of all emitters of ``table`` (no background)."""
        sx, sy = self.sigmas(table.z)
        return render_gaussian(
            table.frame, table.x, table.y, sx, sy, table.photons, n_frames=table.n_frames, shape=shape, chunk=chunk
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
    """Render pixel-integrated Gaussians into ``(n_frames, H, W)`` frames (reference code's Gaussian PSF).

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
        raise ValueError("photons must be non-negative (negative photon counts in the emitter table)")
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
    """EMCCD / sCMOS / perfect camera: expected photons → ADU and back (reference code's EMCCD camera model).

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
        cls, *, qe: float = 1.0, read_sigma: float | torch.Tensor = 1.6, e_per_adu: float = 0.5, baseline: float = 100.0
    ) -> Camera:
        """An sCMOS camera (no EM gain; read noise may be a per-pixel map)."""
        return cls(qe=qe, spurious=0.0, em_gain=None, e_per_adu=e_per_adu, baseline=baseline, read_sigma=read_sigma)

    @classmethod
    def perfect(cls) -> Camera:
        """Poisson shot noise only; ADU equal photon counts."""
        return cls(qe=1.0, spurious=0.0, em_gain=None, e_per_adu=1.0, baseline=0.0, read_sigma=0.0, quantise=False)

    @property
    def excess_noise(self) -> float:
        """Variance factor ``F`` of the gain register: 2 for EMCCD, 1 otherwise."""
        return 2.0 if self.em_gain is not None else 1.0

    def forward(self, expected: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw camera frames (ADU) for expected photons ``expected`` (any shape ``(..., H, W)``)."""
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
                raise ValueError(f"read_sigma map {tuple(rs_t.shape)} does not match frames {tuple(e.shape)}")
            e = e + rs_t * torch.randn(e.shape, generator=generator, dtype=e.dtype, device=e.device)
        adu = e / self.e_per_adu
        if self.quantise:
            adu = torch.floor(adu)
        return (adu + self.baseline).clamp_min(0.0)

    def backward(self, adu: torch.Tensor) -> torch.Tensor:
        """Convert ADU to photon units: ``((ADU − baseline) e_per_adu / G − spur) / qe``."""
        gain = self.em_gain if self.em_gain is not None else 1.0
        return ((adu - self.baseline) * self.e_per_adu / gain - self.spurious) / self.qe


# --------------------------------------------------------------------------------------------
# Blinking and the full simulator
# --------------------------------------------------------------------------------------------


def _per_sequence(value, n: int, name: str, device) -> torch.Tensor:
    v = as_tensor(value, name, dtype=torch.float32, device=device)
    if v.dim() == 0:
        v = v.expand(n)
    if v.shape != (n,):
        raise ValueError(f"{name} must be a number or have shape ({n},); got {tuple(v.shape)}")
    return v


def sample_blinking(
    *,
    n_sequences: int,
    n_frames: int,
    em_avg,
    tau: float,
    flux_mean,
    flux_std,
    frame_shape: tuple[int, int],
    flux_min: float = 1e-8,
    z_range: tuple[float, float] = (0.0, 0.0),
    pixel_size=(100.0, 100.0),
    structure: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    device="cpu",
) -> EmitterTable:
    """Sample blinking fluorophores and their photons in each frame.

    Paper, Methods, "Simulation"; the reference code's blinking model.

    Args:
        n_sequences: number ``B`` of independent sequences.
        n_frames: frames ``T`` per sequence.
        em_avg: mean number of visible localisations per frame: a number or ``(B,)``.
        tau: mean on-time in frames.
        flux_mean, flux_std: photon flux per full frame, ``Normal(μ_I, σ_I)`` (number or ``(B,)``).
        frame_shape: ``(H, W)`` in pixels; x, y are uniform over ``[−0.5, W − 0.5] × [−0.5, H − 0.5]``.
        flux_min: lower clamp of the flux.
        z_range: ``(z_lo, z_hi)`` nm (``(0, 0)`` in 2D).
        pixel_size: ``(x, y)`` nm, stored in the table.
        structure: optional ``(P, 3)`` binding sites ``(x px, y px, z nm)`` of a labelled
            structure; each fluorophore sits on a site drawn uniformly (default: uniform in
            the frame box and ``z_range``).

    Returns:
        One row per (fluorophore, frame) with non-zero photons, ``frame = b · T + t``.
    """
    B, T = int(n_sequences), int(n_frames)
    if B < 1 or T < 1:
        raise ValueError(f"n_sequences and n_frames must be >= 1; got {n_sequences}, {n_frames}")
    tau = check_positive(tau, "tau")
    H, W = frame_shape
    em = _per_sequence(em_avg, B, "em_avg", "cpu")
    fm = _per_sequence(flux_mean, B, "flux_mean", "cpu")
    fs = _per_sequence(flux_std, B, "flux_std", "cpu")
    if bool((em < 0).any()):
        raise ValueError("em_avg (emitter density) must be non-negative")
    if bool((fm < 0).any()) or bool((fs < 0).any()):
        raise ValueError("flux_mean and flux_std must be non-negative (negative photon counts)")
    g = generator
    dev = g.device if g is not None else torch.device(device)  # draw where the generator lives
    em, fm, fs = em.to(dev), fm.to(dev), fs.to(dev)
    lam = em * (T + 1 + 6 * tau) / (tau + 1)
    n = torch.poisson(lam, generator=g).long()
    M = int(n.sum())
    seq = torch.repeat_interleave(torch.arange(B, device=dev), n)

    def u() -> torch.Tensor:
        return torch.rand(M, generator=g, device=dev)

    t0 = -3 * tau + (T + 6 * tau) * u()
    t_on = -tau * torch.log1p(-u())  # Exp(mean τ)
    flux = (fm[seq] + fs[seq] * torch.randn(M, generator=g, device=dev)).clamp_min(flux_min)
    if structure is None:
        x = -0.5 + W * u()
        y = -0.5 + H * u()
        z = z_range[0] + (z_range[1] - z_range[0]) * u()
    else:
        if structure.dim() != 2 or structure.shape[1] != 3 or structure.shape[0] == 0:
            raise ValueError(f"structure must have shape (P, 3) with P >= 1; got {tuple(structure.shape)}")
        site = torch.randint(structure.shape[0], (M,), generator=g, device=dev)
        x, y, z = structure.to(dev, torch.float32)[site].unbind(1)
    t1 = t0 + t_on
    f0 = torch.floor(t0).clamp(0, T - 1).long()
    f1 = torch.floor(t1).clamp(-1, T - 1).long()
    span = (f1 - f0 + 1).clamp_min(0)
    visible = (t1 > 0) & (t0 < T) & (span > 0)
    ids = torch.nonzero(visible).squeeze(1)
    span = span[ids]
    rows = torch.repeat_interleave(ids, span)
    offset = torch.arange(rows.numel(), device=dev) - torch.repeat_interleave(torch.cumsum(span, 0) - span, span)
    f = f0[rows] + offset
    overlap = torch.minimum(t1[rows], f + 1.0) - torch.maximum(t0[rows], f.float())
    keep = overlap > 0
    rows, f, overlap = rows[keep], f[keep], overlap[keep]
    table = EmitterTable(
        frame=seq[rows] * T + f,
        x=x[rows],
        y=y[rows],
        z=z[rows],
        photons=flux[rows] * overlap,
        n_frames=B * T,
        pixel_size=pixel_size,
        id=rows,
    )
    return table.to(device)


@dataclass
class SMLMBatch:
    """Simulated SMLM data.

    Attributes:
        frames: ``(B, T, H, W)`` camera frames converted to photon units (what a fitter sees).
        adu: ``(B, T, H, W)`` raw camera frames (ADU).
        expected: ``(B, T, H, W)`` noiseless expected photons (background + PSFs).
        background: ``(B, T)`` true background, photons per pixel.
        truth: every emitter rendered, ``frame = b · T + t``.
        label_photon_min: photons below which an emitter is left out of :attr:`labels`.
    """

    frames: torch.Tensor
    adu: torch.Tensor
    expected: torch.Tensor
    background: torch.Tensor
    truth: EmitterTable
    label_photon_min: float = 100.0

    @property
    def labels(self) -> EmitterTable:
        """The ground truth used for training and evaluation: emitters with ≥ ``label_photon_min`` photons."""
        return self.truth.select(self.truth.photons >= self.label_photon_min)


@dataclass
class SMLMSimulator:
    """Batched SMLM simulator: blinking emitters, PSF, background and camera.

    Args:
        frame_shape: ``(H, W)`` pixels.
        pixel_size: ``(x, y)`` nm.
        psf: the PSF model.
        camera: the camera model.
        density: visible localisations per µm² per frame: a number, or a ``(low, high)`` range
            drawn uniformly per sequence.
        tau: mean on-time in frames.
        flux_mean, flux_std, flux_min: photon flux per full frame (Normal, clamped below).
        background: ``(b_lo, b_hi)`` photons per pixel, drawn uniformly per frame.
        z_range: nm, ``(0, 0)`` for 2D.
        label_photon_min: emitters with fewer photons in a frame are rendered but not labelled.
        structure: optional ``(P, 3)`` binding sites (x px, y px, z nm) of a labelled structure.

    Example:
        >>> sim = SMLMSimulator(frame_shape=(24, 24), density=1.0)
        >>> batch = sim.sample(4, 3, generator=torch.Generator().manual_seed(0))
        >>> batch.frames.shape
        torch.Size([4, 3, 24, 24])
    """

    frame_shape: tuple[int, int] = (40, 40)
    pixel_size: tuple[float, float] = (100.0, 100.0)
    psf: GaussianPSF = field(default_factory=GaussianPSF)
    camera: Camera = field(default_factory=Camera.emccd)
    density: float | tuple[float, float] = 1.25
    tau: float = 2.0
    flux_mean: float = 10_000.0
    flux_std: float = 3_000.0
    flux_min: float = 1e-8
    background: tuple[float, float] = (90.0, 150.0)
    z_range: tuple[float, float] = (0.0, 0.0)
    label_photon_min: float = 100.0
    structure: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.pixel_size = _pixel_size(self.pixel_size)
        H, W = self.frame_shape
        if int(H) < 1 or int(W) < 1:
            raise ValueError(f"frame_shape must be positive (H, W); got {self.frame_shape!r}")
        lo, hi = self.density_range
        if lo < 0 or hi < lo:
            raise ValueError(f"density must be >= 0 (or a (low, high) range); got {self.density!r}")
        check_positive(self.flux_mean, "flux_mean", allow_zero=True)
        check_positive(self.flux_std, "flux_std", allow_zero=True)
        b_lo, b_hi = self.background
        if b_lo < 0 or b_hi < b_lo:
            raise ValueError(f"background must be a (low, high) range of non-negative photons; got {self.background!r}")

    @property
    def density_range(self) -> tuple[float, float]:
        d = self.density
        return (float(d), float(d)) if isinstance(d, (int, float)) else (float(d[0]), float(d[1]))

    @property
    def area_um2(self) -> float:
        """Frame area in µm²."""
        H, W = self.frame_shape
        return H * W * self.pixel_size[0] * self.pixel_size[1] / 1e6

    def sample(
        self, n_sequences: int, n_frames: int, *, generator: torch.Generator | None = None, device="cpu"
    ) -> SMLMBatch:
        """Simulate ``n_sequences`` independent sequences of ``n_frames`` frames.

        All random draws come from ``generator`` (use a CPU generator for data that are the
        same on every machine); rendering and the camera run on ``device``.
        """
        B, T = int(n_sequences), int(n_frames)
        lo, hi = self.density_range
        gdev = generator.device if generator is not None else torch.device(device)
        dens = lo + (hi - lo) * torch.rand(B, generator=generator, device=gdev)
        truth = sample_blinking(
            n_sequences=B,
            n_frames=T,
            em_avg=dens.cpu() * self.area_um2,
            tau=self.tau,
            flux_mean=self.flux_mean,
            flux_std=self.flux_std,
            flux_min=self.flux_min,
            frame_shape=self.frame_shape,
            z_range=self.z_range,
            pixel_size=self.pixel_size,
            structure=self.structure,
            generator=generator,
            device=gdev,
        )
        b_lo, b_hi = self.background
        bg = b_lo + (b_hi - b_lo) * torch.rand(B, T, generator=generator, device=gdev)
        H, W = self.frame_shape
        expected = self.psf.render(truth, (H, W)).reshape(B, T, H, W) + bg[:, :, None, None]
        # camera noise is drawn where the generator lives (a CPU generator: same data everywhere)
        adu = self.camera.forward(expected, generator=generator)
        truth, bg, expected, adu = truth.to(device), bg.to(device), expected.to(device), adu.to(device)
        return SMLMBatch(
            frames=self.camera.backward(adu),
            adu=adu,
            expected=expected,
            background=bg,
            truth=truth,
            label_photon_min=self.label_photon_min,
        )


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
