"""One U-Net for the whole book, in 2-D and 3-D, with "same" or "valid" convolutions.

The architecture follows Ronneberger et al., "U-Net: Convolutional Networks for Biomedical
Image Segmentation" (MICCAI 2015) and its 3-D, anisotropic form used for connectomics by
Funke et al., "Large Scale Image Segmentation with Structured Loss based Deep Learning for
Connectome Reconstruction" (TPAMI 2019, arXiv:1709.02974, the book's ``mala`` chapter):

* ``depth`` resolution levels; level ``l`` has ``base_channels * channel_multiplier**l``
  feature maps and ``convs_per_level`` convolutions + activation on each side;
* between levels, max-pooling by a per-level factor (an int, or a tuple per axis such as
  ``(1, 2, 2)`` for anisotropic serial-section data);
* on the way up, a transposed convolution with kernel = stride = factor, followed by the
  activation, to the upper level's feature-map count; the skip connection is centre-cropped
  (valid mode) and concatenated;
* a 1x1 head convolution to ``out_channels`` and an optional sigmoid.

With ``padding="same"`` each spatial size must be divisible by the total down-sampling
factor (:meth:`UNet.check_input_shape`). With ``padding="valid"`` the output is smaller than
the input; :meth:`UNet.output_shape`, :meth:`UNet.crop_margin` and
:meth:`UNet.valid_input_shape` give the geometry.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_choice, check_positive_int

__all__ = ["UNet"]

_ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}


def _as_tuple(value, dims: int, name: str) -> tuple[int, ...]:
    """An int or a length-``dims`` sequence of positive ints as a tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        t = (value,) * dims
    else:
        try:
            t = tuple(int(v) for v in value)
        except TypeError:
            raise ValueError(
                f"{name} must be an int or a sequence of {dims} ints; got {value!r}"
            ) from None
        if len(t) != dims:
            raise ValueError(
                f"{name} must have {dims} entries (one per spatial axis); got {value!r}"
            )
    if any(v < 1 for v in t):
        raise ValueError(f"{name} must be positive; got {value!r}")
    return t


def _per_level(value, n: int, dims: int, name: str) -> list[tuple[int, ...]]:
    """Expand an int / tuple / list-of-those into ``n`` per-level tuples."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [_as_tuple(value, dims, name)] * n
    seq = list(value)
    if (
        seq
        and all(isinstance(v, int) and not isinstance(v, bool) for v in seq)
        and len(seq) == dims
    ):
        return [_as_tuple(seq, dims, name)] * n
    if len(seq) != n:
        raise ValueError(f"{name} must give {n} per-level entries; got {value!r}")
    return [_as_tuple(v, dims, f"{name}[{i}]") for i, v in enumerate(seq)]


class _Conv3d(nn.Conv3d):
    """``nn.Conv3d`` (same parameters, initialisation and state dict) that runs on the CPU as a
    2-D convolution over the sections.

    Performance only: PyTorch's CPU 3-D convolution for a batch of one small volume falls back
    to a slow im2col kernel (and a slower backward), while the 2-D convolution uses oneDNN.
    The sections become a batch of images, and a ``(kd, kh, kw)`` kernel is applied as a
    ``(kh, kw)`` kernel on ``kd·C`` channels stacked from ``kd`` consecutive sections
    (``Tensor.unfold`` along z). Mathematically the same convolution (outputs agree to float
    rounding). Stride 1, no dilation, one group only; anything else, and every other device,
    uses ``nn.Conv3d.forward``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.device.type != "cpu"
            or self.stride != (1, 1, 1)
            or self.dilation != (1, 1, 1)
            or self.groups != 1
            or self.padding_mode != "zeros"
            or isinstance(self.padding, str)
        ):
            return super().forward(x)
        kd = self.kernel_size[0]
        pz, py, px = self.padding
        if pz:
            x = F.pad(x, (0, 0, 0, 0, pz, pz))
        n, c, d, h, w = x.shape
        d_out = d - kd + 1
        if (
            kd == 1
        ):  # (N, C, D, H, W) -> (N·D, C, H, W); a view when x came from a layer like this one
            x2 = x.transpose(1, 2).reshape(n * d, c, h, w)
            w2 = self.weight[:, :, 0]
        else:  # (N, C, D', H, W, kd) -> (N·D', C·kd, H, W), channel c·kd + k (the weight's order)
            x2 = x.unfold(2, kd, 1).permute(0, 2, 1, 5, 3, 4).reshape(n * d_out, c * kd, h, w)
            w2 = self.weight.reshape(self.out_channels, c * kd, *self.kernel_size[1:])
        y = F.conv2d(x2, w2, self.bias, padding=(py, px))
        return y.reshape(n, d_out, *y.shape[1:]).transpose(1, 2)


class _ConvBlock(nn.Sequential):
    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: tuple[int, ...],
        n: int,
        dims: int,
        same: bool,
        activation: str,
    ):
        conv = nn.Conv2d if dims == 2 else _Conv3d
        layers: list[nn.Module] = []
        for i in range(n):
            pad = tuple(k // 2 for k in kernel) if same else 0
            layers += [
                conv(c_in if i == 0 else c_out, c_out, kernel, padding=pad),
                _ACTIVATIONS[activation](),
            ]
        super().__init__(*layers)


class UNet(nn.Module):
    """U-Net mapping ``(N, in_channels, *spatial)`` to ``(N, out_channels, *spatial_out)``.

    Args:
        in_channels: input channels.
        out_channels: output channels of the 1x1 head.
        dims: 2 (images, spatial = (H, W)) or 3 (volumes, spatial = (Z, Y, X)).
        base_channels: feature maps at the top level.
        depth: number of resolution levels (``depth - 1`` down-samplings); 1 gives a plain
            conv stack.
        channel_multiplier: feature maps grow by this factor per level.
        downsample: pooling factor between levels: one int, one per-axis tuple (a flat
            sequence of ``dims`` ints always means per axis), or a list of ``depth - 1`` of
            those (e.g. ``[(1, 3, 3), (1, 3, 3)]``).
        kernel_size: odd convolution kernel: an int, a per-axis tuple, or a list of ``depth``
            of those, per level from the top (e.g. ``[(1, 3, 3), (3, 3, 3)]``).
        convs_per_level: convolutions (+ activation) per level and side.
        padding: ``"same"`` (output shape = input shape) or ``"valid"`` (no padding).
        activation: ``"relu"``, ``"elu"`` or ``"leaky_relu"``.
        final_activation: ``None`` (logits) or ``"sigmoid"``.

    Example (the ``mala`` chapter's MALA-tiny): ``UNet(1, 3, dims=3, base_channels=8, depth=2,
    channel_multiplier=2, downsample=(1, 2, 2), kernel_size=[(1, 3, 3), (3, 3, 3)],
    padding="valid", final_activation="sigmoid")`` maps 12x52x52 to 8x36x36.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dims: int = 2,
        base_channels: int = 16,
        depth: int = 2,
        channel_multiplier: int = 2,
        downsample=2,
        kernel_size=3,
        convs_per_level: int = 2,
        padding: str = "same",
        activation: str = "relu",
        final_activation: str | None = None,
    ):
        super().__init__()
        check_choice(dims, "dims", (2, 3))
        in_channels = check_positive_int(in_channels, "in_channels")
        out_channels = check_positive_int(out_channels, "out_channels")
        base_channels = check_positive_int(base_channels, "base_channels")
        depth = check_positive_int(depth, "depth")
        channel_multiplier = check_positive_int(channel_multiplier, "channel_multiplier")
        convs_per_level = check_positive_int(convs_per_level, "convs_per_level")
        check_choice(padding, "padding", ("same", "valid"))
        check_choice(activation, "activation", sorted(_ACTIVATIONS))
        check_choice(final_activation, "final_activation", (None, "sigmoid"))
        self.dims = dims
        self.depth = depth
        self.padding = padding
        self.final_activation = final_activation
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.factors = _per_level(downsample, depth - 1, dims, "downsample") if depth > 1 else []
        self.kernels = _per_level(kernel_size, depth, dims, "kernel_size")
        if any(k % 2 == 0 for kern in self.kernels for k in kern):
            raise ValueError(f"kernel_size must be odd on every axis; got {kernel_size!r}")
        self.convs_per_level = convs_per_level
        same = padding == "same"
        fmaps = [base_channels * channel_multiplier**level for level in range(depth)]
        self.fmaps = fmaps
        self.down = nn.ModuleList()
        c_in = in_channels
        for level in range(depth):
            self.down.append(
                _ConvBlock(
                    c_in, fmaps[level], self.kernels[level], convs_per_level, dims, same, activation
                )
            )
            c_in = fmaps[level]
        tconv = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for level in range(depth - 1):
            f = self.factors[level]
            self.upsample.append(
                nn.Sequential(
                    tconv(fmaps[level + 1], fmaps[level], f, stride=f), _ACTIVATIONS[activation]()
                )
            )
            self.up.append(
                _ConvBlock(
                    2 * fmaps[level],
                    fmaps[level],
                    self.kernels[level],
                    convs_per_level,
                    dims,
                    same,
                    activation,
                )
            )
        self.head = (nn.Conv2d if dims == 2 else nn.Conv3d)(fmaps[0], out_channels, 1)
        self._pool = F.max_pool2d if dims == 2 else F.max_pool3d

    # ------------------------------------------------------------------ geometry
    @property
    def total_downsample(self) -> tuple[int, ...]:
        """Product of the pooling factors per spatial axis."""
        tot = [1] * self.dims
        for f in self.factors:
            tot = [a * b for a, b in zip(tot, f, strict=True)]
        return tuple(tot)

    def _check_spatial(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        try:
            shape = tuple(int(s) for s in spatial_shape)
        except TypeError:
            raise ValueError(
                f"input_shape must be a sequence of {self.dims} ints; got {spatial_shape!r}"
            ) from None
        if len(shape) != self.dims:
            raise ValueError(
                f"input_shape must have {self.dims} spatial entries; got {spatial_shape!r}"
            )
        return shape

    def _axis_output(self, size: int, axis: int) -> int | None:
        """Output size along one axis in valid mode, or None if ``size`` is incompatible."""
        loss = self.convs_per_level
        sizes = []
        s = size
        for level in range(self.depth):
            s -= loss * (self.kernels[level][axis] - 1)
            if s < 1:
                return None
            sizes.append(s)
            if level < self.depth - 1:
                f = self.factors[level][axis]
                if s % f:
                    return None
                s //= f
        for level in range(self.depth - 2, -1, -1):
            s = s * self.factors[level][axis] - loss * (self.kernels[level][axis] - 1)
            if s < 1:
                return None
        return s

    def check_input_shape(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        """Raise ``ValueError`` unless the spatial shape is usable; return it as a tuple.

        "same": every size divisible by :attr:`total_downsample`. "valid": every level's size
        positive and divisible by its pooling factor (see :meth:`valid_input_shape`).
        """
        shape = self._check_spatial(spatial_shape)
        if self.padding == "same":
            tot = self.total_downsample
            if any(s < 1 or s % t for s, t in zip(shape, tot, strict=True)):
                raise ValueError(
                    f"input spatial shape {shape} must be divisible by the total down-sampling "
                    f"{tot} (padding='same')"
                )
        else:
            bad = [a for a in range(self.dims) if self._axis_output(shape[a], a) is None]
            if bad:
                try:
                    hint = (
                        "; the nearest larger valid shape is "
                        f"{self.valid_input_shape(shape, minimum='input')}"
                    )
                except ValueError:
                    hint = ""
                raise ValueError(
                    f"input spatial shape {shape} is incompatible with padding='valid' on axes "
                    f"{bad} (sizes must stay positive and divisible by the pooling factors){hint}"
                )
        return shape

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """Spatial output shape for a spatial input shape (raises ``ValueError`` if unusable)."""
        shape = self.check_input_shape(input_shape)
        if self.padding == "same":
            return shape
        return tuple(self._axis_output(s, a) for a, s in enumerate(shape))

    def crop_margin(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """Voxels removed on each side per axis: ``(input - output) // 2`` (0 for "same").

        The output voxel ``o`` is centred on input voxel ``o + crop_margin``; crop labels with
        ``labels[..., m0:m0 + out0, m1:m1 + out1]``.
        """
        out = self.output_shape(input_shape)
        return tuple(
            (i - o) // 2 for i, o in zip(self._check_spatial(input_shape), out, strict=True)
        )

    def valid_input_shape(
        self, shape: Sequence[int], *, minimum: str = "output"
    ) -> tuple[int, ...]:
        """Smallest usable input shape whose output (``minimum="output"``) or input itself
        (``minimum="input"``) is at least ``shape`` on every axis."""
        target = self._check_spatial(shape)
        check_choice(minimum, "minimum", ("output", "input"))
        result = []
        for a, t in enumerate(target):
            s = 1
            while True:
                if self.padding == "same":
                    ok = s % self.total_downsample[a] == 0
                    out = s
                else:
                    out = self._axis_output(s, a)
                    ok = out is not None
                if ok and (out >= t if minimum == "output" else s >= t):
                    result.append(s)
                    break
                s += 1
                if s > 100 * (t + 100):
                    raise ValueError(f"no usable input size found for axis {a} and target {t}")
        return tuple(result)

    def receptive_field(self) -> tuple[int, ...]:
        """Receptive field (input context + 1) per axis, the same for both padding modes."""
        fov = []
        for a in range(self.dims):
            s = 1
            while self._axis_output(s, a) is None:
                s += 1
            fov.append(s - self._axis_output(s, a) + 1)
        return tuple(fov)

    # ------------------------------------------------------------------ forward
    @staticmethod
    def _centre_crop(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        slices = [slice(None), slice(None)]
        for s, t in zip(x.shape[2:], shape, strict=True):
            m = (s - t) // 2
            slices.append(slice(m, m + t))
        return x[tuple(slices)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of shape (N, C_in, *spatial) -> (N, C_out, *output_shape(spatial))."""
        if not isinstance(x, torch.Tensor) or x.dim() != self.dims + 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"x must be a tensor of shape (N, C, {'H, W' if self.dims == 2 else 'Z, Y, X'}); "
                f"got {shape}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels; got {x.shape[1]}")
        self.check_input_shape(x.shape[2:])
        skips = []
        for level in range(self.depth):
            x = self.down[level](x)
            if level < self.depth - 1:
                skips.append(x)
                x = self._pool(x, self.factors[level])
        for level in range(self.depth - 2, -1, -1):
            x = self.upsample[level](x)
            skip = self._centre_crop(skips[level], x.shape[2:])
            x = self.up[level](torch.cat([skip, x], dim=1))
        x = self.head(x)
        return torch.sigmoid(x) if self.final_activation == "sigmoid" else x
