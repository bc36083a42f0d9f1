"""Single-molecule localisation microscopy (SMLM) simulator: blinking, PSF, camera.

The generative model of Speiser et al., "Deep learning enables fast and dense single-molecule
localization with high accuracy", *Nature Methods* 18:1082–1090 (2021) (DECODE; defaults from
the paper's Methods and the configuration files of its reference code ``TuragaLab/DECODE``),
written for the book:

* **Blinking** (paper, Methods, "Simulation"; reference code's blinking model): per simulated
  sequence of ``T`` frames, ``n ~ Poisson(λ)`` fluorophores with
  ``λ = em_avg (T + 1 + 6τ) / (τ + 1)``, onset ``t0 ~ U(−3τ, T + 3τ)``, one on-period
  ``T_on ~ Exp(mean τ)``, flux ``I ~ Normal(μ_I, σ_I)`` (clamped below) photons per full frame.
  Photons in frame ``f`` are ``I · |[t0, t0 + T_on] ∩ [f, f + 1]|``, so partial first and last
  frames are dimmer.
* **PSF** and **camera**: :class:`~neuroinverse.simulators.smlm_imaging.GaussianPSF` (the
  pixel-integrated, optionally astigmatic Gaussian) and
  :class:`~neuroinverse.simulators.smlm_imaging.Camera` (EMCCD, sCMOS or perfect), in
  :mod:`~neuroinverse.simulators.smlm_imaging`.
* **Background**: spatially uniform per frame, ``b ~ U(b_lo, b_hi)`` photons per pixel.

Conventions: x is the column and y the row coordinate, both in pixels with pixel centres at
integers (a frame of width ``W`` spans ``[−0.5, W − 0.5]``); z is in nm. Frames have shape
``(..., H, W)``; emitters are rows of an
:class:`~neuroinverse.simulators.smlm_emitters.EmitterTable`. Every random draw comes from an
explicit ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .._checks import as_tensor, check_positive, check_positive_int
from .smlm_emitters import EmitterTable, as_pixel_size
from .smlm_imaging import Camera, GaussianPSF

__all__ = [
    "SMLMBatch",
    "SMLMSimulator",
    "sample_blinking",
]


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
        frame_shape: ``(H, W)`` in pixels; x, y are uniform over
            ``[−0.5, W − 0.5] × [−0.5, H − 0.5]``.
        flux_min: lower clamp of the flux.
        z_range: ``(z_lo, z_hi)`` nm (``(0, 0)`` in 2D).
        pixel_size: ``(x, y)`` nm, stored in the table.
        structure: optional ``(P, 3)`` binding sites ``(x px, y px, z nm)`` of a labelled
            structure; each fluorophore sits on a site drawn uniformly (default: uniform in
            the frame box and ``z_range``).

    Returns:
        One row per (fluorophore, frame) with non-zero photons, ``frame = b · T + t``.
    """
    B = check_positive_int(n_sequences, "n_sequences")
    T = check_positive_int(n_frames, "n_frames")
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
            raise ValueError(
                f"structure must have shape (P, 3) with P >= 1; got {tuple(structure.shape)}"
            )
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
    offset = torch.arange(rows.numel(), device=dev) - torch.repeat_interleave(
        torch.cumsum(span, 0) - span, span
    )
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
        """The ground truth used for training and evaluation: emitters with ≥
        ``label_photon_min`` photons."""
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
        self.pixel_size = as_pixel_size(self.pixel_size)
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
            raise ValueError(
                "background must be a (low, high) range of non-negative photons; "
                f"got {self.background!r}"
            )

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
        self,
        n_sequences: int,
        n_frames: int,
        *,
        generator: torch.Generator | None = None,
        device="cpu",
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
        truth, bg, expected, adu = (
            truth.to(device),
            bg.to(device),
            expected.to(device),
            adu.to(device),
        )
        return SMLMBatch(
            frames=self.camera.backward(adu),
            adu=adu,
            expected=expected,
            background=bg,
            truth=truth,
            label_photon_min=self.label_photon_min,
        )
