"""DECODE training: windows simulated on the fly or once up front, and the training loop.

Speiser*, Müller*, Hoess, Matti, Obara, Legant, Kreshuk, Macke†, Ries†, Turaga†, "Deep
learning enables fast and dense single-molecule localization with high accuracy",
*Nature Methods* 18:1082–1090 (2021). Written for the book from the paper's description;
no code of the reference implementation is used. The network is
:class:`~neuroinverse.models.decode.DecodeNet`.

* :func:`simulate_windows`, :func:`train_decode`: training on fresh windows simulated by
  :class:`~neuroinverse.simulators.smlm.SMLMSimulator` (many steps' windows per vectorised
  call, or once up front and shared by several networks), scored by
  :func:`~neuroinverse.inference.decode.decode_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from .._checks import check_positive_int, check_range
from ..models.decode import DecodeNet, DecodeScales
from ..simulators.smlm import SMLMBatch, SMLMSimulator
from ..training import Clipping, History, fit
from .decode import DecodeTargets, decode_loss, make_targets

__all__ = [
    "TrainingWindows",
    "simulate_windows",
    "train_decode",
]


def _targets_for(batch: SMLMBatch, scales: DecodeScales, three_d: bool) -> DecodeTargets:
    B, T = batch.frames.shape[:2]
    mid = torch.arange(B, device=batch.frames.device) * T + T // 2
    return make_targets(
        batch.labels, batch.background.flatten(), frames=mid, scales=scales, three_d=three_d
    )


def _cat_targets(tgts: Sequence[DecodeTargets]) -> DecodeTargets:
    """Concatenate targets along the batch, padding the emitter lists to the longest."""
    M = max(t.u.shape[1] for t in tgts)
    u = torch.cat([F.pad(t.u, (0, 0, 0, M - t.u.shape[1])) for t in tgts])
    mask = torch.cat([F.pad(t.mask, (0, M - t.mask.shape[1])) for t in tgts])
    return DecodeTargets(u=u, mask=mask, bg=torch.cat([t.bg for t in tgts]))


def _batch_sizes(batch_size: int, n_sims: int) -> list[int]:
    if batch_size < n_sims:
        raise ValueError(
            f"batch_size {batch_size} must be at least the number of simulators {n_sims}"
        )
    return [batch_size // n_sims + (i < batch_size % n_sims) for i in range(n_sims)]


@dataclass
class TrainingWindows:
    """Simulated 3-frame training windows for ``n_steps`` steps of ``batch_size`` windows.

    Window ``i`` of step ``s`` is row ``s · batch_size + i``; every window is an independent
    simulated sequence and is used once, exactly as if it had been simulated at its step.

    Attributes:
        frames: ``(n_steps · batch_size, 3, H, W)`` photon-unit frames.
        targets: the middle frames' :class:`~neuroinverse.inference.decode.DecodeTargets`.
        batch_size: windows per step.
    """

    frames: torch.Tensor
    targets: DecodeTargets
    batch_size: int

    @property
    def n_steps(self) -> int:
        return self.frames.shape[0] // self.batch_size

    def batch(self, step: int) -> tuple[torch.Tensor, DecodeTargets]:
        """Frames and targets of step ``step`` (emitter lists trimmed to the batch's longest)."""
        check_range(step, "step", 0, self.n_steps, high_open=True)
        sl = slice(step * self.batch_size, (step + 1) * self.batch_size)
        mask = self.targets.mask[sl]
        M = max(int(mask.sum(1).max()), 1)
        return self.frames[sl], DecodeTargets(
            u=self.targets.u[sl, :M], mask=mask[:, :M], bg=self.targets.bg[sl]
        )


def simulate_windows(
    simulators: SMLMSimulator | Sequence[SMLMSimulator],
    *,
    n_steps: int,
    batch_size: int,
    scales: DecodeScales,
    three_d: bool = False,
    generator: torch.Generator | None = None,
    device="cpu",
    chunk: int = 2048,
) -> TrainingWindows:
    """Simulate the training windows of ``n_steps`` steps at once (vectorised, in chunks).

    Each step's batch holds ``batch_size`` independent 3-frame sequences split evenly across
    ``simulators`` (the first simulator's windows first), as :func:`train_decode` draws them on
    the fly; simulating them together costs a fraction of many small calls. Simulate once and
    pass the result to several :func:`train_decode` calls to train networks on identical data.

    Args:
        simulators: one simulator or several (e.g. two SNR regimes).
        n_steps, batch_size: training steps and windows per step.
        scales, three_d: target units (those of the network to train).
        generator: source of all randomness.
        device: where the windows are kept.
        chunk: most sequences simulated per call (bounds the memory).
    """
    sims = [simulators] if isinstance(simulators, SMLMSimulator) else list(simulators)
    if not sims:
        raise ValueError("simulators must hold at least one SMLMSimulator")
    check_positive_int(n_steps, "n_steps")
    check_positive_int(chunk, "chunk")
    sizes = _batch_sizes(batch_size, len(sims))
    frames, tgts = [], []
    for sim, n in zip(sims, sizes, strict=True):
        fs, ts = [], []
        total = n_steps * n
        for s in range(0, total, chunk):
            b = sim.sample(min(chunk, total - s), 3, generator=generator, device=device)
            fs.append(b.frames)
            ts.append(_targets_for(b, scales, three_d))
        frames.append(torch.cat(fs).reshape(n_steps, n, *fs[0].shape[1:]))
        tgts.append(_cat_targets(ts))
    # interleave the simulators step by step: [sim 0's windows of step s, sim 1's, ...]
    frames = torch.cat(frames, 1).flatten(0, 1)
    M = max(t.u.shape[1] for t in tgts)
    u = torch.cat(
        [
            F.pad(t.u, (0, 0, 0, M - t.u.shape[1])).reshape(n_steps, n, M, -1)
            for t, n in zip(tgts, sizes, strict=True)
        ],
        1,
    ).flatten(0, 1)
    mask = torch.cat(
        [
            F.pad(t.mask, (0, M - t.mask.shape[1])).reshape(n_steps, n, M)
            for t, n in zip(tgts, sizes, strict=True)
        ],
        1,
    ).flatten(0, 1)
    bg = torch.cat(
        [t.bg.reshape(n_steps, n) for t, n in zip(tgts, sizes, strict=True)], 1
    ).flatten()
    return TrainingWindows(
        frames=frames, targets=DecodeTargets(u=u, mask=mask, bg=bg), batch_size=batch_size
    )


def train_decode(
    net: DecodeNet,
    simulators: SMLMSimulator | Sequence[SMLMSimulator] | TrainingWindows,
    *,
    n_steps: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    clip_norm: float | None = 1.0,
    lr_step: int = 0,
    lr_gamma: float = 0.9,
    count_weight: str = "max1",
    seed: int = 0,
    eval_fn=None,
    eval_every: int = 0,
    sim_steps: int = 64,
    progress: bool = True,
    desc: str = "DECODE",
) -> History:
    """Train ``net`` on simulated windows (paper, Methods; reference code's training defaults).

    Every step uses ``batch_size`` fresh, independent 3-frame sequences (split evenly across
    the simulators; each has its own blinking burn-in), feeds the whole window (or its middle
    frame for a single-frame net) and scores the middle frame with
    :func:`~neuroinverse.inference.decode.decode_loss`.
    Given simulators, the windows of ``sim_steps`` steps at a time are simulated in one
    vectorised call (:func:`simulate_windows`) from the loop's generator; given
    :class:`TrainingWindows` (made once by :func:`simulate_windows`, e.g. to train several
    networks on the same data), step ``s`` uses its batch ``s``. AdamW (the fused kernel)
    with optional StepLR (``lr_step`` steps, factor ``lr_gamma``), gradient-norm clipping,
    through :func:`neuroinverse.training.fit`. Runs are reproducible.

    Returns:
        The training :class:`~neuroinverse.training.History` (``metrics`` holds the three terms).
    """
    if isinstance(simulators, TrainingWindows):
        windows: TrainingWindows | None = simulators
        sims: list[SMLMSimulator] = []
        if windows.batch_size != batch_size:
            raise ValueError(
                f"the windows hold batches of {windows.batch_size}, not batch_size {batch_size}"
            )
        if windows.n_steps < n_steps:
            raise ValueError(
                f"the windows cover {windows.n_steps} steps, fewer than n_steps {n_steps}"
            )
        if windows.targets.u.shape[2] != net.n_dims:
            raise ValueError("the windows' targets do not match the network's dimension (2D/3D)")
    else:
        windows = None
        sims = [simulators] if isinstance(simulators, SMLMSimulator) else list(simulators)
        if not sims:
            raise ValueError("simulators must hold at least one SMLMSimulator")
        for s in sims:
            if tuple(s.pixel_size) != tuple(net.scales.pixel_size):
                raise ValueError(
                    f"simulator pixel_size {s.pixel_size} nm differs from the network's "
                    f"{net.scales.pixel_size} nm"
                )
        _batch_sizes(batch_size, len(sims))
        check_positive_int(sim_steps, "sim_steps")
    dev = next(net.parameters()).device
    opt = torch.optim.AdamW(
        net.parameters(),
        lr=lr,
        weight_decay=weight_decay,
        **({"fused": True} if dev.type in ("cpu", "cuda") else {}),
    )
    sched = [torch.optim.lr_scheduler.StepLR(opt, lr_step, lr_gamma)] if lr_step else []
    cache: dict[int, TrainingWindows] = {}

    def loss_fn(step: int, gen: torch.Generator):
        if windows is not None:
            x, tg = windows.batch(step)
        else:
            k = step // sim_steps
            if k not in cache:
                cache.clear()
                n = min(sim_steps, n_steps - k * sim_steps)
                cache[k] = simulate_windows(
                    sims,
                    n_steps=n,
                    batch_size=batch_size,
                    scales=net.scales,
                    three_d=net.three_d,
                    generator=gen,
                    device=dev,
                )
            x, tg = cache[k].batch(step - k * sim_steps)
        x, tg = x.to(dev), DecodeTargets(u=tg.u.to(dev), mask=tg.mask.to(dev), bg=tg.bg.to(dev))
        if net.n_frames == 1:
            x = x[:, 1:2]
        terms = decode_loss(net(x), tg, count_weight=count_weight, reduce=False)
        return terms["total"].mean(), {
            k: float(v.detach().mean()) for k, v in terms.items() if k != "total"
        }

    return fit(
        loss_fn,
        module=net,
        optimizers=opt,
        schedulers=sched,
        n_steps=n_steps,
        clipping=Clipping(clip_norm) if clip_norm is not None else None,
        seed=seed,
        eval_fn=eval_fn,
        eval_every=eval_every,
        progress=progress,
        desc=desc,
    )
