"""Discrete flows: the fixed-point sampler is the sequential sampler, bit for bit; the relaxed flow."""

from __future__ import annotations

import pytest
import torch

from neuroinverse.inference import (
    ar_log_prob,
    causal_drive,
    causal_kernel,
    example_ar_posterior,
    fixed_point_sample,
    fresh_noise_iteration,
    prefix_agreement,
    relaxed_fixed_point,
    relaxed_sequential,
    sequential_sample,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _problem(batch, n_cells, n_frames, lags, scale, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    a = (torch.randn(batch, n_cells, n_frames, generator=g) * 2 - 2.5).to(dtype)
    kernel = causal_kernel((torch.randn(n_cells, n_cells, lags, generator=g) * scale).to(dtype))
    u = torch.rand(a.shape, generator=g, dtype=dtype)
    return a, kernel, u


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("n_cells", "lags", "scale"), [(1, 10, 2.0), (1, 3, 6.0), (3, 5, 1.5), (4, 10, 3.0)])
def test_fixed_point_equals_sequential_bitwise(n_cells, lags, scale, dtype):
    for seed in range(3):
        a, kernel, u = _problem(16, n_cells, 300, lags, scale, seed, dtype)
        fp = fixed_point_sample(a, kernel, u, trajectory=True)
        seq = sequential_sample(a, kernel, u)
        assert fp.spikes.dtype == torch.bool and fp.spikes.shape == a.shape
        assert torch.equal(fp.spikes, seq)
        assert prefix_agreement(fp.trajectory, seq) == 1.0
        assert torch.equal(fp.trajectory[-1], fp.spikes)


def test_single_cell_form_and_the_example_posterior():
    a, kernel = example_ar_posterior(64, 1000, generator=torch.Generator().manual_seed(0))
    assert a.shape == (64, 1000) and kernel.shape == (11,) and kernel[0] == 0 and (kernel[1:] < 0).all()
    u = torch.rand(a.shape, generator=torch.Generator().manual_seed(1))
    fp = fixed_point_sample(a, kernel, u)
    assert fp.spikes.shape == (64, 1000) and fp.iterations.shape == (64,)
    assert torch.equal(fp.spikes, sequential_sample(a, kernel, u))
    assert fp.n_passes == int(fp.iterations.max()) + 2  # s⁽⁰⁾, the iterations, the final check
    # each sequence's result and K* do not depend on the rest of the batch
    one = fixed_point_sample(a[5:6], kernel, u[5:6])
    assert torch.equal(one.spikes[0], fp.spikes[5]) and one.iterations[0] == fp.iterations[5]


def test_iteration_counts_known_cases():
    T = 12
    a, kernel = torch.full((2, T), -3.0), torch.zeros(4)
    u = torch.rand(2, T, generator=torch.Generator().manual_seed(0))
    res = fixed_point_sample(a, kernel, u)
    assert res.iterations.tolist() == [0, 0] and res.n_passes == 2  # factorised: s⁽⁰⁾ is the answer
    # a chain: a spike in frame 0 forces the next frame, and so on; one frame per iteration
    a = torch.full((1, T), -50.0)
    a[0, 0] = 50.0
    chain = causal_kernel(torch.tensor([100.0]))
    u = torch.full((1, T), 0.5)
    res = fixed_point_sample(a, chain, u, trajectory=True)
    assert res.spikes.all() and res.iterations.tolist() == [T - 1] and res.n_passes == T
    assert [int(s.sum()) for s in res.trajectory] == list(range(1, T + 1))
    short = fixed_point_sample(a, chain, u, max_iter=3)
    assert int(short.spikes.sum()) == 4 and not torch.equal(short.spikes, sequential_sample(a, chain, u))


def test_noise_at_the_ends_of_the_interval():
    a, kernel = torch.zeros(1, 4), causal_kernel(torch.tensor([-1.0]))
    u = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    assert fixed_point_sample(a, kernel, u).spikes.tolist() == [[True, False, True, False]]
    assert sequential_sample(a, kernel, u).tolist() == [[True, False, True, False]]


def test_fresh_noise_never_settles_and_is_not_the_sample():
    a, kernel, u = _problem(8, 1, 200, 10, 2.0, 0)
    res = fresh_noise_iteration(a, kernel, u, generator=torch.Generator().manual_seed(1), max_iter=30, trajectory=True)
    assert res.n_passes == 31 and (res.iterations == 30).all()
    assert not torch.equal(res.spikes, sequential_sample(a, kernel, u))
    assert prefix_agreement(res.trajectory, sequential_sample(a, kernel, u)) < 0.5


def test_bad_input_is_refused_clearly():
    a, kernel, u = _problem(2, 1, 20, 3, 1.0, 0)
    a1, k1, u1 = a[:, 0], kernel[0, 0], u[:, 0]
    for fn in (fixed_point_sample, sequential_sample):
        with pytest.raises(ValueError, match="noise must have the shape"):
            fn(a1, k1, u1[:, :-1])
        with pytest.raises(ValueError, match="longer than the sequence"):
            fn(a1, causal_kernel(torch.ones(25)), u1)
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            fn(a1, k1, u1 + 1.0)
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            fn(a1, k1, u1 - 1.0)
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            fn(a1, k1, torch.full_like(u1, float("nan")))
        with pytest.raises(ValueError, match="not causal"):
            fn(a1, torch.tensor([0.5, -1.0, -1.0]), u1)
        with pytest.raises(ValueError, match="kernel must have shape"):
            fn(a, causal_kernel(torch.zeros(2, 2, 3)), u)
        with pytest.raises(ValueError, match="needs a kernel"):
            fn(a, k1, u)
        with pytest.raises(ValueError, match="NaN or infinite"):
            fn(torch.full_like(a1, float("inf")), k1, u1)
    with pytest.raises(ValueError, match="not causal"):
        relaxed_fixed_point(a1, torch.tensor([0.5, -1.0]), u1)
    with pytest.raises(ValueError, match="weights must have shape"):
        causal_kernel(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="max_iter"):
        fixed_point_sample(a1, k1, u1, max_iter=-1)


def test_causal_drive_and_log_prob_match_their_definitions():
    a, kernel, _ = _problem(3, 2, 40, 4, 1.0, 0, torch.float64)
    s = (torch.rand(a.shape, generator=torch.Generator().manual_seed(2)) < 0.3).double()
    drive = causal_drive(s, kernel)
    slow = torch.zeros_like(s)
    for t in range(40):
        for lag in range(1, 5):
            if t - lag >= 0:
                slow[:, :, t] += torch.einsum("ij,bj->bi", kernel[:, :, lag], s[:, :, t - lag])
    assert torch.allclose(drive, slow)
    ell = a + slow
    expected = (s * torch.log(torch.sigmoid(ell)) + (1 - s) * torch.log(torch.sigmoid(-ell))).sum((1, 2))
    assert torch.allclose(ar_log_prob(s, a, kernel), expected)


def test_relaxed_flow_is_differentiable_and_tends_to_the_hard_sample():
    a, kernel, u = _problem(4, 2, 60, 5, 1.5, 3, torch.float64)
    a.requires_grad_(True)
    weights = kernel[:, :, 1:].clone().requires_grad_(True)
    s = relaxed_fixed_point(a, causal_kernel(weights), u, temperature=0.5, n_iter=10)
    assert s.shape == a.shape and ((s > 0) & (s < 1)).all()
    s.sum().backward()
    assert a.grad.abs().sum() > 0 and weights.grad.abs().sum() > 0
    with torch.no_grad():
        seq = relaxed_sequential(a, kernel, u, temperature=0.5)
        assert torch.allclose(relaxed_fixed_point(a, kernel, u, temperature=0.5, n_iter=60), seq, atol=1e-10)
        cold = relaxed_fixed_point(a, kernel, u, temperature=1e-3, n_iter=60)
        hard = sequential_sample(a, kernel, u)
        assert ((cold > 0.5) == hard).float().mean() > 0.98


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fixed_point_on_cuda_equals_sequential_on_cuda():
    a, kernel, u = (x.cuda() for x in _problem(32, 3, 2000, 10, 2.0, 0))
    fp = fixed_point_sample(a, kernel, u)
    assert fp.spikes.is_cuda and torch.equal(fp.spikes, sequential_sample(a, kernel, u))
