"""Point-scanning super-resolution (PSSR): crappified training pairs, training and restoration.

Fang et al., "Deep learning-based point-scanning super-resolution imaging", Nature Methods 18,
406-416 (2021). Training needs high-resolution images only: each step crops random HR tiles
(with a random dihedral transform), degrades them with a crappifier
(:func:`~neuroinverse.simulators.crappify.crappify`) into LR inputs, and regresses the HR tile
with MSE. Multi-frame PSSR stacks frames ``t-2 … t+2`` of an HR movie, crappifies each one
independently, and restores frame ``t``. The optimiser follows the reference ``train.py``
(fastai ``fit_one_cycle``): AdamW with decoupled weight decay and a one-cycle learning rate.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._checks import check_choice, check_positive, check_positive_int
from ..simulators import CRAPPIFIERS, crappify, frame_stack
from ..training import History, fit

__all__ = ["pssr_batch", "train_pssr", "restore", "restore_movie", "stack_movie"]


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def pssr_batch(
    data: torch.Tensor,
    *,
    kind: str,
    factor: int,
    tile: int,
    batch: int,
    frames: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch ``(lr (B, frames, tile/f, tile/f), hr (B, 1, tile, tile))``.

    ``data`` holds HR images ``(N, H, W)`` (``frames`` must be 1) or HR movies
    ``(N, T, H, W)``; tiles, frames and dihedral transforms are drawn from ``generator``
    (a CPU generator; the crappifier noise is drawn on ``data``'s device).
    """
    if data.dim() == 3:
        if frames != 1:
            raise ValueError("multi-frame training needs movies of shape (N, T, H, W)")
        data = data[:, None]
    if data.dim() != 4:
        raise ValueError(f"data must have shape (N, H, W) or (N, T, H, W); got {tuple(data.shape)}")
    n, t_n, h, w = data.shape
    if tile > min(h, w) or tile % factor:
        raise ValueError(f"tile must be a multiple of factor and fit the images; got {tile}")
    if generator.device.type == "cpu":
        cpu = generator
    else:
        draw = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
        cpu = torch.Generator().manual_seed(int(draw))
    ii = torch.randint(0, n, (batch,), generator=cpu)
    tt = torch.randint(0, t_n, (batch,), generator=cpu)
    yy = torch.randint(0, h - tile + 1, (batch,), generator=cpu)
    xx = torch.randint(0, w - tile + 1, (batch,), generator=cpu)
    kk = torch.randint(0, 8, (batch,), generator=cpu)
    stacks, targets = [], []
    for i, t, y, x, k in zip(
        ii.tolist(), tt.tolist(), yy.tolist(), xx.tolist(), kk.tolist(), strict=True
    ):
        movie = data[i, :, y : y + tile, x : x + tile]
        s = frame_stack(movie, t, frames) if frames > 1 else movie[t : t + 1]
        stacks.append(_dihedral(s, k))
        targets.append(_dihedral(movie[t : t + 1], k))
    hr_stack = torch.stack(stacks)
    noise = generator if generator.device == data.device else None
    lr = crappify(hr_stack, kind, factor=factor, generator=noise)
    return lr, torch.stack(targets)


def train_pssr(
    model: nn.Module,
    data,
    *,
    kind: str = "em_ag",
    factor: int = 4,
    tile: int = 64,
    batch: int = 16,
    steps: int = 400,
    max_lr: float = 2e-3,
    weight_decay: float = 1e-3,
    seed: int = 0,
    progress: bool = False,
    desc: str = "PSSR",
) -> History:
    """Train ``model`` (``(B, frames, h, w)`` → ``(B, 1, f·h, f·w)``) on crappified tiles of
    ``data`` (HR images ``(N, H, W)`` or movies ``(N, T, H, W)`` in [0, 1]) with MSE, AdamW
    and a one-cycle schedule, through :func:`neuroinverse.training.fit`."""
    check_choice(kind, "kind", CRAPPIFIERS)
    factor = check_positive_int(factor, "factor")
    steps = check_positive_int(steps, "steps")
    batch = check_positive_int(batch, "batch")
    check_positive(max_lr, "max_lr")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    device = next(model.parameters()).device
    data = torch.as_tensor(np.asarray(data, dtype=np.float32), device=device)
    frames = int(getattr(model, "in_channels", 1))
    opt = torch.optim.AdamW(model.parameters(), lr=max_lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=steps)

    def loss_fn(step, gen):
        lr, hr = pssr_batch(
            data, kind=kind, factor=factor, tile=tile, batch=batch, frames=frames, generator=gen
        )
        return torch.mean((model(lr) - hr) ** 2)

    return fit(
        loss_fn,
        module=model,
        optimizers=opt,
        n_steps=steps,
        schedulers=sched,
        seed=seed,
        progress=progress,
        desc=desc,
    )


@torch.no_grad()
def restore(model: nn.Module, lr, *, batch: int = 8) -> np.ndarray:
    """Run ``model`` on LR inputs ``(N, C, h, w)`` (or ``(N, h, w)`` for one frame); returns
    float32 ``(N, f·h, f·w)`` on the CPU. Whole images, no tiling."""
    x = torch.as_tensor(np.asarray(lr, dtype=np.float32))
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4:
        raise ValueError(f"lr must have shape (N, C, h, w) or (N, h, w); got {tuple(x.shape)}")
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    out = [model(x[i : i + batch].to(device))[:, 0].cpu() for i in range(0, len(x), batch)]
    model.train(was)
    return torch.cat(out).numpy()


def stack_movie(lr_movie, frames: int) -> np.ndarray:
    """``(T, h, w)`` → ``(T, frames, h, w)``: each frame with its neighbours (edges replicated)."""
    m = torch.as_tensor(np.asarray(lr_movie, dtype=np.float32))
    if m.dim() != 3:
        raise ValueError(f"lr_movie must have shape (T, h, w); got {tuple(m.shape)}")
    return torch.stack([frame_stack(m, t, frames) for t in range(m.shape[0])]).numpy()


def restore_movie(model: nn.Module, lr_movie) -> np.ndarray:
    """Restore every frame of an LR movie ``(T, h, w)`` with a 1- or multi-frame model."""
    frames = int(getattr(model, "in_channels", 1))
    return restore(model, stack_movie(lr_movie, frames))
