"""DECODE's network: a frame-module U-Net, a context-module U-Net and four output heads.

Speiser*, Müller*, Hoess, Matti, Obara, Legant, Kreshuk, Macke†, Ries†, Turaga†, "Deep
learning enables fast and dense single-molecule localization with high accuracy",
*Nature Methods* 18:1082–1090 (2021), and its reference code ``TuragaLab/DECODE``. Written for the
book from the paper's description; no code of the reference implementation is used.

* :class:`DecodeNet` (Methods, "Network architecture"): a *frame module* U-Net with shared
  weights applied to each frame of a window ``(t − 1, t, t + 1)``, a *context module* U-Net
  on the concatenated frame features, and four heads giving, per pixel ``k``, the detection
  probability ``p_k``, the means of photons, sub-pixel offsets ``dx, dy`` (and ``z``), their
  standard deviations, and the background. ``n_frames=1`` is the single-frame ablation.
  Both U-Nets are the book's one :class:`~neuroinverse.models.unet.UNet` (max-pooling and
  transposed convolutions, where the reference uses strided convolutions and nearest
  up-sampling + 1×1 convolutions).
* :class:`DecodeScales`: the physical scales of the outputs (photons, background, z range).

The targets and the loss, post-processing and evaluation, and training sit beside the method in
:mod:`neuroinverse.inference.decode`, :mod:`neuroinverse.inference.decode_localise` and
:mod:`neuroinverse.inference.decode_training`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_positive_int
from .unet import UNet

__all__ = ["DecodeScales", "DecodeNet"]


@dataclass(frozen=True)
class DecodeScales:
    """Units of the network's inputs and outputs.

    Paper, Methods; the reference code's "Network input normalisation" and output heads.

    Attributes:
        input_offset: photons subtracted from the frames (the mean background).
        input_scale: photons per input unit (``μ_I / 50`` in the reference).
        phot_max: photons per output unit of the photon head (``μ_I + 8 σ_I``).
        bg_max: photons per pixel per output unit of the background head (``1.2 b_hi``).
        z_max: nm per output unit of the z head (``1.2 · max |z|``; unused in 2D).
        pixel_size: ``(x, y)`` nm of the frames the network was trained on.
    """

    input_offset: float
    input_scale: float
    phot_max: float
    bg_max: float
    z_max: float = 900.0
    pixel_size: tuple[float, float] = (100.0, 100.0)

    @classmethod
    def from_simulator(cls, sim) -> DecodeScales:
        """The reference choices for a simulator's flux, background and z ranges.

        ``sim`` is a :class:`~neuroinverse.simulators.smlm.SMLMSimulator` (read through its
        ``background``, ``z_range``, ``flux_mean``, ``flux_std`` and ``pixel_size``).
        """
        b_lo, b_hi = sim.background
        z = max(abs(sim.z_range[0]), abs(sim.z_range[1]))
        return cls(
            input_offset=(b_lo + b_hi) / 2,
            input_scale=sim.flux_mean / 50,
            phot_max=sim.flux_mean + 8 * sim.flux_std,
            bg_max=1.2 * b_hi,
            z_max=1.2 * z if z > 0 else 900.0,
            pixel_size=tuple(sim.pixel_size),
        )


class _Head(nn.Module):
    """3×3 conv + activation + 1×1 conv (paper, Methods; reference code's output heads)."""

    def __init__(self, features: int, out: int, act: Callable[[], nn.Module]):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1), act(), nn.Conv2d(features, out, 1)
        )

    def forward(self, x):
        return self.body(x)


class DecodeNet(nn.Module):
    """Two-stage U-Net with the 10-channel (3D) or 8-channel (2D) DECODE output.

    Args:
        scales: units of inputs and outputs.
        n_frames: frames per input window (3: ``t − 1, t, t + 1``; 1: single-frame ablation).
        features: channels of the first level of both U-Nets (reference 48).
        depth: down-samplings (by 2) of each U-Net (reference 2); frame sizes must be
            divisible by ``2**depth``.
        inter_features: channels passed from the frame to the context module and to the heads
            (reference 48).
        three_d: predict z (astigmatic data).
        activation: ``"elu"`` (reference) or ``"relu"``.

    ``forward`` takes ``(B, n_frames, H, W)`` frames in photon units and returns a dict of
    ``(B, ·, H, W)`` maps: ``logit`` and ``p`` (1 channel), ``mean`` (photons in units of
    ``phot_max``, ``dx``, ``dy`` in px[, z in units of ``z_max``]), ``sigma`` (same units and
    order), ``bg`` (units of ``bg_max``).
    """

    def __init__(
        self,
        *,
        scales: DecodeScales,
        n_frames: int = 3,
        features: int = 48,
        depth: int = 2,
        inter_features: int = 48,
        three_d: bool = False,
        activation: str = "elu",
    ):
        super().__init__()
        if n_frames not in (1, 3):
            raise ValueError(
                f"n_frames must be 1 (single-frame) or 3 (temporal context); got {n_frames!r}"
            )
        check_choice(activation, "activation", ("elu", "relu"))
        act = nn.ELU if activation == "elu" else nn.ReLU
        self.scales = scales
        self.n_frames = n_frames
        self.three_d = bool(three_d)
        self.n_dims = 4 if three_d else 3  # photons, x, y[, z]
        depth = check_positive_int(depth, "depth", minimum=0)
        # the book's UNet counts resolution levels:
        # DECODE's `depth` down-samplings = depth + 1 levels
        self.frame_module = UNet(
            1,
            inter_features,
            dims=2,
            base_channels=features,
            depth=depth + 1,
            padding="same",
            activation=activation,
        )
        self.context_module = UNet(
            n_frames * inter_features,
            inter_features,
            dims=2,
            base_channels=features,
            depth=depth + 1,
            padding="same",
            activation=activation,
        )
        self.head_p = _Head(inter_features, 1, act)
        self.head_mean = _Head(inter_features, self.n_dims, act)
        self.head_sigma = _Head(inter_features, self.n_dims, act)
        self.head_bg = _Head(inter_features, 1, act)
        self._head_act = act()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # initial p ≈ 0.0025 so that the count term starts near the truth (reference code's
        # initialisation)
        nn.init.constant_(self.head_p.body[-1].bias, -6.0)

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        """Photon-unit frames → network input ``(x − offset) / scale``."""
        return (frames - self.scales.input_offset) / self.scales.input_scale

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        if frames.dim() != 4 or frames.shape[1] != self.n_frames:
            raise ValueError(
                f"frames must have shape (B, {self.n_frames}, H, W); got {tuple(frames.shape)}"
            )
        B, T, H, W = frames.shape
        x = self.normalise(frames).reshape(B * T, 1, H, W)
        feat = self.frame_module(x).reshape(B, -1, H, W)
        feat = self.context_module(feat)
        heads = self._heads(feat)
        D = self.n_dims
        logit = heads[:, :1].clamp(-8.0, 8.0)
        raw = heads[:, 1 : 1 + D]
        mean = torch.cat([torch.sigmoid(raw[:, :1]), torch.tanh(raw[:, 1:])], 1)
        sigma = 3.0 * torch.sigmoid(heads[:, 1 + D : 1 + 2 * D]) + 0.001
        bg = torch.sigmoid(heads[:, 1 + 2 * D :])
        return dict(logit=logit, p=torch.sigmoid(logit), mean=mean, sigma=sigma, bg=bg)

    def _heads(self, feat: torch.Tensor) -> torch.Tensor:
        """The four heads as two convolutions: their 3×3 convolutions stacked into one
        (``F → 4F`` channels) and their 1×1 convolutions as one block-diagonal 1×1 convolution.
        The same function and parameters as running the heads one by one (``p``, mean, σ,
        background channels in that order), with 2 instead of 8 convolution calls."""
        heads = (self.head_p, self.head_mean, self.head_sigma, self.head_bg)
        w3 = torch.cat([h.body[0].weight for h in heads])
        b3 = torch.cat([h.body[0].bias for h in heads])
        hidden = self._head_act(F.conv2d(feat, w3, b3, padding=1))
        w1 = torch.block_diag(*[h.body[2].weight.flatten(1) for h in heads])
        b1 = torch.cat([h.body[2].bias for h in heads])
        return F.conv2d(hidden, w1[:, :, None, None], b1)
