"""The AR posterior inside the DeepSpike VAE: shapes, the relaxed-flow loss, the ELBO, connectivity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuroinverse.inference import (
    CoupledCalciumModel,
    FlowSpikePosterior,
    LinearCalciumModel,
    RelaxedFlowVAE,
    SpikeVAE,
    glm_connectivity,
    linear_model_init,
    make_snippets,
    sequential_sample,
    spike_elbo,
    threshold_deconvolved,
    train_spike_vae,
)
from neuroinverse.metrics import connection_auc, connectivity_correlation
from neuroinverse.models import FactorisedSpikeCNN
from neuroinverse.simulators import coupled_log_prior, simulate_coupled, simulate_linear

pytestmark = pytest.mark.usefixtures("one_thread")


def _net(**kw):
    torch.manual_seed(0)
    return FactorisedSpikeCNN((4, 4), (5, 3), out_kernel=3, **kw)


def test_posterior_samples_are_exact_and_shaped():
    post = FlowSpikePosterior(_net(), lags=4)
    with torch.no_grad():
        post.weights.fill_(-0.2)
    f = torch.randn(3, 80) * 0.2
    s, ell = post.sample_with_logits(f, 5, torch.Generator().manual_seed(0))
    assert s.shape == ell.shape == (3, 5, 80) and set(s.unique().tolist()) <= {0.0, 1.0}
    seq = post.sample(f, 5, torch.Generator().manual_seed(0), sequential=True)
    assert torch.equal(s, seq)  # same noise: the same samples, by either sampler
    ell.sum().backward()
    assert post.weights.grad.abs().sum() > 0
    p = post.spike_probability(f, n_samples=4)
    assert p.shape == (3, 80) and ((p > 0) & (p < 1)).all()


def test_multi_cell_posterior_with_a_shared_network():
    post = FlowSpikePosterior(_net(), n_cells=3, lags=4, per_cell=True)
    f = torch.randn(2, 3, 60) * 0.2
    s, ell, hard = post.relaxed_sample(f, 4, torch.Generator().manual_seed(0))
    assert s.shape == ell.shape == hard.shape == (2, 4, 3, 60)
    # the shared network sees each cell's trace alone
    assert torch.allclose(post(f)[:, 1], post.encoder(f[:, 1]))
    with pytest.raises(ValueError, match="3 cells"):
        post(torch.randn(2, 4, 60))
    with pytest.raises(ValueError, match="per_cell"):
        FlowSpikePosterior(_net(), n_cells=1, per_cell=True)


def test_uncoupled_posterior_is_factorised():
    post = FlowSpikePosterior(_net(), lags=4, coupled=False)
    assert not post.weights.requires_grad and (post.kernel == 0).all()
    f = torch.randn(2, 50)
    _, ell = post.sample_with_logits(f, 3, torch.Generator().manual_seed(0))
    assert torch.allclose(ell, post(f)[:, None].expand_as(ell))


def _one_cell(frames=1200):
    params = {
        k: torch.full((3,), v, dtype=torch.float64) for k, v in dict(gamma=0.95, alpha=0.4, beta=0.0, sigma=0.1).items()
    }
    return simulate_linear(3, frames, rate_hz=2.0, generator=torch.Generator().manual_seed(0), params=params)


def test_relaxed_loss_gradients_theta_from_hard_samples():
    data = _one_cell()
    model = LinearCalciumModel(1, init=linear_model_init(gamma=0.95, alpha=0.4, beta=0.0, sigma=0.1))
    vae = RelaxedFlowVAE(FlowSpikePosterior(_net(), lags=4), model, prior_rate=2 / 60, buffers=(20, 10))
    f = data.fluorescence[:, :200]
    loss, metrics = vae.loss(f, 0, 2, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and set(metrics) == {"elbo_per_1000", "spikes_per_1000"}
    loss.backward()
    grads = {n: p.grad.clone() for n, p in vae.named_parameters() if p.grad is not None}
    assert any(n.startswith("recognition.encoder") for n in grads) and "recognition.weights" in grads
    # θ's gradient is that of the mean log p(f, s) at the hard samples for the same noise
    vae.zero_grad()
    _, _, hard = vae.recognition.relaxed_sample(f, 2, torch.Generator().manual_seed(0))
    mask = vae.buffers.mask(200, f.device)
    log_joint = model.log_likelihood(f[:, None], hard, 0, mask) + vae._log_prior(hard, mask)
    (-log_joint.mean()).backward()
    for name in ("g", "a", "beta", "sigma_param"):
        assert torch.allclose(grads[f"generative.{name}"], getattr(model, name).grad, rtol=1e-4, atol=1e-5)


def test_training_runs_and_the_elbo_is_a_bound():
    data = _one_cell()
    snippets = make_snippets(data.fluorescence, 150, 75).reshape(1, -1, 150)
    model = LinearCalciumModel(1, init=linear_model_init(gamma=0.95, alpha=0.4, beta=0.0, sigma=0.1)).requires_grad_(
        False
    )
    vae = RelaxedFlowVAE(FlowSpikePosterior(_net(), lags=4, n_iter=5), model, prior_rate=2 / 60, buffers=(20, 10))
    hist = train_spike_vae(vae, snippets, n_steps=5, batch_size=4, n_samples=2, progress=False)
    assert len(hist.loss) == 5 and all(math.isfinite(v) for v in hist.loss)
    e = spike_elbo(vae, data.fluorescence, n_samples=4, generator=torch.Generator().manual_seed(1))
    fact = SpikeVAE(_net(), model, prior_rate=2 / 60, buffers=(20, 10))
    e_fact = spike_elbo(fact, data.fluorescence, n_samples=4, generator=torch.Generator().manual_seed(1))
    assert math.isfinite(e) and math.isfinite(e_fact)
    # by hand for the factorised VAE: mean over samples of log p(f | s) + log p(s) − log q(s | f)
    gen = torch.Generator().manual_seed(1)
    s, logits = fact.recognition.sample_with_logits(data.fluorescence, 4, gen)
    mask = fact.buffers.mask(1200, "cpu")
    q = torch.sigmoid(logits)
    log_q = ((s * q.log() + (1 - s) * (1 - q).log()) * mask).sum(-1)
    log_p = ((s * math.log(2 / 60) + (1 - s) * math.log(1 - 2 / 60)) * mask).sum(-1)
    log_f = model.log_likelihood(data.fluorescence[:, None], s, 0, mask)
    by_hand = float((log_f + log_p - log_q).detach().mean()) * 1000 / float(mask.sum())
    assert e_fact == pytest.approx(by_hand, rel=1e-4)
    with pytest.raises(ValueError, match="FlowSpikePosterior"):
        RelaxedFlowVAE(_net(), model)


def test_coupled_simulator_and_model_prior_agree():
    d = simulate_coupled(4, 3000, generator=torch.Generator().manual_seed(0))
    assert d.fluorescence.shape == d.spikes.shape == (4, 3000) and (d.weights.diagonal() == 0).all()
    again = simulate_coupled(4, 3000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.spikes, d.spikes)
    model = CoupledCalciumModel(4, calcium=d.params, learn_calcium=False)
    with torch.no_grad():
        model.bias.copy_(d.bias.float())
        model.coupling.copy_(d.weights.float())
    lp = model.log_prior(d.spikes[None, None])
    assert lp.shape == (1, 1)
    assert float(lp.detach()) == pytest.approx(float(coupled_log_prior(d.spikes, d.bias, d.weights)), rel=1e-4)
    assert [p.requires_grad for p in (model.bias, model.coupling, model.g, model.sigma_param)] == [
        True,
        True,
        False,
        False,
    ]
    ll = model.log_likelihood(d.fluorescence[None, None], d.spikes[None, None], 0)
    assert torch.isfinite(ll).all()
    with pytest.raises(ValueError, match="cell must be 0"):
        model.mean(d.spikes[None], 1)
    with pytest.raises(ValueError, match="zero diagonal"):
        simulate_coupled(2, 10, generator=torch.Generator(), weights=torch.ones(2, 2))
    with pytest.raises(ValueError, match="unknown calcium"):
        CoupledCalciumModel(2, calcium=dict(tau=1.0))


def test_glm_recovers_coupling_from_true_spikes():
    d = simulate_coupled(4, 30000, generator=torch.Generator().manual_seed(1), connection_prob=0.5)
    w, b = glm_connectivity(d.spikes)
    assert connectivity_correlation(w, d.weights) > 0.9 and connection_auc(w, d.weights) > 0.9
    assert np.allclose(b, d.bias.numpy(), atol=0.5)
    spikes = threshold_deconvolved(torch.tensor([[0.0, 1.0, 0.3, 0.0, 0.9]]), fraction=0.5)
    assert spikes.tolist() == [[0.0, 1.0, 0.0, 0.0, 1.0]]
    with pytest.raises(ValueError, match="0 or 1"):
        glm_connectivity(np.full((2, 10), 0.5))


def test_sequential_relaxed_vae_trains_like_the_parallel_one():
    d = simulate_coupled(2, 1000, generator=torch.Generator().manual_seed(2))
    snippets = make_snippets(d.fluorescence[None], 120, 60)
    for sequential in (False, True):
        post = FlowSpikePosterior(_net(), n_cells=2, lags=3, per_cell=True, n_iter=4)
        vae = RelaxedFlowVAE(
            post, CoupledCalciumModel(2, calcium=d.params, learn_calcium=False), buffers=(20, 10), sequential=sequential
        )
        hist = train_spike_vae(vae, snippets, n_steps=2, batch_size=2, n_samples=2, theta_lr=1e-2, progress=False)
        assert all(math.isfinite(v) for v in hist.loss)
    assert torch.equal(
        sequential_sample(torch.zeros(1, 5), torch.zeros(2), torch.full((1, 5), 0.7)),
        torch.zeros(1, 5, dtype=torch.bool),
    )
