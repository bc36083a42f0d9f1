"""The training loop: it optimises, clips, evaluates, and resumes exactly from a checkpoint."""

import pytest
import torch
from torch import nn

from neuroinverse.training import Clipping, EarlyStopping, fit


def _problem(seed=0):
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))  # the same data always
    torch.manual_seed(seed)  # the initialisation differs with ``seed``
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])

    def loss_fn(step, gen):
        idx = torch.randint(64, (16,), generator=gen)
        noise = 0.01 * torch.randn(16, 1, generator=gen)  # randomness from the loop's generator
        loss = ((model(x[idx]) - y[idx] - noise) ** 2).mean()
        return loss, {"mse": float(loss.detach())}

    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.9)
    return model, opt, sched, loss_fn


def test_fit_reduces_loss_and_records_history():
    model, opt, sched, loss_fn = _problem()
    h = fit(
        loss_fn,
        module=model,
        optimizers=opt,
        schedulers=sched,
        n_steps=200,
        progress=False,
        eval_fn=lambda: {"one": 1.0},
        eval_every=50,
    )
    assert len(h.loss) == 200 and h.steps == list(range(200))
    assert sum(h.loss[-20:]) / 20 < 0.2 * sum(h.loss[:20]) / 20
    assert h.eval_steps == [50, 100, 150, 200]
    assert h.metrics["mse"][0] == pytest.approx(h.loss[0])


def test_resume_after_interruption_gives_identical_parameters(tmp_path):
    ref, opt, sched, loss_fn = _problem()
    fit(loss_fn, module=ref, optimizers=opt, schedulers=sched, n_steps=30, seed=3, progress=False)

    model, opt, sched, loss_fn = _problem()
    calls = {"n": 0}

    def interrupted(step, gen):
        if step == 17:
            raise KeyboardInterrupt
        calls["n"] += 1
        return loss_fn(step, gen)

    ckpt = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(
            interrupted,
            module=model,
            optimizers=opt,
            schedulers=sched,
            n_steps=30,
            seed=3,
            checkpoint=ckpt,
            checkpoint_every=5,
            progress=False,
        )
    assert ckpt.exists()

    # A fresh process: new objects, differently initialised, resumed from step 15.
    model2, opt2, sched2, loss_fn2 = _problem(seed=99)
    h = fit(
        loss_fn2,
        module=model2,
        optimizers=opt2,
        schedulers=sched2,
        n_steps=30,
        seed=3,
        checkpoint=ckpt,
        checkpoint_every=5,
        resume=True,
        progress=False,
    )
    assert h.steps == list(range(30))
    for a, b in zip(ref.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)
    # and the interruption really happened mid-run: the resumed run redid steps 15 and 16
    assert calls["n"] == 17


def test_resume_without_checkpoint_file_starts_from_scratch(tmp_path):
    model, opt, _, loss_fn = _problem()
    h = fit(
        loss_fn, module=model, optimizers=opt, n_steps=3, checkpoint=tmp_path / "none.pt", resume=True, progress=False
    )
    assert h.steps == [0, 1, 2]


def test_gradient_clipping_bounds_the_update():
    p = nn.Parameter(torch.zeros(4))
    mod = nn.Module()
    mod.p = p
    opt = torch.optim.SGD([p], lr=1.0)
    fit(lambda s, g: (1000.0 * p).sum(), module=mod, optimizers=opt, n_steps=1, clipping=Clipping(0.5), progress=False)
    assert torch.linalg.vector_norm(p.detach()) == pytest.approx(0.5, rel=1e-5)


def test_per_group_clipping_bounds_each_group_on_its_own():
    mod = nn.Module()
    mod.a, mod.b = nn.Parameter(torch.zeros(4)), nn.Parameter(torch.zeros(9))
    opt = torch.optim.SGD(mod.parameters(), lr=1.0)
    clip = Clipping(0.5, groups=((mod.a,), (mod.b,)))
    fit(
        lambda s, g: (1000.0 * mod.a).sum() + (3.0 * mod.b).sum(),
        module=mod,
        optimizers=opt,
        n_steps=1,
        clipping=clip,
        progress=False,
    )
    # each group's update has norm 0.5 (one global norm would have left b's share at about 0.005)
    assert torch.linalg.vector_norm(mod.a.detach()) == pytest.approx(0.5, rel=1e-5)
    assert torch.linalg.vector_norm(mod.b.detach()) == pytest.approx(0.5, rel=1e-5)


def test_stacked_clipping_equals_clipping_the_unstacked_models_bit_for_bit():
    """Three models' weights stacked along a first axis clip exactly as the models' own do."""
    g = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (4,), (2, 3)]
    grads = [[torch.randn(s, generator=g) * 50 for s in shapes] for _ in range(3)]
    own = [nn.Parameter(torch.zeros(s)) for _ in range(3) for s in shapes]
    for p, gr in zip(own, [gr for model in grads for gr in model], strict=True):
        p.grad = gr.clone()
    stacked = [nn.Parameter(torch.zeros(3, *s)) for s in shapes]
    for k, p in enumerate(stacked):
        p.grad = torch.stack([grads[m][k] for m in range(3)])
    Clipping(1.0).clip(own)
    Clipping(1.0, stacked=3).clip(stacked)
    for k, p in enumerate(stacked):
        for m in range(3):
            assert torch.equal(p.grad[m], own[m * len(shapes) + k].grad)
    total = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in stacked]))
    assert float(total) == pytest.approx(1.0, rel=1e-5)  # one norm over all models, not one each
    with pytest.raises(ValueError, match="slices"):
        Clipping(1.0, stacked=2).clip(stacked)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(max_norm=0.0), "max_norm"),
        (dict(max_norm=float("nan")), "max_norm"),
        (dict(max_norm=1.0, params=(), groups=((),)), "not both"),
        (dict(max_norm=1.0, groups=((),)), "non-empty"),
        (dict(max_norm=1.0, stacked=0), "stacked"),
        (dict(max_norm=1.0, stacked=2.0), "stacked"),
    ],
)
def test_clipping_checks_itself(kw, match):
    with pytest.raises(ValueError, match=match):
        Clipping(**kw)


def test_early_stopping_stops_after_patience_and_restores_the_best_state():
    """A validation loss that is best at the first evaluation after step 4, then only worse."""
    mod = nn.Module()
    mod.w = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([mod.w], lr=1.0)
    val = lambda: float((mod.w.detach() - 4.0).abs())  # noqa: E731 - best at w = 4
    h = fit(
        lambda s, g: -mod.w.sum(),
        module=mod,
        optimizers=opt,
        n_steps=100,  # w grows by 1 per step
        early_stopping=EarlyStopping(val, every=2, patience=3),
        progress=False,
    )
    assert h.eval_steps == [2, 4, 6, 8, 10] and h.stopped_early  # 6, 8, 10: three worse evaluations
    assert h.best_step == 4 and h.best_val == 0.0
    assert float(mod.w.detach()) == 4.0 and len(h.steps) == 10  # the best state is back; 10 steps were run
    assert not mod.training


def test_early_stopping_runs_to_the_end_and_validates_there():
    mod = nn.Module()
    mod.w = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([mod.w], lr=1.0)
    h = fit(
        lambda s, g: -mod.w.sum(),
        module=mod,
        optimizers=opt,
        n_steps=5,
        early_stopping=EarlyStopping(lambda: float(-mod.w.detach()), every=2, patience=1),
        progress=False,
    )
    assert h.eval_steps == [2, 4, 5] and not h.stopped_early and h.best_step == 5 and float(mod.w.detach()) == 5.0


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(loss=1.0, every=1, patience=1), "callable"),
        (dict(loss=float, every=0, patience=1), "every"),
        (dict(loss=float, every=1, patience=True), "patience"),
    ],
)
def test_early_stopping_checks_itself(kw, match):
    with pytest.raises(ValueError, match=match):
        EarlyStopping(**kw)


def test_early_stopping_refuses_checkpoints(tmp_path):
    model, opt, _, loss_fn = _problem()
    with pytest.raises(ValueError, match="checkpoint"):
        fit(
            loss_fn,
            module=model,
            optimizers=opt,
            n_steps=2,
            checkpoint=tmp_path / "c.pt",
            checkpoint_every=1,
            early_stopping=EarlyStopping(lambda: 0.0, every=1, patience=1),
            progress=False,
        )


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(n_steps=-1), "n_steps"),
        (dict(n_steps=2, clipping=0.5), "Clipping"),
        (dict(n_steps=2, checkpoint_every=5), "checkpoint"),
    ],
)
def test_bad_arguments_raise(kw, match):
    model, opt, _, loss_fn = _problem()
    with pytest.raises(ValueError, match=match):
        fit(loss_fn, module=model, optimizers=opt, progress=False, **kw)


def test_non_finite_loss_raises():
    model, opt, _, _ = _problem()
    with pytest.raises(FloatingPointError):
        fit(lambda s, g: model[0].weight.sum() * float("nan"), module=model, optimizers=opt, n_steps=1, progress=False)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this would have run on load",))


def test_resume_refuses_a_checkpoint_that_would_run_code(tmp_path):
    """Checkpoints load with weights_only=True: a pickled object with code is refused."""
    ckpt = tmp_path / "evil.pt"
    torch.save({"step": 3, "module": _RunsCode()}, ckpt)
    model, opt, sched, loss_fn = _problem()
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported"):
        fit(
            loss_fn,
            module=model,
            optimizers=opt,
            schedulers=sched,
            n_steps=5,
            progress=False,
            checkpoint=ckpt,
            resume=True,
        )
