"""The paper-scale PSSR network: a bilinear-first U-Net with a weight-normalised ResNet-34 encoder.

A re-implementation, without fastai, of the network of Fang et al. (Nature Methods 2021;
reference ``utils/resnet.py`` and fastai ``DynamicUnet`` as used by ``train.py``), trained from
random initialisation as in the paper:

* the LR stack ``(B, C_in, h, w)`` is first upsampled ×``factor`` (bilinear,
  ``align_corners=False``) and the U-Net runs on the HR grid;
* encoder "WNResNet-34": weight-normalised convolutions, ReLU, no batch-norm; a stem of three
  3×3 convolutions (C_in→32 stride 2, 32→32, 32→64) and a 3×3 max-pool of stride 2; residual
  stages of [3, 4, 6, 3] basic blocks of widths 64, 128, 256, 512 (stride 2 at the start of
  stages 2-4; shortcut = 2×2 average pool + 1×1 convolution when the shape changes);
  Kaiming-normal initialisation;
* a bottleneck (512→1024→512); per level, pixel-shuffle ×2 upsampling with ICNR
  initialisation and "blur" (replication pad + 2×2 average pool of stride 1), concatenation
  with the encoder feature, two 3×3 convolutions; one self-attention layer (SAGAN style, zero
  gain at initialisation) in the third block from the bottom;
* "last cross": the upsampled input is concatenated before a final residual block, then a
  1×1 convolution to one channel (no final activation).

The HR size must be divisible by 32.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from .._checks import check_positive_int

__all__ = ["PSSRUNet"]


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1, icnr: int = 0) -> nn.Module:
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    nn.init.zeros_(conv.bias)
    if icnr:  # every sub-pixel of the shuffle starts with the same kernel
        sub = conv.weight.data[: cout // icnr**2]
        conv.weight.data.copy_(sub.repeat_interleave(icnr**2, dim=0))
    return weight_norm(conv)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1, self.c2 = _conv(cin, cout, stride=stride), _conv(cout, cout)
        self.short = None
        if stride != 1 or cin != cout:
            pool = nn.AvgPool2d(2) if stride != 1 else nn.Identity()
            self.short = nn.Sequential(pool, _conv(cin, cout, k=1))

    def forward(self, x):
        s = x if self.short is None else self.short(x)
        return F.relu(s + self.c2(F.relu(self.c1(x))))


class _SelfAttention(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.q, self.k, self.v = _conv(c, c // 8, 1), _conv(c, c // 8, 1), _conv(c, c, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.q(x).flatten(2), self.k(x).flatten(2), self.v(x).flatten(2)
        att = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, N, N)
        return x + self.gamma * (v @ att.transpose(1, 2)).view(b, c, h, w)


class _Up(nn.Module):
    """Pixel shuffle ×2 (ICNR, blur), concatenate the skip, two convolutions."""

    def __init__(self, up_in: int, skip: int, out: int, attention: bool = False):
        super().__init__()
        self.shuf = _conv(up_in, (up_in // 2) * 4, k=1, icnr=2)
        self.blur = nn.Sequential(nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1))
        self.c1, self.c2 = _conv(up_in // 2 + skip, out), _conv(out, out)
        self.att = _SelfAttention(out) if attention else nn.Identity()

    def forward(self, x, skip):
        x = self.blur(F.relu(F.pixel_shuffle(self.shuf(x), 2)))
        x = F.relu(torch.cat([x, skip], dim=1))
        return self.att(F.relu(self.c2(F.relu(self.c1(x)))))


class PSSRUNet(nn.Module):
    """``(B, C_in, h, w)`` → ``(B, 1, factor·h, factor·w)``; see the module docstring.

    ``base`` scales every width (64: the paper's ResNet-34 widths 64-512; smaller for tests
    and smoke runs).
    """

    def __init__(
        self, in_channels: int = 1, factor: int = 4, self_attention: bool = True, base: int = 64
    ):
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.factor = check_positive_int(factor, "factor")
        b = check_positive_int(base, "base", minimum=8)
        if b % 8:
            raise ValueError(f"base must be a multiple of 8; got {base}")
        c = in_channels
        self.stem = nn.Sequential(
            _conv(c, b // 2, stride=2),
            nn.ReLU(),
            _conv(b // 2, b // 2),
            nn.ReLU(),
            _conv(b // 2, b),
            nn.ReLU(),
        )
        stages, cin = [], b
        for n, width, stride in ((3, b, 1), (4, 2 * b, 2), (6, 4 * b, 2), (3, 8 * b, 2)):
            blocks = [_Block(cin, width, stride)] + [_Block(width, width, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.middle = nn.Sequential(
            _conv(8 * b, 16 * b), nn.ReLU(), _conv(16 * b, 8 * b), nn.ReLU()
        )
        ups, up_in = [], 8 * b
        for i, skip in enumerate((4 * b, 2 * b, b, b)):  # features at 1/16, 1/8, 1/4, 1/2
            out = up_in // 2 + skip
            ups.append(_Up(up_in, skip, out, attention=self_attention and i == 1))
            up_in = out
        self.ups = nn.ModuleList(ups)
        self.final_shuf = _conv(up_in, up_in * 4, k=1, icnr=2)
        self.blur = nn.Sequential(nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1))
        self.cross = _Block(up_in + c, up_in + c, 1)
        self.head = nn.Conv2d(up_in + c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"input must have shape (B, {self.in_channels}, h, w); got {tuple(x.shape)}"
            )
        up = F.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False)
        if up.shape[-2] % 32 or up.shape[-1] % 32:
            raise ValueError(f"the HR size must be divisible by 32; got {tuple(up.shape[-2:])}")
        inp = up - 0.5
        s0 = self.stem(inp)  # 1/2
        h = F.max_pool2d(s0, 3, stride=2, padding=1)  # 1/4
        feats = [s0]
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if i < 3:
                feats.append(h)  # 1/4, 1/8, 1/16
        h = self.middle(h)
        for up_block, skip in zip(self.ups, reversed(feats), strict=True):
            h = up_block(h, skip)
        h = self.blur(F.relu(F.pixel_shuffle(self.final_shuf(h), 2)))
        h = self.cross(torch.cat([h, inp], dim=1))
        return self.head(h) + 0.5
