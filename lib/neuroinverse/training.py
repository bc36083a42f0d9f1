"""The one training loop every chapter uses.

:func:`fit` runs up to ``n_steps`` optimisation steps of a user ``loss_fn(step, generator)``,
with a tqdm progress bar, gradient-norm clipping (:class:`Clipping`: one norm over a set of
parameters, or one per group), learning-rate schedulers, periodic evaluation, early stopping
on a validation loss with the best state restored (:class:`EarlyStopping`), and checkpoints.
A run interrupted and resumed from its checkpoint ends with exactly the same parameters as
one that was not interrupted: the checkpoint holds the modules, optimisers, schedulers, the
loop's random generator, the step and the history.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import torch
from tqdm import tqdm  # text bar: no ipywidgets needed, renders in the built book

__all__ = ["History", "Clipping", "EarlyStopping", "fit"]

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
    best_val: float = math.inf
    best_step: int = 0
    stopped_early: bool = False

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
            steps=self.steps,
            loss=self.loss,
            metrics=self.metrics,
            eval_steps=self.eval_steps,
            evals=self.evals,
        )

    @classmethod
    def from_state_dict(cls, d: Mapping) -> History:
        return cls(**{k: d[k] for k in ("steps", "loss", "metrics", "eval_steps", "evals")})


@dataclass(frozen=True)
class Clipping:
    """Gradient-norm clipping for :func:`fit`, checked once when made.

    Args:
        max_norm: the largest gradient norm allowed (> 0).
        params: the parameters whose gradients are clipped together (default: all of the
            module's).
        groups: several parameter groups, each clipped to ``max_norm`` on its own (e.g. one
            group per ensemble member); exclusive with ``params``.
        foreach: passed to :func:`torch.nn.utils.clip_grad_norm_`.
        stacked: the parameters hold ``stacked`` models stacked along their first axis (an
            ensemble trained in one batched pass); the norm is taken over each model's slice
            in turn, in the models' order, which is exactly the norm that
            :func:`torch.nn.utils.clip_grad_norm_` takes over the unstacked models' parameters
            (the same numbers in the same order), so a batched ensemble clips bit for bit as
            its members trained together would. One norm over all models (not one each).
    """

    max_norm: float
    params: tuple[torch.nn.Parameter, ...] | None = None
    groups: tuple[tuple[torch.nn.Parameter, ...], ...] | None = None
    foreach: bool | None = None
    stacked: int | None = None

    def __post_init__(self) -> None:
        if not (
            isinstance(self.max_norm, (int, float))
            and math.isfinite(self.max_norm)
            and self.max_norm > 0
        ):
            raise ValueError(f"max_norm must be a positive number; got {self.max_norm!r}")
        if self.params is not None and self.groups is not None:
            raise ValueError("give params or groups, not both")
        if self.params is not None:
            object.__setattr__(self, "params", tuple(self.params))
        if self.groups is not None:
            groups = tuple(tuple(g) for g in self.groups)
            if not groups or any(not g for g in groups):
                raise ValueError("groups must hold at least one non-empty group of parameters")
            object.__setattr__(self, "groups", groups)
        if self.stacked is not None and (
            not isinstance(self.stacked, int) or isinstance(self.stacked, bool) or self.stacked < 1
        ):
            raise ValueError(f"stacked must be an integer >= 1 or None; got {self.stacked!r}")

    def clip(self, group: Sequence[torch.nn.Parameter]) -> None:
        """Clip the gradients of one group of parameters in place."""
        if self.stacked is None:
            torch.nn.utils.clip_grad_norm_(group, self.max_norm, foreach=self.foreach)
            return
        grads = [p.grad for p in group if p.grad is not None]
        if any(g.shape[0] != self.stacked for g in grads):
            raise ValueError(
                f"every stacked parameter must have {self.stacked} slices along its first axis"
            )
        norms = torch._foreach_norm([g[m] for m in range(self.stacked) for g in grads], 2.0)
        total = torch.linalg.vector_norm(torch.stack(norms), 2.0)
        torch._foreach_mul_(grads, torch.clamp(self.max_norm / (total + 1e-6), max=1.0))

    def groups_of(self, module: torch.nn.Module) -> tuple[tuple[torch.nn.Parameter, ...], ...]:
        if self.groups is not None:
            return self.groups
        return (self.params if self.params is not None else tuple(module.parameters()),)


@dataclass(frozen=True)
class EarlyStopping:
    """Early stopping on a validation loss for :func:`fit`, checked once when made.

    ``loss()`` is evaluated (module in eval mode, no gradients) before the first step, every
    ``every`` steps and after the last step; training stops after ``patience`` evaluations
    in a row without a new best, and the module's best state is restored at the end.

    Args:
        loss: the validation loss, a callable returning a float; draw any randomness it needs
            from its own fixed-seed generator so that evaluations are comparable.
        every: steps between evaluations (≥ 1).
        patience: evaluations without improvement before stopping (≥ 1).
    """

    loss: Callable[[], float]
    every: int
    patience: int

    def __post_init__(self) -> None:
        if not callable(self.loss):
            raise ValueError("loss must be a callable returning the validation loss")
        for name in ("every", "patience"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {v!r}")


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


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
    clipping: Clipping | None = None,
    early_stopping: EarlyStopping | None = None,
    seed: int = 0,
    eval_fn: Callable[[], Mapping[str, float]] | None = None,
    eval_every: int = 0,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    progress: bool = True,
    leave: bool = True,
    desc: str = "training",
) -> History:
    """Minimise ``loss_fn`` for ``n_steps`` steps (fewer when early stopping ends the run).

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
        clipping: gradient-norm clipping (:class:`Clipping`); ``None`` disables it.
        early_stopping: stop on a validation loss and restore the best state
            (:class:`EarlyStopping`); the outcome is in ``History.best_val``,
            ``History.best_step`` and ``History.stopped_early``. Not combined with
            checkpoints.
        seed: seed of the loop's ``torch.Generator`` (on the module's device).
        eval_fn / eval_every: call ``eval_fn()`` (in ``no_grad``) every ``eval_every`` steps
            and at the end; its dict is stored in ``History.evals``.
        checkpoint / checkpoint_every: file to write every ``checkpoint_every`` steps and at
            the end.
        resume: continue from ``checkpoint`` if the file exists.
        progress: show a tqdm progress bar; ``leave=False`` clears it when done.

    Returns:
        The :class:`History` of the whole run (including steps before a resume).
    """
    if not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer; got {n_steps!r}")
    if clipping is not None and not isinstance(clipping, Clipping):
        raise ValueError(f"clipping must be a Clipping or None; got {type(clipping).__name__}")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise ValueError(
            f"early_stopping must be an EarlyStopping or None; got {type(early_stopping).__name__}"
        )
    if early_stopping is not None and (checkpoint is not None or resume):
        raise ValueError("early_stopping cannot be combined with checkpoints yet")
    if eval_every < 0 or checkpoint_every < 0:
        raise ValueError("eval_every and checkpoint_every must be >= 0")
    if (checkpoint_every or resume) and checkpoint is None:
        raise ValueError("checkpoint path is required with checkpoint_every or resume")
    optimizers = _as_list(optimizers)
    schedulers = _as_list(schedulers)
    if not optimizers:
        raise ValueError("optimizers must hold at least one optimiser")
    clip_groups = clipping.groups_of(module) if clipping is not None else ()
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

    es = early_stopping
    bad_evals = 0
    if es is not None:
        history.best_val, history.best_step, best_state = (
            _validate(module, es),
            0,
            _snapshot(module),
        )
    bar = tqdm(
        range(start, n_steps),
        desc=desc,
        disable=not progress,
        initial=start,
        total=n_steps,
        mininterval=1.0,
        leave=leave,
    )
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
        for group in clip_groups:
            clipping.clip(group)
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
        if (
            ckpt is not None
            and checkpoint_every
            and (done % checkpoint_every == 0 or done == n_steps)
        ):
            _save(done)
        if progress and (done % 25 == 0 or done == n_steps) and es is None:
            bar.set_postfix(loss=f"{lv:.4g}" if math.isfinite(lv) else "nan")
        if es is not None and (done % es.every == 0 or done == n_steps):
            v = _validate(module, es)
            history.record_eval(done, {"val_loss": v})
            if v < history.best_val:
                history.best_val, history.best_step, best_state, bad_evals = (
                    v,
                    done,
                    _snapshot(module),
                    0,
                )
            else:
                bad_evals += 1
            if progress:
                bar.set_postfix(val=f"{v:.3f}", best=f"{history.best_val:.3f}", refresh=False)
            if bad_evals >= es.patience:
                history.stopped_early = True
                break
    bar.close()
    if es is not None:
        module.load_state_dict(best_state)
        module.eval()
    return history


def _validate(module: torch.nn.Module, es: EarlyStopping) -> float:
    module.eval()
    with torch.no_grad():
        v = float(es.loss())
    module.train()
    return v
