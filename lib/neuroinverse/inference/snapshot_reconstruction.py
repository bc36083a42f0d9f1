"""Snapshot 3-D reconstruction: the high-pass NMSE loss, decoder and joint mask training, Wiener.

Deb et al., "FourierNets enable the design of highly non-local optical encoders for
computational imaging" (NeurIPS 2022, arXiv:2104.10611, Sec. 3–5). A decoder maps one camera
frame to the volume; trained alone (the phase mask frozen) or jointly with the mask (the
PSF stack recomputed from the mask at every step, gradients flowing through the optics).
The loss is the paper's: the high-pass-filtered MSE normalised by the target's high-pass
power, plus 0.1 × the plain normalised MSE. Training goes through the book's loop
(:func:`neuroinverse.training.fit`). :func:`wiener_deconvolution` is the classical
per-frequency Tikhonov baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_positive, check_positive_int
from ..simulators.snapshot import image_volume, otf_stack, shot_noise
from ..simulators.wave_optics import PupilMicroscope
from ..training import Clipping, History, fit

__all__ = [
    "high_pass",
    "snapshot_loss",
    "nmse",
    "pearson",
    "SnapshotTraining",
    "train_snapshot_decoder",
    "reconstruct",
    "wiener_deconvolution",
]


def _gaussian_kernel(size: int, sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    i = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (i / sigma) ** 2)
    k = g[:, None] * g[None, :]
    return (k / k.sum()).to(device=device, dtype=dtype)


def high_pass(v: torch.Tensor, size: int = 11, sigma: float = 6 * math.sqrt(2)) -> torch.Tensor:
    """HP(v) = v − G ⊛ v per plane, G a ``size`` × ``size`` normalised Gaussian (zero padding).

    The default σ = 6√2 px is the effective width of the paper's code (its kernel divides by
    2σ inside the square, with σ = 6). ``v``: (..., H, W).
    """
    check_positive_int(size, "size")
    shape = v.shape
    x = v.reshape(-1, 1, *shape[-2:])
    k = _gaussian_kernel(size, sigma, v.device, v.dtype)[None, None]
    return (x - F.conv2d(x, k, padding=size // 2)).reshape(shape)


def snapshot_loss(pred: torch.Tensor, target: torch.Tensor, size: int = 11) -> torch.Tensor:
    """The paper's loss: mean(HP(v̂ − v)²)/mean(HP(v)²) + 0.1·mean((v̂ − v)²)/mean(v²)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    hp_t = high_pass(target, size)
    hp_err = high_pass(pred - target, size)
    return (
        hp_err.pow(2).mean() / hp_t.pow(2).mean()
        + 0.1 * (pred - target).pow(2).mean() / target.pow(2).mean()
    )


def nmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per volume ||v̂ − v||² / ||v||², (B,), for (B, D, H, W) inputs."""
    d = (pred - target).flatten(1)
    return d.pow(2).sum(1) / target.flatten(1).pow(2).sum(1)


def pearson(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per volume Pearson correlation over voxels, (B,)."""
    a = pred.flatten(1) - pred.flatten(1).mean(1, keepdim=True)
    b = target.flatten(1) - target.flatten(1).mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-12)


@dataclass(frozen=True)
class SnapshotTraining:
    """Settings of one decoder (or decoder + mask) training run, checked once.

    Args:
        steps: optimisation steps.
        batch: volumes per step.
        lr: the decoder's Adam learning rate.
        mask_lr: the mask's Adam learning rate (joint runs only).
        photons: volume scale (photons per unit of volume brightness).
        cosine: cosine decay of both learning rates to 0 over ``steps``.
        max_norm: gradient-norm clipping of the decoder (and mask), per group.
    """

    steps: int
    batch: int = 4
    lr: float = 1e-3
    mask_lr: float = 1e-2
    photons: float = 200.0
    cosine: bool = False
    max_norm: float = 10.0

    def __post_init__(self) -> None:
        check_positive_int(self.steps, "steps", minimum=0)
        check_positive_int(self.batch, "batch")
        check_positive(self.lr, "lr")
        check_positive(self.mask_lr, "mask_lr")
        check_positive(self.photons, "photons")
        check_positive(self.max_norm, "max_norm")


def _camera(
    volume: torch.Tensor, psf: torch.Tensor, photons: float, gen: torch.Generator
) -> torch.Tensor:
    """Noisy camera frame of ``volume`` (unit brightness), divided by ``photons``: (B, 1, H, W)."""
    c = shot_noise(image_volume(volume * photons, psf), gen)
    return (c / photons)[:, None]


def train_snapshot_decoder(
    decoder: nn.Module,
    scope: PupilMicroscope,
    mask: torch.Tensor,
    volumes: torch.Tensor,
    settings: SnapshotTraining,
    *,
    joint: bool = False,
    seed: int = 0,
    record_every: int = 0,
    desc: str = "training",
) -> tuple[History, torch.Tensor, list[tuple[int, torch.Tensor]]]:
    """Train ``decoder`` on ``volumes`` seen through ``mask``; with ``joint`` train the mask too.

    Args:
        decoder: (B, 1, H, W) camera frame → (B, D, H, W) volume.
        scope: the microscope (its ``psf_stack`` of the mask).
        mask: (M, M) initial phase (radians); not modified.
        volumes: (n, D, H, W) training bank (unit brightness), drawn with replacement.
        settings: :class:`SnapshotTraining`.
        joint: optimise the mask with the decoder (its own Adam, ``mask_lr``).
        seed: seed of the loop's generator (batches and noise).
        record_every: keep a copy of the mask every this many steps (0: none).

    Returns:
        (history, the final mask, [(step, mask), ...] snapshots).
    """
    if volumes.dim() != 4 or volumes.shape[1] != scope.n_planes:
        raise ValueError(
            f"volumes must have shape (n, {scope.n_planes}, H, W); got {tuple(volumes.shape)}"
        )
    dev = next(decoder.parameters()).device
    phase = nn.Parameter(scope.check_mask(mask).detach().clone().to(dev), requires_grad=joint)
    optics = nn.ParameterDict({"phase": phase})
    module = nn.ModuleDict({"decoder": decoder, "optics": optics})
    optimizers = [torch.optim.Adam(decoder.parameters(), lr=settings.lr)]
    groups = [tuple(decoder.parameters())]
    if joint:
        optimizers.append(torch.optim.Adam([phase], lr=settings.mask_lr))
        groups.append((phase,))
    schedulers = (
        [torch.optim.lr_scheduler.CosineAnnealingLR(o, max(settings.steps, 1)) for o in optimizers]
        if settings.cosine
        else None
    )
    fixed_psf = None if joint else scope.psf_stack(phase.detach())
    bank = volumes.to(dev)
    snapshots: list[tuple[int, torch.Tensor]] = (
        [(0, phase.detach().cpu().clone())] if record_every else []
    )

    def loss_fn(step: int, gen: torch.Generator):
        idx = torch.randint(len(bank), (settings.batch,), generator=gen, device=gen.device).to(dev)
        v = bank[idx]
        psf = scope.psf_stack(phase) if joint else fixed_psf
        pred = decoder(_camera(v, psf, settings.photons, gen))
        if record_every and (step + 1) % record_every == 0:
            snapshots.append((step + 1, phase.detach().cpu().clone()))
        return snapshot_loss(pred, v)

    decoder.train()
    history = fit(
        loss_fn,
        module=module,
        optimizers=optimizers,
        n_steps=settings.steps,
        schedulers=schedulers,
        clipping=Clipping(settings.max_norm, groups=tuple(groups)),
        seed=seed,
        desc=desc,
        leave=False,
    )
    decoder.eval()
    return history, phase.detach().clone(), snapshots


@torch.no_grad()
def reconstruct(
    decoder: nn.Module,
    scope: PupilMicroscope,
    mask: torch.Tensor,
    volumes: torch.Tensor,
    photons: float,
    generator: torch.Generator,
    batch: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image ``volumes`` (n, D, H, W) through ``mask`` with fresh noise and decode them.

    Returns (reconstructions (n, D, H, W), camera frames (n, H, W) in units of ``photons``).
    """
    decoder.eval()
    dev = next(decoder.parameters()).device
    psf = scope.psf_stack(scope.check_mask(mask).to(dev))
    preds, frames = [], []
    for i in range(0, len(volumes), batch):
        c = _camera(volumes[i : i + batch].to(dev), psf, photons, generator)
        frames.append(c[:, 0].cpu())
        preds.append(decoder(c).cpu())
    return torch.cat(preds), torch.cat(frames)


def wiener_deconvolution(frames: torch.Tensor, psf: torch.Tensor, mu: float) -> torch.Tensor:
    """Per-frequency Tikhonov inverse v̂_z(k) = conj(H_z(k)) c(k) / (Σ_z |H_z(k)|² + μ).

    Args:
        frames: (B, H, W) camera frames.
        psf: (D, h, w) PSF stack (the frames' units per unit volume).
        mu: regulariser (> 0).

    Returns:
        (B, D, H, W) volumes (the "same" crop of the linear deconvolution).
    """
    mu = check_positive(mu, "mu")
    H, W = frames.shape[-2:]
    otf = otf_stack(psf, (H, W))
    py, px = H + psf.shape[1], W + psf.shape[2]
    c = torch.fft.rfft2(frames, s=(py, px))
    den = otf.abs().pow(2).sum(0) + mu
    v = torch.fft.irfft2(otf.conj()[None] * (c / den)[:, None], s=(py, px))
    return v[..., :H, :W]
