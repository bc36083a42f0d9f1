"""The work of one S3ID gradient step: counted floating-point operations and peak tensor memory.

Scaling claims are judged on work, not wall time: :func:`step_work` runs one step (forward
and backward) under ``torch.utils.flop_counter.FlopCounterMode`` and a dispatch mode that
tracks the bytes of live tensors. On the ``meta`` device nothing is computed, so the dense
p x p path can be counted at sizes it could never run at.
"""

from __future__ import annotations

import time
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from .._checks import check_positive_int
from .stitching import stochastic_loss

__all__ = ["PeakTensorMemory", "step_work", "time_step"]


class PeakTensorMemory(TorchDispatchMode):
    """Track the peak bytes held by tensors created inside the mode (plus ``baseline`` bytes).

    Every operator output that is not a view or in-place result counts as a new allocation
    until its tensor is garbage collected.
    """

    def __init__(self, baseline: int = 0):
        super().__init__()
        self.live = int(baseline)
        self.peak = int(baseline)

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        aliasing = any(r.alias_info is not None for r in func._schema.returns)
        if not aliasing:
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    nbytes = t.numel() * t.element_size()
                    self.live += nbytes
                    weakref.finalize(t, self._free, nbytes)
            self.peak = max(self.peak, self.live)
        return out


def _inputs(
    p: int, n: int, K: int, batch: int, path: str, device
) -> tuple[list[torch.Tensor], callable]:
    C = (
        torch.randn(p, n, device=device, requires_grad=True)
        if device != "meta"
        else torch.empty(p, n, device=device)
    )
    C.requires_grad_(True)
    X = torch.zeros(n, n, device=device, requires_grad=True)
    R = torch.zeros(p, device=device, requires_grad=True)
    if path == "stochastic":
        ya, yb = torch.zeros(batch, p, device=device), torch.zeros(batch, p, device=device)
        ma, mb = torch.ones(batch, p, device=device), torch.ones(batch, p, device=device)
        return [C, X, R, ya, yb, ma, mb], lambda: stochastic_loss(C, X, R, ya, yb, ma, mb, 0)
    Xs = torch.zeros(K, n, n, device=device, requires_grad=True)
    Sigma = torch.zeros(K, p, p, device=device)
    W = torch.ones(K, p, p, device=device)

    def dense():
        pred = torch.einsum("in,snm,jm->sij", C, Xs, C) + torch.diag(R)
        return 0.5 * (W * (pred - Sigma) ** 2).sum()

    return [C, Xs, R, Sigma, W], dense


def step_work(
    p: int, n: int = 10, *, K: int = 10, batch: int = 10, path: str = "stochastic", device="meta"
):
    """Counted FLOPs and peak tensor bytes of one forward + backward step of S3ID.

    ``path="stochastic"``: :func:`~neuroinverse.inference.stitching.stochastic_loss` on ``batch``
    time points. ``path="dense"``: the full-batch loss over K lags (p x p x K tensors).
    Returns ``(flops, peak_bytes)``; inputs (data, parameters) count in the peak.
    """
    p, n = check_positive_int(p, "p"), check_positive_int(n, "n")
    if path not in ("stochastic", "dense"):
        raise ValueError(f"path must be 'stochastic' or 'dense'; got {path!r}")
    tensors, loss_fn = _inputs(p, n, K, batch, path, device)
    baseline = sum(t.numel() * t.element_size() for t in tensors)
    counter = FlopCounterMode(display=False)
    mem = PeakTensorMemory(baseline)
    with counter, mem:
        loss_fn().backward()
    return int(counter.get_total_flops()), int(mem.peak)


def time_step(
    p: int, n: int = 10, *, batch: int = 10, steps: int = 20, device="cpu", seed: int = 0
) -> float:
    """Median wall seconds of one stochastic S3ID step (loss, backward, Adam update) on
    ``device``."""
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    g = torch.Generator(device="cpu").manual_seed(seed)
    C = torch.randn(p, n, generator=g).to(device).requires_grad_(True)
    X = (0.1 * torch.randn(n, n, generator=g)).to(device).requires_grad_(True)
    R = torch.zeros(p, device=device, requires_grad=True)
    Y = torch.randn(batch + 1, p, generator=g).to(device)
    M = torch.ones(batch, p, device=device)
    opt = torch.optim.Adam([C, X, R], lr=1e-3)
    times = []
    for _ in range(steps + 2):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        stochastic_loss(C, X, R, Y[1:], Y[:-1], M, M, 1).backward()
        opt.step()
        sync()
        times.append(time.perf_counter() - t0)
    times = sorted(times[2:])
    return times[len(times) // 2]
