"""Profiles, devices, seeding and size selection."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from neuroinverse.runtime import PROFILES, check_profile, resolve_device, seed_everything, setup


def test_profiles():
    assert PROFILES == ("ci", "full")
    for p in PROFILES:
        assert check_profile(p) == p


def test_bad_profile_names_the_valid_ones():
    with pytest.raises(ValueError) as err:
        check_profile("huge")
    for p in PROFILES:
        assert p in str(err.value)
    with pytest.raises(ValueError):
        setup(profile="huge")


def test_auto_device_is_cpu_without_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_without_cuda_raises():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA"):
        resolve_device("cuda")
    with pytest.raises(ValueError):
        resolve_device("cuda:0")


def test_bad_device_raises():
    with pytest.raises(ValueError):
        resolve_device("tpu-of-dreams")
    with pytest.raises(ValueError):
        resolve_device(3)


def _draw():
    return (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist())


def test_seed_everything_reproduces():
    seed_everything(123)
    a = _draw()
    seed_everything(123)
    b = _draw()
    seed_everything(124)
    c = _draw()
    assert a == b
    assert a != c


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed(seed):
    with pytest.raises(ValueError):
        seed_everything(seed)


def test_setup_ci_is_deterministic_and_single_threaded():
    threads = torch.get_num_threads()
    try:
        rt = setup(profile="ci", seed=7, device="cpu")
        assert rt.threads == 1 and torch.get_num_threads() == 1
        assert rt.profile == "ci" and rt.seed == 7 and rt.device == torch.device("cpu")
        x = torch.randn(4, generator=rt.generator())
        y = torch.randn(4, generator=setup(profile="ci", seed=7, device="cpu").generator())
        assert torch.equal(x, y)
        assert not torch.equal(x, torch.randn(4, generator=rt.generator(offset=1)))
    finally:
        torch.set_num_threads(threads)


def test_select_picks_the_profile():
    threads = torch.get_num_threads()
    try:
        rt = setup(profile="ci", seed=0, device="cpu")
    finally:
        torch.set_num_threads(threads)
    cfg = rt.select(ci=dict(n=10, lr=1e-3), full=dict(n=1000, lr=1e-3))
    assert cfg.n == 10 and cfg.lr == 1e-3


def test_select_rejects_mismatched_keys():
    rt = setup(profile="full", seed=0, device="cpu")
    with pytest.raises(ValueError):
        rt.select(ci=dict(n=10), full=dict(n=10, m=2))
    with pytest.raises(ValueError):
        rt.select(ci=dict(n=10))
    with pytest.raises(ValueError):
        rt.select(ci=dict(n=10), full=dict(n=10), huge=dict(n=10))
    assert rt.select(ci=dict(n=10), full=dict(n=1000)).n == 1000


def test_timed_returns_result_and_time():
    import time as _time

    from neuroinverse.runtime import time_call, timed

    out, t = timed(lambda: (_time.sleep(0.02), 7)[1])
    assert out == 7 and 0.015 < t < 1.0
    assert 0.015 < time_call(lambda: _time.sleep(0.02), repeats=2, warmup=0) < 1.0
    with pytest.raises(ValueError, match="repeats"):
        time_call(lambda: None, repeats=0)


def test_cpu_times_orders_workloads_and_rejects_bad_input():
    from neuroinverse.runtime import cpu_times

    small, big = np.random.default_rng(0).random(10_000), np.random.default_rng(1).random(1_000_000)
    calls = []
    t = cpu_times([lambda: calls.append(np.sort(small)), lambda: np.sort(big)], repeats=3, block=0.01)
    assert t.shape == (2,) and (t > 0).all()
    assert t[1] > 20 * t[0]  # ~100x the elements, n log n work
    assert len(calls) >= 2 + 3  # warm-up, sizing call, then one block per round
    for bad in (dict(fns=[]), dict(fns=[lambda: None], repeats=0), dict(fns=[lambda: None], block=0.0)):
        fns = bad.pop("fns")
        with pytest.raises(ValueError, match="repeats"):
            cpu_times(fns, **bad)


def _seeded_draw(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(5, generator=g), torch.get_num_threads()


def _fail():
    raise KeyError("boom")


def test_background_gives_the_in_process_result_on_one_thread():
    from neuroinverse.runtime import background

    out, threads = background(_seeded_draw, 3).result(timeout=120)
    assert torch.equal(out, _seeded_draw(3)[0]) and threads == 1
    with pytest.raises(KeyError, match="boom"):
        background(_fail).result(timeout=120)
    with pytest.raises(ValueError, match="workers"):
        background(_seeded_draw, 1, workers=0)
    with pytest.raises(TypeError, match="callable"):
        background(3)


def test_smoke_takes_switches_from_full_and_sizes_from_ci(monkeypatch):
    monkeypatch.setenv("NEUROINVERSE_SMOKE", "1")
    threads = torch.get_num_threads()
    try:
        rt = setup(profile="full", seed=0, device="cpu")
        assert rt.smoke and rt.profile == "full" and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    cfg = rt.select(
        ci=dict(n=10, seeds=(0,), lr=1e-3, ablation=False, arch="small"),
        full=dict(n=1000, seeds=(0, 1, 2), lr=1e-4, ablation=True, arch="large"),
    )
    assert (cfg.n, cfg.seeds, cfg.lr) == (10, (0,), 1e-3)  # sizes and numbers: ci
    assert cfg.ablation is True and cfg.arch == "large"  # switches: full


def test_smoke_is_refused_at_ci_and_for_bad_values(monkeypatch):
    monkeypatch.setenv("NEUROINVERSE_SMOKE", "1")
    with pytest.raises(ValueError, match="smoke"):
        setup(profile="ci", seed=0, device="cpu")
    monkeypatch.setenv("NEUROINVERSE_SMOKE", "yes")
    with pytest.raises(ValueError, match="NEUROINVERSE_SMOKE"):
        setup(profile="full", seed=0, device="cpu")


def test_smoke_writes_under_build_smoke(monkeypatch):
    from neuroinverse.results import results_dir
    from neuroinverse.runtime import output_root, repo_root

    monkeypatch.setenv("NEUROINVERSE_SMOKE", "0")
    assert output_root() == repo_root() / "_build"
    monkeypatch.setenv("NEUROINVERSE_SMOKE", "1")
    assert output_root() == repo_root() / "_build" / "smoke"
    assert results_dir() == repo_root() / "_build" / "smoke" / "results"
