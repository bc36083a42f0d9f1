"""The error predictor of learning-guided SEM: fast scan and its membrane map → error logits.

Mi et al., "Learning Guided Electron Microscopy with Active Acquisition" (MICCAI 2020,
arXiv:2101.02746), Sec. 2.2 ("binarised error estimation"): a fully convolutional network
reads the cheap first-pass image and returns, per pixel, the probability that the
segmentation built from it is wrong there. The paper's network was not released; this one
is the book's U-Net (:class:`~neuroinverse.models.unet.UNet`) on two input channels, the
fast scan and the membrane detector's probability on it (SmartEM, the follow-up, feeds the
membrane map), with one logit output (apply a sigmoid for the probability).
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_positive_int
from .unet import UNet

__all__ = ["ErrorPredictor"]


class ErrorPredictor(nn.Module):
    """``(N, 1, H, W)`` image and ``(N, 1, H, W)`` membrane probability → ``(N, 1, H, W)`` logits.

    Args:
        base_channels: feature maps at the top level of the U-Net (16 at ci).
        depth: U-Net levels (2 at ci: 16 and 32 channels).
        use_membranes: feed the membrane map as a second channel (``False``: the image only).

    H and W must be divisible by ``2 ** (depth - 1)``.
    """

    def __init__(self, *, base_channels: int = 16, depth: int = 2, use_membranes: bool = True):
        super().__init__()
        base_channels = check_positive_int(base_channels, "base_channels")
        depth = check_positive_int(depth, "depth")
        self.use_membranes = bool(use_membranes)
        self.unet = UNet(
            2 if self.use_membranes else 1, 1, base_channels=base_channels, depth=depth
        )

    def forward(self, image: torch.Tensor, membranes: torch.Tensor | None = None) -> torch.Tensor:
        if image.dim() != 4 or image.shape[1] != 1:
            raise ValueError(f"image must have shape (N, 1, H, W); got {tuple(image.shape)}")
        if self.use_membranes:
            if membranes is None or membranes.shape != image.shape:
                got = None if membranes is None else tuple(membranes.shape)
                raise ValueError(
                    f"membranes must have the image's shape {tuple(image.shape)}; got {got}"
                )
            image = torch.cat([image, membranes], dim=1)
        return self.unet(image)
