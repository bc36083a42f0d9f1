"""Training and running the two networks of learning-guided SEM: membrane detector D and error
predictor E.

Mi et al. (MICCAI 2020, arXiv:2101.02746), Sec. 2. D maps an EM image to membrane
probability and serves every acquisition policy, so it is trained on scans at several dwell
times and on random fusions of a fast and a slow scan (a rescanned image has pixel-to-pixel
varying noise). E (:class:`~neuroinverse.models.ErrorPredictor`) maps the fast scan and
D's map on it to the probability that D's decision there differs from its decision on the
slow scan (:func:`~neuroinverse.inference.active_sem.error_target`). Both are trained with
binary cross-entropy on random crops with dihedral flips, through :func:`neuroinverse.training.fit`;
E with ``pos_weight = (1 − p̄)/p̄`` for the rare error pixels.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from .._checks import check_positive, check_positive_int
from ..segmentation import segment_membrane_map
from ..training import History, fit
from .active_sem import segmentation_arand, segmentation_vi

__all__ = [
    "random_crops",
    "membrane_batches",
    "error_batches",
    "fit_pixel_classifier",
    "predict_maps",
    "segment_and_score",
]

Sampler = Callable[[torch.Generator], tuple[tuple[torch.Tensor, ...], torch.Tensor]]


def _stack(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if t.dim() != 3:
        raise ValueError(f"{name} must have shape (N, H, W); got {tuple(t.shape)}")
    return t


def random_crops(arrays: list[torch.Tensor], idx: torch.Tensor, crop: int, g: torch.Generator):
    """The same random ``crop``×``crop`` window and dihedral flip of each array at ``idx``.

    ``arrays`` hold (N, H, W) tensors; returns a list of (B, 1, crop, crop) tensors.
    """
    h, w = arrays[0].shape[-2:]
    if crop > min(h, w):
        raise ValueError(f"crop ({crop}) is larger than the images ({h}x{w})")
    b = idx.numel()
    ys = torch.randint(0, h - crop + 1, (b,), generator=g)
    xs = torch.randint(0, w - crop + 1, (b,), generator=g)
    flips = torch.randint(0, 2, (b, 3), generator=g)
    out = []
    for a in arrays:
        tiles = []
        for n in range(b):
            t = a[idx[n], ys[n] : ys[n] + crop, xs[n] : xs[n] + crop]
            if flips[n, 0]:
                t = t.flip(0)
            if flips[n, 1]:
                t = t.flip(1)
            if flips[n, 2]:
                t = t.transpose(0, 1)
            tiles.append(t)
        out.append(torch.stack(tiles)[:, None])
    return out


def membrane_batches(
    scans, fast, slow, membranes, *, crop: int = 64, batch_size: int = 8, max_fused: float = 0.3
) -> Sampler:
    """Batches for D: a random dwell time, or a random fusion of the fast and slow scans.

    Args:
        scans: (n_dwell, N, H, W) scans of the N training images at each dwell.
        fast, slow: (N, H, W) the fast and slow scans fused at random pixels (a fraction
            drawn uniformly in (0, ``max_fused``)) for one batch slot in ``n_dwell + 1``.
        membranes: (N, H, W) binary membrane targets.
    """
    s = torch.as_tensor(np.asarray(scans, dtype=np.float32))
    if s.dim() != 4:
        raise ValueError(f"scans must have shape (n_dwell, N, H, W); got {tuple(s.shape)}")
    f, sl, m = _stack(fast, "fast"), _stack(slow, "slow"), _stack(membranes, "membranes")
    if not (f.shape == sl.shape == m.shape == s.shape[1:]):
        raise ValueError("scans, fast, slow and membranes must share (N, H, W)")
    crop = check_positive_int(crop, "crop")
    batch_size = check_positive_int(batch_size, "batch_size")
    n_dwell, n = s.shape[:2]

    def sample(g: torch.Generator):
        idx = torch.randint(0, n, (batch_size,), generator=g)
        which = torch.randint(0, n_dwell + 1, (batch_size,), generator=g)
        xs, ys = [], []
        for b in range(batch_size):
            i = int(idx[b])
            if which[b] < n_dwell:
                img = s[which[b], i]
            else:
                frac = float(torch.rand((), generator=g)) * max_fused
                keep = torch.rand(f.shape[1:], generator=g) < frac
                img = torch.where(keep, sl[i], f[i])
            x, y = random_crops([img[None], m[i][None]], torch.zeros(1, dtype=torch.long), crop, g)
            xs.append(x)
            ys.append(y)
        return (torch.cat(xs),), torch.cat(ys)

    return sample


def error_batches(fast, membranes_fast, errors, *, crop: int = 64, batch_size: int = 8) -> Sampler:
    """Batches for E: (fast scan, D's map on it) → the error target, random crops and flips."""
    f, p, e = (
        _stack(fast, "fast"),
        _stack(membranes_fast, "membranes_fast"),
        _stack(errors, "errors"),
    )
    if not (f.shape == p.shape == e.shape):
        raise ValueError("fast, membranes_fast and errors must share (N, H, W)")
    crop = check_positive_int(crop, "crop")
    batch_size = check_positive_int(batch_size, "batch_size")

    def sample(g: torch.Generator):
        idx = torch.randint(0, f.shape[0], (batch_size,), generator=g)
        x, pm, y = random_crops([f, p, e], idx, crop, g)
        return (x, pm), y

    return sample


def fit_pixel_classifier(
    net: torch.nn.Module,
    sampler: Sampler,
    *,
    n_steps: int,
    lr: float = 1e-3,
    pos_weight: float = 1.0,
    seed: int = 0,
    desc: str = "training",
    progress: bool = True,
) -> History:
    """Adam on the binary cross-entropy of ``net(*inputs)`` (logits) against the targets.

    ``sampler(generator)`` returns ``(inputs, target)``, drawn from the loop's generator so
    that a run is reproducible; ``pos_weight`` weighs the positive pixels.
    """
    n_steps = check_positive_int(n_steps, "n_steps")
    lr = check_positive(lr, "lr")
    pos_weight = check_positive(pos_weight, "pos_weight")
    device = next(net.parameters()).device
    pw = torch.tensor([pos_weight], device=device)
    cpu = torch.Generator().manual_seed(int(seed))  # data on the CPU, the same on every device

    def loss_fn(step: int, _g: torch.Generator) -> torch.Tensor:
        inputs, target = sampler(cpu)
        logits = net(*(x.to(device) for x in inputs))
        return F.binary_cross_entropy_with_logits(logits, target.to(device), pos_weight=pw)

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    return fit(
        loss_fn,
        module=net,
        optimizers=opt,
        n_steps=n_steps,
        seed=seed,
        desc=desc,
        progress=progress,
    )


@torch.no_grad()
def predict_maps(net: torch.nn.Module, *inputs, batch_size: int = 16) -> np.ndarray:
    """``sigmoid(net(*inputs))`` for (N, H, W) arrays, in batches; returns (N, H, W) float32."""
    batch_size = check_positive_int(batch_size, "batch_size")
    ts = [_stack(x, f"inputs[{i}]") for i, x in enumerate(inputs)]
    if any(t.shape != ts[0].shape for t in ts):
        raise ValueError("every input must have the same (N, H, W)")
    device = next(net.parameters()).device
    was = net.training
    net.eval()
    out = []
    for i in range(0, ts[0].shape[0], batch_size):
        xb = [t[i : i + batch_size, None].to(device) for t in ts]
        out.append(torch.sigmoid(net(*xb))[:, 0].float().cpu())
    net.train(was)
    return torch.cat(out).numpy()


def segment_and_score(
    detector: torch.nn.Module, images, labels, *, batch_size: int = 16
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the membrane detector on (N, H, W) images, segment each map
    (:func:`~neuroinverse.segmentation.segment_membrane_map`) and score it against the labels.

    Returns ``(vi, arand, segmentations)``: (N,) VI in bits, (N,) adapted Rand error and the
    (N, H, W) label images.
    """
    probs = predict_maps(detector, images, batch_size=batch_size)
    gt = np.asarray(labels)
    if gt.shape != probs.shape:
        raise ValueError(f"labels must have the images' shape {probs.shape}; got {gt.shape}")
    segs = np.stack([segment_membrane_map(p) for p in probs])
    vi = np.array([segmentation_vi(g, s) for g, s in zip(gt, segs, strict=True)])
    arand = np.array([segmentation_arand(g, s) for g, s in zip(gt, segs, strict=True)])
    return vi, arand, segs
