"""3-D snapshot imaging: sparse fluorescent volumes through a PSF stack onto one camera frame.

Image formation of Deb et al. (NeurIPS 2022, arXiv:2104.10611, Sec. 3): every plane v_z of a
D-plane volume is convolved with its PSF h_z and the planes add incoherently on the camera,
c = Σ_z v_z ⊛ h_z (linear convolution, "same" crop, by ``rfft2`` on a zero-padded grid), and
shot noise enters as the reparameterised Gaussian c + sqrt(c) ε, clamped at 0, so that
gradients reach the phase mask. The volumes stand in for the paper's zebrafish nuclei:
Gaussian blobs ("nuclei") and thin random-walk tubes ("neurites").
"""

from __future__ import annotations

import torch

from .._checks import check_finite, check_positive, check_positive_int

__all__ = ["sparse_volumes", "image_volume", "shot_noise", "otf_stack"]


def _gauss1d(centres: torch.Tensor, sigmas: torch.Tensor, n: int) -> torch.Tensor:
    """(K, n): exp(−(i − c)²/(2σ²)) for each of K centres."""
    i = torch.arange(n, dtype=torch.float32)
    return torch.exp(-0.5 * ((i[None] - centres[:, None]) / sigmas[:, None]) ** 2)


def sparse_volumes(
    n: int,
    shape: tuple[int, int, int],
    *,
    mean_nuclei: float = 60.0,
    n_neurites: int = 3,
    walk_steps: int = 60,
    margin: int = 4,
    slab: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``n`` volumes of sparse bright objects, (n, D, H, W), peak brightness about 1.

    Nuclei: K ~ Poisson(``mean_nuclei``) separable Gaussian blobs, uniform with a lateral
    ``margin``, σ_xy ~ U(1, 2) px, σ_z ~ U(0.5, 1) planes, amplitude ~ LogNormal(0, 0.5).
    Neurites: ``n_neurites`` persistent 3-D random walks of ``walk_steps`` unit steps
    (direction ← normalise(direction + N(0, 0.3²)), z step × 0.3) drawn as Gaussian tubes
    (σ = 0.7 px) at 0.3 × the nuclei's brightness. A background of 0.01 is added. With
    ``slab`` only the 3 central planes are non-zero.
    """
    n = check_positive_int(n, "n")
    if len(shape) != 3:
        raise ValueError(f"shape must be (D, H, W); got {shape!r}")
    d, h, w = (check_positive_int(s, "shape entry") for s in shape)
    if min(h, w) <= 2 * margin:
        raise ValueError(f"the lateral size {h}x{w} must exceed twice the margin {margin}")
    g = generator
    out = torch.zeros(n, d, h, w)
    for b in range(n):
        k = int(torch.poisson(torch.tensor([float(mean_nuclei)]), generator=g).item())
        if k:
            cz = torch.rand(k, generator=g) * (d - 1)
            cy = margin + torch.rand(k, generator=g) * (h - 1 - 2 * margin)
            cx = margin + torch.rand(k, generator=g) * (w - 1 - 2 * margin)
            sxy = 1.0 + torch.rand(k, generator=g)
            sz = 0.5 + 0.5 * torch.rand(k, generator=g)
            amp = torch.exp(0.5 * torch.randn(k, generator=g))
            gz, gy, gx = _gauss1d(cz, sz, d), _gauss1d(cy, sxy, h), _gauss1d(cx, sxy, w)
            out[b] += torch.einsum("k,kz,ky,kx->zyx", amp, gz, gy, gx)
    if n_neurites and walk_steps:
        # all walks at once: (n · n_neurites) persistent random walks of walk_steps unit steps
        k = n * n_neurites
        lo = torch.tensor([0.0, margin, margin])
        hi = torch.tensor([d - 1.0, h - 1.0 - margin, w - 1.0 - margin])
        pos = torch.stack(
            [
                torch.full((k,), d / 2),
                *(
                    margin
                    + torch.rand(2, k, generator=g) * (torch.tensor([h, w])[:, None] - 2 * margin)
                ),
            ],
            dim=1,
        )
        direction = torch.randn(k, 3, generator=g)
        direction = direction / direction.norm(dim=1, keepdim=True)
        pts = []
        for _ in range(walk_steps):
            direction = direction + 0.3 * torch.randn(k, 3, generator=g)
            direction = direction / direction.norm(dim=1, keepdim=True)
            pos = torch.minimum(
                torch.maximum(pos + direction * torch.tensor([0.3, 1.0, 1.0]), lo), hi
            )
            pts.append(pos)
        p = torch.stack(pts, 1).reshape(n, n_neurites * walk_steps, 3)  # (n, points, zyx)
        i_z, i_y, i_x = (torch.arange(s, dtype=torch.float32) for s in (d, h, w))
        gz = torch.exp(-0.5 * ((i_z - p[..., 0:1]) / 0.7) ** 2)
        gy = torch.exp(-0.5 * ((i_y - p[..., 1:2]) / 0.7) ** 2)
        gx = torch.exp(-0.5 * ((i_x - p[..., 2:3]) / 0.7) ** 2)
        # a tube at 0.3 x the nuclei's brightness; unit steps overlap about twice
        out += 0.15 * torch.einsum("bkz,bky,bkx->bzyx", gz, gy, gx)
    out = out + 0.01
    if slab:
        keep = torch.zeros(d, dtype=torch.bool)
        c = d // 2
        keep[max(c - 1, 0) : c + 2] = True
        out[:, ~keep] = 0
    return out


def otf_stack(psf: torch.Tensor, image_shape: tuple[int, int]) -> torch.Tensor:
    """``rfft2`` of the PSF stack on the zero-padded grid of a linear convolution, (D, P, P//2+1).

    The PSF (D, h, w), centred at (h//2, w//2), is placed so that its centre sits at the
    origin; P = the next even size ≥ H + h − 1 (so no wrap-around).
    """
    if psf.dim() != 3:
        raise ValueError(f"psf must have shape (D, h, w); got {tuple(psf.shape)}")
    _, ph, pw = psf.shape
    H, W = image_shape
    py, px = H + ph, W + pw
    big = torch.zeros(psf.shape[0], py, px, dtype=psf.dtype, device=psf.device)
    big[:, :ph, :pw] = psf
    big = torch.roll(big, shifts=(-(ph // 2), -(pw // 2)), dims=(-2, -1))
    return torch.fft.rfft2(big)


def image_volume(
    volume: torch.Tensor, psf: torch.Tensor, otf: torch.Tensor | None = None
) -> torch.Tensor:
    """The noiseless camera image c = Σ_z v_z ⊛ h_z, (B, H, W) ("same" linear convolution).

    Args:
        volume: (B, D, H, W) or (D, H, W) photons per voxel.
        psf: (D, h, w) camera PSF stack (:meth:`PupilMicroscope.psf_stack`).
        otf: optionally :func:`otf_stack` of ``psf`` for this image size, to skip its FFT.
    """
    if not isinstance(volume, torch.Tensor) or volume.dim() not in (3, 4):
        raise ValueError("volume must be a tensor of shape (B, D, H, W) or (D, H, W)")
    single = volume.dim() == 3
    v = volume[None] if single else volume
    if psf.dim() != 3:
        raise ValueError(f"psf must have shape (D, h, w); got {tuple(psf.shape)}")
    if v.shape[1] != psf.shape[0]:
        raise ValueError(f"the volume has {v.shape[1]} planes but the PSF stack has {psf.shape[0]}")
    check_finite(v, "volume")
    H, W = v.shape[-2:]
    if otf is None:
        otf = otf_stack(psf, (H, W))
    py, px = H + psf.shape[1], W + psf.shape[2]
    spec = torch.fft.rfft2(v, s=(py, px))
    c = torch.fft.irfft2((spec * otf).sum(1), s=(py, px))[..., :H, :W]
    return c[0] if single else c


def shot_noise(
    image: torch.Tensor, generator: torch.Generator | None = None, scale: float = 1.0
) -> torch.Tensor:
    """Reparameterised shot noise: clamp(c + sqrt(c)·ε, min=0), ε ~ N(0, 1) (differentiable in c).

    ``scale`` multiplies the noise (1 = Poisson-like variance c, in photons).
    """
    check_positive(scale, "scale", allow_zero=True)
    gen_device = generator.device if generator is not None else image.device
    eps = torch.randn(image.shape, generator=generator, device=gen_device, dtype=image.dtype).to(
        image.device
    )
    return torch.clamp(image + scale * torch.sqrt(image.clamp(min=0) + 1e-12) * eps, min=0)
