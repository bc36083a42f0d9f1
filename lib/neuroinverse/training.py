"""The one training loop every chapter uses.

:func:`fit` runs ``n_steps`` optimisation steps of a user ``loss_fn(step, generator)``, with
a tqdm progress bar, optional gradient-norm clipping of a chosen set of parameters, learning
rate schedulers, periodic evaluation, and checkpoints. A run interrupted and resumed from its
checkpoint ends with exactly the same parameters as one that was not interrupted: the
checkpoint holds the modules, optimisers, schedulers, the loop's random generator, the step
and the history.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import torch
from tqdm import tqdm  # text bar: no ipywidgets needed, renders in the built book

__all__ = ["History", "fit"]

LossFn = Callable[[int, torch.Generator], "torch.Tensor | tuple[torch.Tensor, Mapping[str, float]]"]


@dataclass
class History:
    """Per-step training records and periodic evaluations.

    ``steps``/``loss``/``metrics`` hold one entry per step (``metrics`` maps a name to a list),
    ``eval_steps``/``evals`` one entry per evaluation.
    """

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    eval_steps: list[int] = field(default_factory=list)
    evals: dict[str, list[float]] = field(default_factory=dict)

    def record(self, step: int, loss: float, metrics: Mapping[str, float]) -> None:
        self.steps.append(step)
        self.loss.append(loss)
        for k, v in metrics.items():
            self.metrics.setdefault(k, []).append(float(v))

    def record_eval(self, step: int, values: Mapping[str, float]) -> None:
        self.eval_steps.append(step)
        for k, v in values.items():
            self.evals.setdefault(k, []).append(float(v))

    def state_dict(self) -> dict:
        return dict(
            steps=self.steps, loss=self.loss, metrics=self.metrics, eval_steps=self.eval_steps, evals=self.evals
        )

    @classmethod
    def from_state_dict(cls, d: Mapping) -> History:
        return cls(**{k: d[k] for k in ("steps", "loss", "metrics", "eval_steps", "evals")})


def _as_list(x) -> list:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def fit(
    loss_fn: LossFn,
    *,
    module: torch.nn.Module,
    optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
    n_steps: int,
    schedulers: Iterable | None = None,
    clip_params: Iterable[torch.nn.Parameter] | None = None,
    clip_norm: float | None = None,
    seed: int = 0,
    eval_fn: Callable[[], Mapping[str, float]] | None = None,
    eval_every: int = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Minimise ``loss_fn`` for ``n_steps`` steps.

    Args:
        loss_fn: called as ``loss_fn(step, generator)``; returns a scalar loss tensor, or
            ``(loss, metrics)`` with a dict of floats to record. Draw all randomness from
            ``generator`` so that resumed runs are exact.
        module: holds every trained parameter (use ``nn.ModuleDict`` for several); saved in
            checkpoints.
        optimizers: one optimiser or several (e.g. Adam for a network, RMSprop for a
            generative model); each is stepped every step.
        n_steps: total number of steps (a resumed run continues up to this number).
        schedulers: learning-rate schedulers stepped after the optimisers every step.
        clip_params / clip_norm: clip the global gradient norm of ``clip_params`` (default:
            all of ``module``'s parameters) to ``clip_norm``; ``None`` disables clipping.
        seed: seed of the loop's ``torch.Generator`` (on the module's device).
        eval_fn / eval_every: call ``eval_fn()`` (in ``no_grad``) every ``eval_every`` steps
            and at the end; its dict is stored in ``History.evals``.
        checkpoint / checkpoint_every: file to write every ``checkpoint_every`` steps and at
            the end.
        resume: continue from ``checkpoint`` if the file exists.
        progress: show a tqdm progress bar.

    Returns:
        The :class:`History` of the whole run (including steps before a resume).
    """
    if not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer; got {n_steps!r}")
    if clip_norm is not None and not (clip_norm > 0):
        raise ValueError(f"clip_norm must be positive or None; got {clip_norm!r}")
    if eval_every < 0 or checkpoint_every < 0:
        raise ValueError("eval_every and checkpoint_every must be >= 0")
    if (checkpoint_every or resume) and checkpoint is None:
        raise ValueError("checkpoint path is required with checkpoint_every or resume")
    optimizers = _as_list(optimizers)
    schedulers = _as_list(schedulers)
    if not optimizers:
        raise ValueError("optimizers must hold at least one optimiser")
    params = list(clip_params) if clip_params is not None else list(module.parameters())
    try:
        device = next(module.parameters()).device
    except StopIteration:
        raise ValueError("module has no parameters to train") from None
    gen = torch.Generator(device=device).manual_seed(int(seed))
    history = History()
    start = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None

    def _save(step: int) -> None:
        assert ckpt is not None
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        state = dict(
            step=step,
            module=module.state_dict(),
            optimizers=[o.state_dict() for o in optimizers],
            schedulers=[s.state_dict() for s in schedulers],
            generator=gen.get_state(),
            history=history.state_dict(),
        )
        tmp = ckpt.with_suffix(ckpt.suffix + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, ckpt)  # atomic: an interrupted save never leaves a broken checkpoint

    if resume and ckpt is not None and ckpt.exists():
        # weights_only: the file holds tensors, numbers, strings and lists only, so nothing is
        # unpickled; a checkpoint from elsewhere cannot run code on this machine
        state = torch.load(ckpt, map_location=device, weights_only=True)
        module.load_state_dict(state["module"])
        for o, s in zip(optimizers, state["optimizers"], strict=True):
            o.load_state_dict(s)
        for sch, s in zip(schedulers, state["schedulers"], strict=True):
            sch.load_state_dict(s)
        gen.set_state(state["generator"].cpu() if device.type == "cpu" else state["generator"])
        history = History.from_state_dict(state["history"])
        start = int(state["step"])

    bar = tqdm(range(start, n_steps), desc=desc, disable=not progress, initial=start, total=n_steps, mininterval=1.0)
    for step in bar:
        module.train()
        for o in optimizers:
            o.zero_grad(set_to_none=True)
        out = loss_fn(step, gen)
        loss, metrics = out if isinstance(out, tuple) else (out, {})
        if loss.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar loss; got shape {tuple(loss.shape)}")
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}")
        loss.backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        for o in optimizers:
            o.step()
        for s in schedulers:
            s.step()
        lv = float(loss.detach())
        history.record(step, lv, metrics)
        done = step + 1
        if eval_fn is not None and eval_every and (done % eval_every == 0 or done == n_steps):
            module.eval()
            with torch.no_grad():
                history.record_eval(done, eval_fn())
        if ckpt is not None and checkpoint_every and (done % checkpoint_every == 0 or done == n_steps):
            _save(done)
        if progress and (done % 25 == 0 or done == n_steps):
            bar.set_postfix(loss=f"{lv:.4g}" if math.isfinite(lv) else "nan")
    bar.close()
    return history
