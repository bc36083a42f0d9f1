"""Training and prediction of affinity networks with a per-edge loss, MALIS, or both.

The training objective of Turaga et al., "Maximin affinity learning of image segmentation",
NIPS 2009 (per-edge warm-up, then MALIS fine-tuning), and of Funke et al., TPAMI 41(7), 2019,
Sec. 2.2 (constrained MALIS added to a per-edge loss). The losses themselves are in
:mod:`neuroinverse.segmentation.malis`; the loop is :func:`neuroinverse.training.fit`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..training import fit
from .malis_loss import MALISLoss, PerEdgeBCE

#: ``loss(affinities, labels, gt_affinities, mask) -> scalar``, e.g. :class:`PerEdgeBCE` or
#: :class:`MALISLoss`
AffinityLoss = Callable[[torch.Tensor, object, torch.Tensor, object], torch.Tensor]

__all__ = ["fit_affinity_net", "malis_gradient_scale", "branch_training", "predict_affinities"]


def fit_affinity_net(
    net: torch.nn.Module,
    sample_batch,
    *,
    loss: AffinityLoss,
    n_steps: int,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    betas: tuple[float, float] = (0.9, 0.999),
    desc: str | None = None,
    progress: bool = True,
):
    """Train an affinity network with one affinity loss (Adam, through
    :func:`~neuroinverse.training.fit`).

    Args:
        net: maps ``(B, 1, *S_in)`` raw to ``(B, C, *S)`` affinities in [0, 1] (sigmoid head).
        sample_batch: ``sample_batch(step)`` → ``(raw, labels, gt_affinities)`` or
            ``(raw, labels, gt_affinities, edge_mask)``: a float tensor ``(B, 1, *S_in)``,
            integer labels ``(B, *S)`` and a tensor ``(B, C, *S)`` matching the network's
            output (crop them for valid convolutions); the optional mask selects the edges of
            the per-edge loss.
        loss: called as ``loss(affinities, labels, gt_affinities, mask)``: the per-edge
            baseline :class:`~neuroinverse.segmentation.malis_loss.PerEdgeBCE` or
            :class:`~neuroinverse.segmentation.malis_loss.MALISLoss` (plain or constrained, alone
            or mixed with the BCE); any callable of that form works.
        n_steps: optimisation steps (with a tqdm bar).
        lr: Adam learning rate.
        seed: seed of the training loop's generator.
        device: where the network runs; MALIS counts always run on the CPU.
        betas: Adam's ``betas``.
        desc: progress-bar label (default: the loss's ``label``).

    Returns:
        The :class:`neuroinverse.training.History`; ``net`` is trained in place.
    """
    if not callable(loss):
        raise ValueError(
            f"loss must be an affinity loss such as PerEdgeBCE() or MALISLoss(); got {loss!r}"
        )
    net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=betas)

    def loss_fn(step, _generator):
        raw, labels, gt, mask = _unpack_batch(sample_batch(step))
        pred = net(raw.to(device))
        return loss(pred, labels, torch.as_tensor(gt, dtype=pred.dtype, device=pred.device), mask)

    return fit(
        loss_fn,
        module=net,
        optimizers=opt,
        n_steps=n_steps,
        seed=seed,
        progress=progress,
        desc=desc or getattr(loss, "label", "training"),
    )


def _unpack_batch(batch):
    if len(batch) == 3:
        return (*batch, None)
    if len(batch) == 4:
        return tuple(batch)
    raise ValueError(
        "sample_batch must return (raw, labels, gt) or (raw, labels, gt, mask); "
        f"got {len(batch)} items"
    )


def malis_gradient_scale(
    net: torch.nn.Module,
    batch,
    *,
    malis: MALISLoss,
    bce: PerEdgeBCE | None = None,
    device: str | torch.device = "cpu",
) -> float:
    """The factor that gives the MALIS term the gradient norm of the per-edge BCE on ``batch``.

    ``‖∇_θ BCE‖ / ‖∇_θ MALIS‖`` over all parameters of ``net`` at its current weights (e.g.
    the warm-up checkpoint at the start of a branch); ``net`` is not changed (its gradients
    are cleared). Pass the result as the ``weight`` of the branch's
    :class:`~neuroinverse.segmentation.malis_loss.MALISLoss`.

    Args:
        net: the network (sigmoid affinities).
        batch: one ``sample_batch(step)`` output (see :func:`fit_affinity_net`).
        malis: the MALIS options used in training (only its MALIS term is measured).
        bce: the per-edge loss used in training (default
            :class:`~neuroinverse.segmentation.malis_loss.PerEdgeBCE`).
        device: where the network runs.

    Returns:
        The positive scale; ``inf`` is refused (a zero MALIS gradient raises ``ValueError``).
    """
    bce = PerEdgeBCE() if bce is None else bce
    raw, labels, gt, mask = _unpack_batch(batch)
    net.to(device)
    params = [p for p in net.parameters() if p.requires_grad]

    def grad_norm(make):
        net.zero_grad(set_to_none=True)
        pred = net(raw.to(device))
        make(pred).backward()
        norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params if p.grad is not None))
        net.zero_grad(set_to_none=True)
        return float(norm)

    g_bce = grad_norm(
        lambda pred: bce(
            pred, labels, torch.as_tensor(gt, dtype=pred.dtype, device=pred.device), mask
        )
    )
    g_malis = grad_norm(lambda pred: malis.malis_term(pred, labels))
    if not g_malis > 0:
        raise ValueError("the MALIS gradient is zero on this batch; no scale matches the BCE's")
    return g_bce / g_malis


def branch_training(
    warm_net: torch.nn.Module,
    sample_batch,
    *,
    n_steps: int,
    seed: int,
    branches: dict[str, dict],
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[str, torch.nn.Module]:
    """Compute-matched fine-tuning: every branch starts from a copy of the same checkpoint.

    Each branch gets a deep copy of ``warm_net``, a fresh Adam, the same batches
    (``sample_batch(step)``) and ``n_steps`` steps of :func:`fit_affinity_net` with its own
    keyword arguments, e.g. ``{"BCE": dict(loss=PerEdgeBCE()), "MALIS": dict(loss=MALISLoss())}``.

    Returns:
        ``{name: trained copy}``.
    """
    import copy

    out = {}
    for name, kwargs in branches.items():
        net = copy.deepcopy(warm_net)
        torch.manual_seed(seed)
        fit_affinity_net(
            net,
            sample_batch,
            n_steps=n_steps,
            seed=seed,
            device=device,
            progress=progress,
            desc=f"{name} (seed {seed})",
            **kwargs,
        )
        out[name] = net
    return out


def predict_affinities(
    net: torch.nn.Module, raw, *, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Affinities of ``raw`` ``(B, *S)`` (or ``(B, 1, *S)``) as float64 ``(B, C, *S)``, no grad."""
    x = torch.as_tensor(
        np.asarray(raw) if not isinstance(raw, torch.Tensor) else raw, dtype=torch.float32
    )
    if x.dim() == net.dims + 1:
        x = x[:, None]
    net.eval()
    with torch.no_grad():
        out = net(x.to(device)).double().cpu().numpy()
    return out
