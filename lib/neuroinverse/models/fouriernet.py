"""FourierNet: a global Fourier-domain convolution followed by a small 3-D convolutional head.

After Deb et al., "FourierNets enable the design of highly non-local optical encoders for
computational imaging" (NeurIPS 2022, arXiv:2104.10611, Sec. 4 and Fig. 3): the first layer
multiplies the image spectrum pointwise by a learned complex kernel as large as the image, so
that each output pixel sees the whole camera frame (a global receptive field, as a highly
non-local PSF needs). The paper's experiments use the "stride 2" form, which on an image of
H × W is a circular convolution at image size; here it is ``irfft2(rfft2(x) · W)`` with
W of shape (C_out, C_in, H, W//2 + 1), stored as a real (…, 2) tensor (real and imaginary
parts are separate parameters, as in the paper's code).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_positive_int

__all__ = ["FourierConv2d", "FourierNet"]


class FourierConv2d(nn.Module):
    """Circular global convolution by a learned kernel in the Fourier domain.

    Args:
        in_channels, out_channels: channel counts.
        image_shape: (H, W) of the inputs; the kernel holds (H, W//2 + 1) complex weights per
            channel pair.

    Shapes: (B, C_in, H, W) → (B, C_out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, image_shape: tuple[int, int]):
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        h, w = (check_positive_int(s, "image_shape entry") for s in image_shape)
        self.image_shape = (h, w)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, h, w // 2 + 1, 2))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform (a = √5) on the real view; bias uniform in ±1/sqrt(fan_in)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        fan_in = self.weight[0].numel()
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.dim() != 4
            or x.shape[1] != self.in_channels
            or tuple(x.shape[-2:]) != self.image_shape
        ):
            raise ValueError(
                f"x must have shape (B, {self.in_channels}, {self.image_shape[0]}, "
                f"{self.image_shape[1]}); got {tuple(x.shape)}"
            )
        spec = torch.fft.rfft2(x)  # (B, C_in, H, W//2+1)
        w = torch.view_as_complex(self.weight)
        out = torch.einsum("bihw,oihw->bohw", spec, w)
        return torch.fft.irfft2(out, s=self.image_shape) + self.bias[None, :, None, None]


def _conv3d(x: torch.Tensor, conv: nn.Conv3d) -> torch.Tensor:
    """``conv(x)`` for a stride-1, zero-padded ``nn.Conv3d``, as one 2-D convolution over z windows.

    PyTorch's CPU 3-D convolution of small batches is several times slower than its 2-D
    convolution; the ``kd`` consecutive planes around each output plane are stacked as channels
    (the weight's order) and the planes become a batch. The same numbers to float rounding
    (the book's U-Net does the same on the CPU). Other devices use ``conv`` itself.
    """
    if x.device.type != "cpu":
        return conv(x)
    kd = conv.kernel_size[0]
    pz, py, px = conv.padding
    x = F.pad(x, (0, 0, 0, 0, pz, pz))
    n, c, d, h, w = x.shape
    d_out = d - kd + 1
    x2 = x.unfold(2, kd, 1).permute(0, 2, 1, 5, 3, 4).reshape(n * d_out, c * kd, h, w)
    w2 = conv.weight.reshape(conv.out_channels, c * kd, *conv.kernel_size[1:])
    y = F.conv2d(x2, w2, conv.bias, padding=(py, px))
    return y.reshape(n, d_out, *y.shape[1:]).transpose(1, 2)


class FourierNet(nn.Module):
    """FourierNet-3D: FourierConv(1 → F) → LeakyReLU → BN → reshape to (F/D, D planes) →
    Conv3d(F/D → h) → LeakyReLU → BN3d → Conv3d(h → 1) → ReLU.

    Args:
        image_shape: (H, W) of the camera image.
        n_planes: D, the planes of the reconstructed volume.
        features: F, the Fourier-layer channels (a multiple of ``n_planes``).
        head_channels: channels of the first 3-D convolution.
        kernel: the 3-D kernel (kz, ky, kx), odd.

    Shapes: (B, 1, H, W) camera image → (B, D, H, W) volume.
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        n_planes: int,
        *,
        features: int = 32,
        head_channels: int = 4,
        kernel: tuple[int, int, int] = (3, 5, 5),
    ):
        super().__init__()
        self.n_planes = check_positive_int(n_planes, "n_planes")
        features = check_positive_int(features, "features")
        if features % n_planes:
            raise ValueError(f"features ({features}) must be a multiple of n_planes ({n_planes})")
        if any(k % 2 == 0 for k in kernel):
            raise ValueError(f"kernel must be odd on every axis; got {kernel!r}")
        self.per_plane = features // n_planes
        pad = tuple(k // 2 for k in kernel)
        self.fourier = FourierConv2d(1, features, image_shape)
        self.act = nn.LeakyReLU()
        self.bn = nn.BatchNorm2d(features)
        self.conv1 = nn.Conv3d(self.per_plane, head_channels, kernel, padding=pad)
        self.bn3d = nn.BatchNorm3d(head_channels)
        self.conv2 = nn.Conv3d(head_channels, 1, kernel, padding=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.bn(self.act(self.fourier(x)))
        b, _, h, w = f.shape
        f = f.reshape(b, self.per_plane, self.n_planes, h, w)
        f = self.bn3d(self.act(_conv3d(f, self.conv1)))
        return torch.relu(_conv3d(f, self.conv2))[:, 0]
