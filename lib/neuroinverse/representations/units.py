"""Single units: class selectivity, and what silencing them does (Morcos et al., ICLR 2018).

* :func:`class_selectivity`: the class selectivity index of every unit (Morcos 2018),
  ``SI = (mu_max - mu_rest) / (mu_max + mu_rest)``, with dead units flagged.
* :func:`ablation_order`: the order in which units are silenced: most selective first, least
  selective first, or random; dead units always come last (silencing them changes nothing).
* :func:`single_unit_ablation`: accuracy and loss change when each unit alone is silenced.
* :func:`cumulative_ablation`: accuracy as more and more units of a layer are silenced in a
  given order (Morcos 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_choice, check_labels, check_positive_int
from .dimension import as_points
from .networks import LayeredNet, evaluate

__all__ = [
    "Selectivity",
    "class_selectivity",
    "ablation_order",
    "single_unit_ablation",
    "cumulative_ablation",
    "SingleUnitAblation",
]


@dataclass(frozen=True)
class Selectivity:
    """Class selectivity of every unit of a layer.

    Attributes:
        index: ``(units,)`` selectivity index in [0, 1] for non-negative activity; 0 for dead units.
        dead: ``(units,)`` True where the unit never responds (``mu_max = 0``); exclude these
            from correlations.
        preferred: ``(units,)`` the class of largest mean response.
        class_means: ``(classes, units)`` mean response per class.
    """

    index: np.ndarray
    dead: np.ndarray
    preferred: np.ndarray
    class_means: np.ndarray


def class_selectivity(
    activations, labels, *, n_classes: int | None = None, eps: float = 1e-12
) -> Selectivity:
    """Class selectivity index per unit (Morcos et al. 2018).

    For unit ``j`` with class-conditional mean responses ``mu_c``: ``mu_max = max_c mu_c``,
    ``mu_rest`` the mean of the other classes' ``mu_c``, and
    ``SI_j = (mu_max - mu_rest) / (mu_max + mu_rest + eps)``: 0 for a unit that responds equally
    to every class, 1 for one that responds to a single class only (non-negative activity,
    e.g. after a ReLU). A unit with ``mu_max = 0`` is dead: its index is 0 and it is flagged.

    Args:
        activations: ``(n, units)`` responses to ``n`` stimuli (after the ReLU).
        labels: int ``(n,)`` class of each stimulus, every class present.
        n_classes: number of classes (default: ``max(labels) + 1``).
        eps: added to the denominator.
    """
    a = as_points(activations, "activations", minimum=2)
    y = check_labels(labels, "labels", ndims=(1,))
    if len(y) != len(a):
        raise ValueError(
            "labels must hold one class per row of activations; "
            f"got {len(y)} labels for {len(a)} rows"
        )
    k = check_positive_int(
        n_classes if n_classes is not None else int(y.max()) + 1, "n_classes", minimum=2
    )
    counts = np.bincount(y, minlength=k)
    if len(counts) > k or (counts == 0).any():
        raise ValueError(
            f"labels must hold every class 0..{k - 1} and no other; counts {counts.tolist()}"
        )
    means = np.stack([a[y == c].mean(0) for c in range(k)])
    mu_max = means.max(0)
    mu_rest = (means.sum(0) - mu_max) / (k - 1)
    dead = mu_max <= 0
    index = np.where(dead, 0.0, (mu_max - mu_rest) / (mu_max + mu_rest + eps))
    return Selectivity(index=index, dead=dead, preferred=means.argmax(0), class_means=means)


def ablation_order(selectivity: Selectivity, order: str, *, seed: int = 0) -> np.ndarray:
    """Units in the order they are silenced; dead units last, in every order.

    Args:
        selectivity: the layer's :class:`Selectivity`.
        order: ``"most"`` (most selective first), ``"least"`` (least selective first) or
            ``"random"`` (a random permutation of the live units from ``seed``).
        seed: seed of NumPy's generator for ``"random"``.

    Returns:
        int ``(units,)``: a permutation of the unit indices. Dead units (index 0 by
        construction) would otherwise be "least selective" and silenced first at no cost
        (Morcos 2018 do not say how they were treated); placing them last in every order
        keeps the three curves comparable.
    """
    check_choice(order, "order", ("most", "least", "random"))
    alive = np.flatnonzero(~selectivity.dead)
    si = selectivity.index[alive]
    if order == "most":
        first = alive[np.argsort(-si, kind="stable")]
    elif order == "least":
        first = alive[np.argsort(si, kind="stable")]
    else:
        first = np.random.default_rng(check_positive_int(seed, "seed", minimum=0)).permutation(
            alive
        )
    return np.concatenate([first, np.flatnonzero(selectivity.dead)]).astype(np.int64)


@dataclass(frozen=True)
class SingleUnitAblation:
    """The effect of silencing each unit of a layer alone (ablated minus intact).

    Attributes:
        accuracy: intact accuracy; loss: intact mean cross-entropy (nats).
        delta_accuracy: ``(units,)`` accuracy change (negative: the unit helped).
        delta_loss: ``(units,)`` loss change in nats (positive: the unit helped).
    """

    accuracy: float
    loss: float
    delta_accuracy: np.ndarray
    delta_loss: np.ndarray


def _mask(n: int, off, device) -> torch.Tensor:
    m = torch.ones(n, device=device)
    m[torch.as_tensor(np.asarray(off, dtype=np.int64), device=device)] = 0.0
    return m


def _layer(net: LayeredNet, layer: int) -> tuple[int, int]:
    check_positive_int(layer, "layer", minimum=0)
    if layer >= net.n_hidden:
        raise ValueError(
            f"layer must be a hidden-layer index in 0..{net.n_hidden - 1}; got {layer}"
        )
    return layer, net.n_units(layer)


def single_unit_ablation(net: LayeredNet, layer: int, x, y) -> SingleUnitAblation:
    """Silence each unit of hidden layer ``layer`` (0-based) alone; score on ``(x, y)``.

    Silencing sets the unit's output (a whole feature map for a convolution) to 0 at
    inference (Morcos et al. 2018). Evaluate on held-out data.
    """
    layer, n = _layer(net, layer)
    dev = next(net.parameters()).device
    acc0, loss0 = evaluate(net, x, y)
    scores = np.array([evaluate(net, x, y, {layer: _mask(n, [j], dev)}) for j in range(n)])
    return SingleUnitAblation(acc0, loss0, scores[:, 0] - acc0, scores[:, 1] - loss0)


def cumulative_ablation(net: LayeredNet, layer: int, x, y, order, counts) -> np.ndarray:
    """Accuracy on ``(x, y)`` with the first ``k`` units of ``order`` silenced, for each ``k``.

    Args:
        net: the network; layer: hidden-layer index (0-based).
        order: a permutation of the layer's units (:func:`ablation_order`).
        counts: numbers of units silenced, each in ``0..units``.

    Returns:
        float ``(len(counts),)`` accuracies (divide by the ``k = 0`` value to normalise).
    """
    layer, n = _layer(net, layer)
    order = np.asarray(order, dtype=np.int64)
    if sorted(order.tolist()) != list(range(n)):
        raise ValueError(f"order must be a permutation of the {n} units of layer {layer}")
    ks = [check_positive_int(k, "counts", minimum=0) for k in counts]
    if any(k > n for k in ks):
        raise ValueError(f"counts must lie in 0..{n}; got {ks}")
    dev = next(net.parameters()).device
    return np.array([evaluate(net, x, y, {layer: _mask(n, order[:k], dev)})[0] for k in ks])
