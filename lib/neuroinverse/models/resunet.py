"""A residual U-Net on the low-resolution grid with a pixel-shuffle output, for super-resolution.

The cheap PSSR network (in the spirit of the ``ResUNet`` of PSSR2, Stites et al., BMC Methods
2024): the ``C_in`` low-resolution frames go through a 3×3 stem, ``len(widths)`` levels of
residual blocks (stride-2 convolution down, 1×1 convolution + ``PixelShuffle(2)`` up, skip
concatenated and fused by a 3×3 convolution), a 3×3 convolution to ``factor²`` channels and
``PixelShuffle(factor)`` to one high-resolution channel. The output is added to the bilinear
upsampling (``align_corners=False``: pixel centres aligned) of the centre input frame, so
the network learns a residual. The input is centred by subtracting 0.5 (images in [0, 1]).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_positive_int

__all__ = ["ResBlock", "LRResUNet"]


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` followed by ReLU, 3×3 'same' convolutions."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class LRResUNet(nn.Module):
    """Residual U-Net on the LR grid: ``(B, C_in, h, w)`` → ``(B, 1, factor·h, factor·w)``.

    Args:
        in_channels: number of input frames (1, or 5 for multi-frame PSSR); the centre one
            (``in_channels // 2``) is the one restored.
        factor: upsampling factor.
        widths: channels per level (each level halves the resolution; ``h`` and ``w`` must be
            divisible by ``2**(len(widths)-1)``).
        blocks: residual blocks per level on each side.
    """

    def __init__(
        self,
        in_channels: int = 1,
        factor: int = 4,
        widths: Sequence[int] = (32, 64),
        blocks: int = 1,
    ):
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.factor = check_positive_int(factor, "factor")
        widths = tuple(check_positive_int(w, "widths") for w in widths)
        if not widths:
            raise ValueError("widths must name at least one level")
        blocks = check_positive_int(blocks, "blocks")
        self.widths = widths
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.enc = nn.ModuleList(
            nn.Sequential(*[ResBlock(w) for _ in range(blocks)]) for w in widths
        )
        self.down = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=2, padding=1)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.up = nn.ModuleList(
            nn.Conv2d(b, 4 * a, 1) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.fuse = nn.ModuleList(nn.Conv2d(2 * a, a, 3, padding=1) for a in widths[:-1])
        self.dec = nn.ModuleList(
            nn.Sequential(*[ResBlock(a) for _ in range(blocks)]) for a in widths[:-1]
        )
        self.head = nn.Conv2d(widths[0], factor * factor, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"input must have shape (B, {self.in_channels}, h, w); got {tuple(x.shape)}"
            )
        m = 2 ** (len(self.widths) - 1)
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"h and w must be divisible by {m}; got {tuple(x.shape[-2:])}")
        centre = x[:, self.in_channels // 2 : self.in_channels // 2 + 1]
        base = F.interpolate(centre, scale_factor=self.factor, mode="bilinear", align_corners=False)
        h = F.relu(self.stem(x - 0.5))
        skips = []
        for level, enc in enumerate(self.enc):
            h = enc(h)
            if level < len(self.down):
                skips.append(h)
                h = F.relu(self.down[level](h))
        for level in reversed(range(len(self.up))):
            h = F.pixel_shuffle(self.up[level](h), 2)
            h = F.relu(self.fuse[level](torch.cat([h, skips[level]], dim=1)))
            h = self.dec[level](h)
        return base + F.pixel_shuffle(self.head(h), self.factor)
