"""DECODE, the method: targets, loss, post-processing, training and evaluation.

Speiser*, Müller*, Hoess, Matti, Obara, Legant, Kreshuk, Macke†, Ries†, Turaga†, "Deep
learning enables fast and dense single-molecule localization with high accuracy",
*Nature Methods* 18:1082–1090 (2021). Written for the book from the paper's description;
no code of the reference implementation is used. The network is
:class:`~neuroinverse.models.decode.DecodeNet`.

* :func:`decode_loss` (Methods, "Loss function"): a Gaussian approximation of the
  Poisson-binomial count of detections, a ``K``-component Gaussian mixture likelihood of the
  true emitters with weights ``p_k / Σ_j p_j``, and a squared background error.
* :func:`post_process` (Methods, "Post-processing"): spatial integration of ``p`` around
  local maxima into discrete localisations with uncertainties.
* :func:`simulate_windows`, :func:`train_decode`, :func:`predict`, :func:`localise`: training
  on fresh windows simulated by :class:`~neuroinverse.simulators.smlm.SMLMSimulator` (many
  steps' windows per vectorised call, or once up front and shared by several networks), and
  sliding-window inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from ..metrics.localisation import localisation_scores
from ..models.decode import DecodeNet, DecodeScales
from ..simulators.smlm import EmitterTable, SMLMBatch, SMLMSimulator
from ..training import Clipping, History, fit

__all__ = [
    "DecodeTargets",
    "make_targets",
    "decode_loss",
    "post_process",
    "mixture_sigma",
    "predict",
    "localise",
    "train_decode",
    "simulate_windows",
    "TrainingWindows",
    "window_batch",
    "precision_recall_sweep",
]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class DecodeTargets:
    """Padded training targets of one batch of frames.

    Attributes:
        u: ``(B, M, D)`` true emitters ``(N / phot_max, x, y[, z / z_max])`` (x, y absolute px).
        mask: ``(B, M)`` True for real rows.
        bg: ``(B,)`` true background in units of ``bg_max``.
    """

    u: torch.Tensor
    mask: torch.Tensor
    bg: torch.Tensor


def make_targets(
    labels: EmitterTable, background: torch.Tensor, *, frames: torch.Tensor, scales: DecodeScales, three_d: bool = False
) -> DecodeTargets:
    """Pad the labelled emitters of the frames ``frames`` into :class:`DecodeTargets`.

    Args:
        labels: emitters (already filtered by the label photon threshold).
        background: ``(labels.n_frames,)`` true background per frame (photons per pixel).
        frames: ``(B,)`` int64 indices of the target frames into ``labels``.
        scales: output units.
        three_d: include z.
    """
    B = frames.numel()
    lookup = torch.full((labels.n_frames,), -1, dtype=torch.long, device=labels.frame.device)
    lookup[frames] = torch.arange(B, device=lookup.device)
    row = lookup[labels.frame]
    sel = row >= 0
    row = row[sel]
    order = torch.argsort(row, stable=True)
    row = row[order]
    cols = [labels.photons / scales.phot_max, labels.x, labels.y]
    if three_d:
        cols.append(labels.z / scales.z_max)
    vals = torch.stack(cols, 1)[sel][order].float()
    counts = torch.bincount(row, minlength=B)
    M = max(int(counts.max()) if B else 0, 1)
    slot = torch.arange(row.numel(), device=row.device) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    u = torch.zeros(B, M, vals.shape[1], device=vals.device)
    mask = torch.zeros(B, M, dtype=torch.bool, device=vals.device)
    u[row, slot] = vals
    mask[row, slot] = True
    return DecodeTargets(u=u, mask=mask, bg=(background[frames] / scales.bg_max).float())


def decode_loss(
    out: Mapping[str, torch.Tensor], targets: DecodeTargets, *, count_weight: str = "max1", reduce: bool = True
) -> torch.Tensor | dict[str, torch.Tensor]:
    """The DECODE loss (paper, Methods, "Loss function").

    Per frame with ``E`` true emitters ``u_e`` and pixels ``k``:

    * ``L_count = −log N(E; Σ p_k, Σ p_k (1 − p_k))``, multiplied by ``max(E, 1)``
      (``count_weight="max1"``, the book's choice so that empty frames are penalised) or by
      ``E`` (``"count"``, the reference code);
    * ``L_loc = −Σ_e log Σ_k (p_k / Σ_j p_j) N(u_e; μ_k, diag σ_k²)`` with
      ``μ_k = (N̂_k, c_x(k) + dx_k, c_y(k) + dy_k[, ẑ_k])``;
    * ``L_bg = Σ_pixels (b̂ − b / bg_max)²``.

    Args:
        out: network output (see :class:`DecodeNet`).
        targets: the batch's :class:`DecodeTargets`.
        count_weight: ``"max1"`` or ``"count"``.
        reduce: return the batch mean of ``L_count + L_loc + L_bg``; otherwise a dict of
            ``(B,)`` terms.
    """
    if count_weight not in ("max1", "count"):
        raise ValueError(f"count_weight must be 'max1' or 'count'; got {count_weight!r}")
    p = out["p"][:, 0]
    B, H, W = p.shape
    D = out["mean"].shape[1]
    if targets.u.shape[0] != B or targets.u.shape[2] != D:
        raise ValueError(f"targets.u {tuple(targets.u.shape)} does not match the output (B={B}, D={D})")
    pf = p.flatten(1)
    E = targets.mask.sum(1).to(p.dtype)
    mu_c = pf.sum(1)
    var_c = (pf * (1 - pf)).sum(1)
    l_count = 0.5 * (E - mu_c) ** 2 / var_c + 0.5 * torch.log(var_c) + _LOG_SQRT_2PI
    l_count = l_count * (E.clamp_min(1.0) if count_weight == "max1" else E)
    # mixture components at every pixel: means in target units
    cy, cx = torch.meshgrid(
        torch.arange(H, device=p.device, dtype=p.dtype), torch.arange(W, device=p.device, dtype=p.dtype), indexing="ij"
    )
    mean = out["mean"]
    mean = torch.cat([mean[:, :1], mean[:, 1:2] + cx, mean[:, 2:3] + cy, mean[:, 3:]], 1).flatten(2)  # (B, D, K)
    sig = out["sigma"].flatten(2)  # (B, D, K)
    inv_sig = 1.0 / sig
    # per component: log weight − Σ_d log σ_kd − D log √(2π)  (B, K)
    log_c = torch.log(pf) - torch.log(mu_c)[:, None] - torch.log(sig).sum(1) - D * _LOG_SQRT_2PI
    # squared Mahalanobis distances of every target to every component, one coordinate at a
    # time on contiguous (B, M, K) tensors
    sq = None
    for d in range(D):
        zd = (targets.u[:, :, d, None] - mean[:, None, d]) * inv_sig[:, None, d]  # (B, M, K)
        sq = zd * zd if sq is None else sq + zd * zd
    log_mix = torch.logsumexp(log_c[:, None] - 0.5 * sq, dim=2)  # (B, M)
    l_loc = -(log_mix * targets.mask).sum(1)
    l_bg = ((out["bg"][:, 0] - targets.bg[:, None, None]) ** 2).flatten(1).sum(1)
    if not reduce:
        return dict(count=l_count, loc=l_loc, bg=l_bg, total=l_count + l_loc + l_bg)
    return (l_count + l_loc + l_bg).mean()


def mixture_sigma(out: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Lateral σ of the detection-weighted mixture over each pixel's 3×3 neighbourhood.

    The network's output is a mixture: pixel ``k`` contributes a Gaussian component with
    mean ``μ_k = c(k) + (Δx_k, Δy_k)`` and standard deviations ``σ_k`` (per axis). Around each
    pixel, with weights ``w_k = p_k / Σ_j p_j`` over its 3×3 neighbourhood, the moment-matched
    variance per axis is ``σ² = Σ_k w_k (σ_k² + (μ_k − μ̄)²)``, ``μ̄ = Σ_k w_k μ_k``: the
    pixel's own σ widened by the spread of its neighbours' means. A detection map that spreads
    one emitter over several pixels thus gives a wider σ than the peak pixel's alone.

    Args:
        out: network output with ``p`` ``(B, 1, H, W)``, ``mean`` and ``sigma`` (channels
            1, 2 = x, y in pixels).

    Returns:
        ``(σx, σy)``, each ``(B, 1, H, W)`` in pixels.

    >>> import torch
    >>> p = torch.zeros(1, 1, 3, 3); p[0, 0, 1, 1] = p[0, 0, 1, 2] = 0.5
    >>> out = dict(p=p, mean=torch.zeros(1, 3, 3, 3), sigma=torch.full((1, 3, 3, 3), 0.1))
    >>> sx, sy = mixture_sigma(out)
    >>> round(float(sx[0, 0, 1, 1]), 4), round(float(sy[0, 0, 1, 1]), 4)   # sqrt(0.01 + 0.25), 0.1
    (0.5099, 0.1)
    """
    p = out["p"]
    B, _, H, W = p.shape
    off = torch.arange(-1, 2, dtype=p.dtype, device=p.device)
    d_row, d_col = off.repeat_interleave(3), off.repeat(3)  # F.unfold order: row-major over the 3×3 kernel
    w = F.unfold(p, 3, padding=1)
    w = w / w.sum(1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)
    res = []
    for ch, shift in ((1, d_col), (2, d_row)):
        mu = F.unfold(out["mean"][:, ch : ch + 1], 3, padding=1) + shift[None, :, None]
        sd = F.unfold(out["sigma"][:, ch : ch + 1], 3, padding=1)
        mbar = (w * mu).sum(1, keepdim=True)
        var = (w * (sd**2 + (mu - mbar) ** 2)).sum(1)
        res.append(var.sqrt().reshape(B, 1, H, W))
    return res[0], res[1]


def post_process(
    out: Mapping[str, torch.Tensor],
    *,
    scales: DecodeScales,
    raw_th: float = 0.5,
    split_th: float = 0.6,
    frame_index: torch.Tensor | None = None,
    n_frames: int | None = None,
    sigma_readout: str = "pixel",
) -> EmitterTable:
    """Spatial integration of the detection map into localisations.

    Paper, Methods; the reference code's "spatial integration".

    1. candidates: pixels with ``p > raw_th`` that are the maximum of their 3×3 neighbourhood,
       and other pixels with ``p > split_th`` (to resolve emitters in adjacent pixels);
    2. each candidate's probability is summed with its 4 direct neighbours, clamped at 1;
    3. candidates with this value ≥ ``raw_th`` become localisations read out at their pixel.

    Args:
        out: network output for ``B`` frames.
        scales: output units.
        raw_th, split_th: thresholds.
        frame_index: ``(B,)`` frame index of each output (default ``0..B−1``).
        n_frames: ``n_frames`` of the returned table (default ``B``).
        sigma_readout: ``"pixel"`` reads σx, σy at the candidate pixel (the reference);
            ``"mixture"`` reads the moment-matched σ of :func:`mixture_sigma` there (positions
            are unchanged).

    Returns:
        Localisations with ``prob``, ``sigma_x``/``sigma_y`` (px), ``sigma_z`` (nm),
        ``sigma_photons`` and ``background``.
    """
    if not 0 < raw_th < 1 or not 0 < split_th < 1:
        raise ValueError(f"raw_th and split_th must lie in (0, 1); got {raw_th}, {split_th}")
    if sigma_readout not in ("pixel", "mixture"):
        raise ValueError(f"sigma_readout must be 'pixel' or 'mixture'; got {sigma_readout!r}")
    p = out["p"]
    B, _, H, W = p.shape
    with torch.no_grad():
        clipped = torch.where(p > raw_th, p, torch.zeros_like(p))
        local_max = (clipped > 0) & (clipped == F.max_pool2d(clipped, 3, stride=1, padding=1))
        plus = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]], dtype=p.dtype, device=p.device)
        agg = F.conv2d(p, plus.view(1, 1, 3, 3), padding=1).clamp(max=1.0)
        cand = local_max | (p > split_th)
        keep = cand & (agg >= raw_th)
        b, _, r, c = torch.nonzero(keep, as_tuple=True)
        mean, sig = out["mean"], out["sigma"]
        if sigma_readout == "mixture":
            sx_map, sy_map = mixture_sigma(out)
            sig = sig.clone()
            sig[:, 1:2], sig[:, 2:3] = sx_map, sy_map
        x = c.to(p.dtype) + mean[b, 1, r, c]
        y = r.to(p.dtype) + mean[b, 2, r, c]
        three_d = mean.shape[1] == 4
        z = mean[b, 3, r, c] * scales.z_max if three_d else torch.zeros_like(x)
        fi = torch.arange(B, device=p.device) if frame_index is None else frame_index.to(p.device)
        return EmitterTable(
            frame=fi[b],
            x=x,
            y=y,
            z=z,
            photons=mean[b, 0, r, c] * scales.phot_max,
            n_frames=int(n_frames if n_frames is not None else B),
            pixel_size=scales.pixel_size,
            prob=agg[b, 0, r, c],
            sigma_x=sig[b, 1, r, c],
            sigma_y=sig[b, 2, r, c],
            sigma_z=sig[b, 3, r, c] * scales.z_max if three_d else torch.zeros_like(x),
            sigma_photons=sig[b, 0, r, c] * scales.phot_max,
            background=out["bg"][b, 0, r, c] * scales.bg_max,
        )


def window_batch(frames: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Sliding windows over each sequence, edge frames repeated by index clamping.

    Args:
        frames: ``(B, T, H, W)``.
        n_frames: window length (1 or 3).

    Returns:
        ``(B · T, n_frames, H, W)``: the window centred on each frame.
    """
    B, T, H, W = frames.shape
    h = n_frames // 2
    idx = (torch.arange(T, device=frames.device)[:, None] + torch.arange(-h, h + 1, device=frames.device)).clamp(
        0, T - 1
    )
    return frames[:, idx].reshape(B * T, n_frames, H, W)


def _as_sequences(frames: torch.Tensor) -> torch.Tensor:
    if not isinstance(frames, torch.Tensor):
        raise ValueError("frames must be a tensor of shape (T, H, W) or (B, T, H, W)")
    if frames.dim() == 3:
        return frames[None]
    if frames.dim() != 4:
        raise ValueError(f"frames must have shape (T, H, W) or (B, T, H, W); got {tuple(frames.shape)}")
    return frames


@torch.no_grad()
def predict(net: DecodeNet, frames: torch.Tensor, *, batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Network output for every frame of one or several sequences (photon units).

    Args:
        net: a :class:`DecodeNet`.
        frames: ``(T, H, W)`` or ``(B, T, H, W)`` frames in photon units.
        batch_size: windows per forward pass.

    Returns:
        Dict of ``(B · T, ·, H, W)`` maps (see :class:`DecodeNet`).
    """
    seq = _as_sequences(frames)
    dev = next(net.parameters()).device
    net.eval()
    B, T, H, W = seq.shape
    outs: dict[str, list[torch.Tensor]] = {}
    for s in range(0, B * T, batch_size):
        ids = torch.arange(s, min(s + batch_size, B * T))
        bi, ti = ids // T, ids % T
        h = net.n_frames // 2
        tt = (ti[:, None] + torch.arange(-h, h + 1)).clamp(0, T - 1)
        win = seq[bi[:, None], tt].to(dev)
        for k, v in net(win).items():
            outs.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in outs.items()}


def localise(
    net: DecodeNet,
    frames: torch.Tensor,
    *,
    pixel_size=None,
    raw_th: float = 0.5,
    split_th: float = 0.6,
    batch_size: int = 64,
) -> EmitterTable:
    """:func:`predict` then :func:`post_process`: frames → localisations.

    Args:
        net: trained network.
        frames: ``(T, H, W)`` or ``(B, T, H, W)`` photon-unit frames.
        pixel_size: ``(x, y)`` nm of ``frames``; must equal the network's (``None``: assume it).
        raw_th, split_th: post-processing thresholds.

    Returns:
        Localisations with ``frame = b · T + t``.
    """
    if pixel_size is not None:
        px = (
            (float(pixel_size), float(pixel_size))
            if isinstance(pixel_size, (int, float))
            else tuple(float(v) for v in pixel_size)
        )
        if px != tuple(net.scales.pixel_size):
            raise ValueError(
                f"pixel_size {px} nm of the frames differs from the network's "
                f"{net.scales.pixel_size} nm: retrain or resample"
            )
    seq = _as_sequences(frames)
    out = predict(net, seq, batch_size=batch_size)
    return post_process(out, scales=net.scales, raw_th=raw_th, split_th=split_th)


def _targets_for(batch: SMLMBatch, scales: DecodeScales, three_d: bool) -> DecodeTargets:
    B, T = batch.frames.shape[:2]
    mid = torch.arange(B, device=batch.frames.device) * T + T // 2
    return make_targets(batch.labels, batch.background.flatten(), frames=mid, scales=scales, three_d=three_d)


def _cat_targets(tgts: Sequence[DecodeTargets]) -> DecodeTargets:
    """Concatenate targets along the batch, padding the emitter lists to the longest."""
    M = max(t.u.shape[1] for t in tgts)
    u = torch.cat([F.pad(t.u, (0, 0, 0, M - t.u.shape[1])) for t in tgts])
    mask = torch.cat([F.pad(t.mask, (0, M - t.mask.shape[1])) for t in tgts])
    return DecodeTargets(u=u, mask=mask, bg=torch.cat([t.bg for t in tgts]))


def _batch_sizes(batch_size: int, n_sims: int) -> list[int]:
    if batch_size < n_sims:
        raise ValueError(f"batch_size {batch_size} must be at least the number of simulators {n_sims}")
    return [batch_size // n_sims + (i < batch_size % n_sims) for i in range(n_sims)]


@dataclass
class TrainingWindows:
    """Simulated 3-frame training windows for ``n_steps`` steps of ``batch_size`` windows.

    Window ``i`` of step ``s`` is row ``s · batch_size + i``; every window is an independent
    simulated sequence and is used once, exactly as if it had been simulated at its step.

    Attributes:
        frames: ``(n_steps · batch_size, 3, H, W)`` photon-unit frames.
        targets: the middle frames' :class:`DecodeTargets`.
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
        if not 0 <= step < self.n_steps:
            raise ValueError(f"step must lie in [0, {self.n_steps}); got {step}")
        sl = slice(step * self.batch_size, (step + 1) * self.batch_size)
        mask = self.targets.mask[sl]
        M = max(int(mask.sum(1).max()), 1)
        return self.frames[sl], DecodeTargets(u=self.targets.u[sl, :M], mask=mask[:, :M], bg=self.targets.bg[sl])


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
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}")
    if chunk < 1:
        raise ValueError(f"chunk must be positive; got {chunk!r}")
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
        [F.pad(t.u, (0, 0, 0, M - t.u.shape[1])).reshape(n_steps, n, M, -1) for t, n in zip(tgts, sizes, strict=True)],
        1,
    ).flatten(0, 1)
    mask = torch.cat(
        [F.pad(t.mask, (0, M - t.mask.shape[1])).reshape(n_steps, n, M) for t, n in zip(tgts, sizes, strict=True)], 1
    ).flatten(0, 1)
    bg = torch.cat([t.bg.reshape(n_steps, n) for t, n in zip(tgts, sizes, strict=True)], 1).flatten()
    return TrainingWindows(frames=frames, targets=DecodeTargets(u=u, mask=mask, bg=bg), batch_size=batch_size)


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
    frame for a single-frame net) and scores the middle frame with :func:`decode_loss`.
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
            raise ValueError(f"the windows hold batches of {windows.batch_size}, not batch_size {batch_size}")
        if windows.n_steps < n_steps:
            raise ValueError(f"the windows cover {windows.n_steps} steps, fewer than n_steps {n_steps}")
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
                    f"simulator pixel_size {s.pixel_size} nm differs from the network's {net.scales.pixel_size} nm"
                )
        _batch_sizes(batch_size, len(sims))
        if sim_steps < 1:
            raise ValueError(f"sim_steps must be positive; got {sim_steps!r}")
    dev = next(net.parameters()).device
    opt = torch.optim.AdamW(
        net.parameters(), lr=lr, weight_decay=weight_decay, **({"fused": True} if dev.type in ("cpu", "cuda") else {})
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
        return terms["total"].mean(), {k: float(v.detach().mean()) for k, v in terms.items() if k != "total"}

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


def precision_recall_sweep(
    out: Mapping[str, torch.Tensor],
    truth: EmitterTable,
    *,
    scales: DecodeScales,
    thresholds: Sequence[float],
    split_th: float = 0.6,
) -> dict[str, list[float]]:
    """Precision, recall and Jaccard index of :func:`post_process` at each ``raw_th``.

    Args:
        out: network output for the frames of ``truth`` (frame ``i`` = output row ``i``).
        truth: ground truth.
        scales: output units.
        thresholds: values of ``raw_th`` in (0, 1).
        split_th: the split threshold, raised to at least ``raw_th``.

    Returns:
        dict of lists ``threshold``, ``precision``, ``recall``, ``jaccard``.
    """
    res: dict[str, list[float]] = dict(threshold=[], precision=[], recall=[], jaccard=[])
    for th in thresholds:
        loc = post_process(
            out, scales=scales, raw_th=float(th), split_th=max(split_th, float(th)), n_frames=truth.n_frames
        )
        s = localisation_scores(loc, truth)
        for k, v in (
            ("threshold", float(th)),
            ("precision", s.precision),
            ("recall", s.recall),
            ("jaccard", s.jaccard),
        ):
            res[k].append(v)
    return res
