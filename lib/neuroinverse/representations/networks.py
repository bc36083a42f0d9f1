"""Small digit classifiers whose every layer can be recorded and whose units can be silenced.

The networks analysed in the Representations part of the book (Ansuini et al. 2019; Morcos
et al. 2018; Barrett, Morcos & Macke 2019): trained from scratch on the 8 x 8 digits.

* :class:`LayeredNet`: a stack of hidden blocks (each ending in a ReLU) and a linear read-out;
  ``masks`` multiply a hidden layer's units (a unit of a convolutional block is a feature
  map) to ablate them.
* :func:`mlp` and :func:`convnet`: the two architectures, initialised from a seed.
* :func:`train_classifier`: cross-entropy with Adam through the book's training loop
  (:func:`neuroinverse.training.fit`), minibatches reshuffled every epoch.
* :func:`evaluate`, :func:`layer_activations`, :func:`unit_activations`: accuracy and loss, the
  flattened representation of every layer, and one number per unit of every hidden layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_labels, check_positive, check_positive_int, check_rows
from ..training import History, fit

__all__ = [
    "LayeredNet",
    "mlp",
    "convnet",
    "train_classifier",
    "evaluate",
    "layer_activations",
    "unit_activations",
    "Masks",
]

#: Unit masks by hidden-layer index (0-based): a float tensor of 0/1 per unit of that layer.
Masks = Mapping[int, torch.Tensor]


class LayeredNet(nn.Module):
    """A classifier of flat ``(n, 64)`` digits whose hidden layers are recorded one by one.

    Args:
        blocks: the hidden blocks, applied in order; each output is one recorded layer.
        head: the read-out from the last hidden layer to the logits.
        image_side: side of the square image the blocks see (``None``: the flat pixels);
            the 8 x 8 digits are resized bilinearly to it.
    """

    def __init__(
        self, blocks: Sequence[nn.Module], head: nn.Module, *, image_side: int | None = None
    ):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.image_side = image_side

    @property
    def n_hidden(self) -> int:
        return len(self.blocks)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_side is None:
            return x
        img = x.reshape(len(x), 1, 8, 8)
        return F.interpolate(img, size=(self.image_side,) * 2, mode="bilinear", align_corners=False)

    def hidden(self, x: torch.Tensor, masks: Masks | None = None) -> list[torch.Tensor]:
        """The output of every hidden block (unflattened), with ``masks`` applied."""
        masks = masks or {}
        bad = [k for k in masks if not 0 <= k < self.n_hidden]
        if bad:
            raise ValueError(
                f"masks name hidden layers {bad}; this network has layers 0..{self.n_hidden - 1}"
            )
        out, h = [], self._input(x)
        for k, block in enumerate(self.blocks):
            h = block(h)
            if k in masks:
                m = masks[k].to(h)
                h = h * m.reshape(1, -1, *([1] * (h.dim() - 2)))
            out.append(h)
        return out

    def forward(self, x: torch.Tensor, masks: Masks | None = None) -> torch.Tensor:
        """Logits ``(n, 10)`` of flat digits ``x`` ``(n, 64)``."""
        return self.head(self.hidden(x, masks)[-1])

    def n_units(self, layer: int) -> int:
        """Units of hidden layer ``layer``: neurons of a dense block, feature maps of a
        convolution."""
        with torch.no_grad():
            h = self.hidden(torch.zeros(1, 64, device=next(self.parameters()).device))[layer]
        return int(h.shape[1])


def _seeded(seed: int, build) -> LayeredNet:
    check_positive_int(seed, "seed", minimum=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def mlp(
    widths: Sequence[int] = (128, 128, 128, 128), *, seed: int = 0, n_in: int = 64, n_out: int = 10
) -> LayeredNet:
    """A ReLU multilayer perceptron ``n_in -> widths... -> n_out`` with PyTorch's default init
    from ``seed``."""
    sizes = [check_positive_int(n_in, "n_in"), *(check_positive_int(w, "widths") for w in widths)]
    if len(sizes) < 2:
        raise ValueError("widths must hold at least one hidden width")

    def build():
        blocks = [
            nn.Sequential(nn.Linear(a, b), nn.ReLU())
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        return LayeredNet(blocks, nn.Linear(sizes[-1], check_positive_int(n_out, "n_out")))

    return _seeded(seed, build)


def convnet(
    channels: Sequence[int] = (16, 32, 32, 64),
    fc: int = 128,
    *,
    seed: int = 0,
    image_side: int = 16,
    n_out: int = 10,
) -> LayeredNet:
    """A small CNN: 3 x 3 convolutions (ReLU; 2 x 2 max-pooling after every second), one dense
    layer.

    The digits are resized to ``image_side`` x ``image_side``; the hidden layers are the
    convolutions and the dense layer (its units: feature maps, then neurons).
    """
    chans = [1, *(check_positive_int(c, "channels") for c in channels)]
    side = check_positive_int(image_side, "image_side", minimum=2 ** (len(channels) // 2))
    out_side = side // 2 ** (len(channels) // 2)

    def build():
        blocks = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:], strict=True)):
            layers = [nn.Conv2d(a, b, 3, padding=1), nn.ReLU()]
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*layers))
        blocks.append(
            nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * out_side**2, fc), nn.ReLU())
        )
        return LayeredNet(
            blocks, nn.Linear(fc, check_positive_int(n_out, "n_out")), image_side=side
        )

    return _seeded(seed, build)


def _data(net: LayeredNet, x, y=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    dev = next(net.parameters()).device
    xt = check_rows(x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x)), "x", 64)
    if not torch.isfinite(xt).all():
        raise ValueError("x contains NaN or infinite values")
    xt = xt.float().to(dev)
    if y is None:
        return xt, None
    yt = torch.as_tensor(check_labels(y, "y", ndims=(1,)), device=dev)
    if len(yt) != len(xt):
        raise ValueError(
            f"y must hold one label per row of x; got {len(yt)} labels for {len(xt)} rows"
        )
    return xt, yt


def train_classifier(
    net: LayeredNet,
    x,
    y,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Train ``net`` in place: cross-entropy, Adam, ``epochs`` passes over reshuffled minibatches.

    Every epoch visits each image once in an order drawn from the loop's generator (seeded
    with ``seed``); the last minibatch of an epoch may be smaller. Training runs through the
    book's one loop, :func:`neuroinverse.training.fit`, for ``epochs * ceil(n / batch_size)``
    steps.

    Args:
        net: the network (trained in place, on its own device).
        x: float ``(n, 64)`` images; y: int ``(n,)`` labels (possibly corrupted).
        epochs, batch_size, lr: passes over the data, minibatch size, Adam's learning rate.
        seed: seed of the minibatch order.

    Returns:
        The loop's :class:`~neuroinverse.training.History`.
    """
    xt, yt = _data(net, x, y)
    epochs = check_positive_int(epochs, "epochs", minimum=0)
    batch_size = check_positive_int(batch_size, "batch_size")
    per_epoch = math.ceil(len(xt) / batch_size)
    order = torch.empty(0, dtype=torch.long)

    def loss_fn(step: int, gen: torch.Generator) -> torch.Tensor:
        nonlocal order
        i = step % per_epoch
        if i == 0:
            order = torch.randperm(len(xt), generator=gen, device=gen.device)
        idx = order[i * batch_size : (i + 1) * batch_size]
        return F.cross_entropy(net(xt[idx]), yt[idx])

    opt = torch.optim.Adam(net.parameters(), lr=check_positive(lr, "lr"))
    history = fit(
        loss_fn,
        module=net,
        optimizers=opt,
        n_steps=epochs * per_epoch,
        seed=seed,
        progress=progress,
        desc=desc,
    )
    net.eval()
    return history


@torch.no_grad()
def evaluate(net: LayeredNet, x, y, masks: Masks | None = None) -> tuple[float, float]:
    """Accuracy and mean cross-entropy (nats) of ``net`` on ``(x, y)``, with ``masks`` applied."""
    xt, yt = _data(net, x, y)
    net.eval()
    logits = net(xt, masks)
    return float((logits.argmax(1) == yt).float().mean()), float(F.cross_entropy(logits, yt))


@torch.no_grad()
def layer_activations(net: LayeredNet, x, masks: Masks | None = None) -> list[np.ndarray]:
    """Every layer's representation of ``x``, flattened: ``[input, hidden 1, ..., logits]``.

    Returns:
        float64 arrays ``(n, features)``; the input is the flat 64-pixel image.
    """
    xt, _ = _data(net, x)
    net.eval()
    hidden = net.hidden(xt, masks)
    outs = [xt, *hidden, net.head(hidden[-1])]
    return [h.flatten(1).double().cpu().numpy() for h in outs]


@torch.no_grad()
def unit_activations(net: LayeredNet, x) -> list[np.ndarray]:
    """One value per unit of each hidden layer: the neuron's output, or a feature map's mean.

    Returns:
        float64 arrays ``(n, units)``, one per hidden layer (Morcos et al. 2018 average a
        feature map over space).
    """
    xt, _ = _data(net, x)
    net.eval()
    return [
        (h.mean(dim=(2, 3)) if h.dim() == 4 else h).double().cpu().numpy() for h in net.hidden(xt)
    ]
