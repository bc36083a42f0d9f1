"""DeepSpike pieces: the generative model, the VIMCO objective, the recognition CNN."""

import math

import pytest
import torch

from neuroinverse.inference import (
    LinearCalciumModel,
    SpikeVAE,
    bernoulli_log_prob,
    make_snippets,
    train_spike_vae,
    vimco_objective,
)
from neuroinverse.metrics import binned_correlation
from neuroinverse.models import FactorisedSpikeCNN
from neuroinverse.simulators import simulate_linear


def test_generative_mean_equals_ar1_recursion():
    m = LinearCalciumModel(2, init=dict(g=2.0, a=0.3, beta=-0.1))
    s = (torch.rand(2, 3, 50, generator=torch.Generator().manual_seed(0)) < 0.1).float()
    F = m.mean(s, torch.tensor([[0], [1]]))
    gamma = torch.sigmoid(torch.tensor(2.0))
    alpha = torch.nn.functional.softplus(torch.tensor(0.3))
    c = torch.zeros(2, 3)
    for t in range(50):
        c = gamma * c + s[..., t]
        assert torch.allclose(F[..., t], alpha * c - 0.1, atol=1e-5)


def test_log_likelihood_is_gaussian_and_differentiable():
    m = LinearCalciumModel(1)
    s = torch.zeros(1, 10)
    f = torch.randn(1, 10)
    ll = m.log_likelihood(f, s, 0)
    sigma = torch.nn.functional.softplus(torch.tensor(-2.5))
    expected = torch.distributions.Normal(-0.3, sigma).log_prob(f).sum()
    assert ll.item() == pytest.approx(expected.item(), rel=1e-5)
    ll.sum().backward()
    assert m.sigma_param.grad is not None and m.beta.grad.abs().sum() > 0


def test_bernoulli_log_prob_definition_and_mask():
    s = torch.tensor([[1.0, 0.0, 1.0]])
    p = torch.tensor([[0.2, 0.3, 0.9]])
    assert bernoulli_log_prob(s, p).item() == pytest.approx(math.log(0.2) + math.log(0.7) + math.log(0.9), rel=1e-6)
    mask = torch.tensor([0.0, 1.0, 1.0])
    assert bernoulli_log_prob(s, p, mask).item() == pytest.approx(math.log(0.7) + math.log(0.9), rel=1e-6)


def test_vimco_bound_and_signals_match_definition():
    log_p = torch.tensor([[-1.0, -2.0, -0.5]], requires_grad=True)
    log_q = torch.tensor([[-0.3, -0.7, -1.2]], requires_grad=True)
    surrogate, bound = vimco_objective(log_p, log_q)
    lw = (log_p - log_q).detach()[0]
    w = lw.exp()
    assert bound.item() == pytest.approx(math.log(w.mean().item()), rel=1e-5)
    # gradient wrt log_q: ℓ_k − ω_k, with ℓ_k = L̂ − log(mean_{j≠k} w_j); loss is its negative
    L = math.log(w.mean().item())
    omega = w / w.sum()
    loo = torch.tensor([math.log((w.sum() - w[k]).item() / 2) for k in range(3)])
    surrogate.backward()
    assert torch.allclose(-log_q.grad[0], (L - loo) - omega, atol=1e-6)
    assert torch.allclose(-log_p.grad[0], omega, atol=1e-6)


def test_vimco_rejects_bad_shapes():
    with pytest.raises(ValueError, match="log_p"):
        vimco_objective(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="2 samples"):
        vimco_objective(torch.zeros(2, 1), torch.zeros(2, 1))


def test_recognition_shapes_gradients_and_bad_input():
    torch.manual_seed(0)
    net = FactorisedSpikeCNN((4, 4), (5, 3), out_kernel=3)
    x = torch.randn(3, 40, requires_grad=True)
    out = net(x)
    assert out.shape == (3, 40)
    # hidden biases start at zero and the output bias at -3: a flat trace gives p = sigmoid(-3)
    flat = torch.sigmoid(net(torch.zeros(1, 40)))
    assert torch.allclose(flat, torch.sigmoid(torch.tensor(-3.0)), atol=1e-6)
    out.sum().backward()
    assert x.grad.shape == (3, 40)
    with pytest.raises(ValueError, match="traces"):
        net(torch.randn(3, 1, 40))
    with pytest.raises(ValueError, match="NaN"):
        net(torch.full((1, 40), float("nan")))
    with pytest.raises(ValueError, match="odd"):
        FactorisedSpikeCNN((4,), (4,))


def test_make_snippets_covers_both_ends():
    x = torch.arange(20.0)[None]
    sn = make_snippets(x, 8, 5)
    assert sn.shape == (1, 4, 8)
    assert sn[0, 0, 0] == 0 and sn[0, -1, -1] == 19
    with pytest.raises(ValueError, match="length"):
        make_snippets(x, 30, 5)


def test_short_training_improves_the_bound_and_learns_spikes():
    d = simulate_linear(2, 1200, rate_hz=2.0, generator=torch.Generator().manual_seed(0))
    sn = make_snippets(d.fluorescence, 300, 150)
    torch.manual_seed(0)
    vae = SpikeVAE(FactorisedSpikeCNN((8, 8), (15, 9), 9), LinearCalciumModel(2))
    h = train_spike_vae(vae, sn, n_steps=300, batch_size=4, n_samples=8, progress=False)
    first, last = h.metrics["elbo_per_1000"][:20], h.metrics["elbo_per_1000"][-20:]
    assert sum(last) / 20 > sum(first) / 20
    p = vae.spike_probability(d.fluorescence)
    assert p[d.spikes > 0].mean() > 3 * p[d.spikes == 0].mean()
    assert binned_correlation(p, d.spikes, bin_width=2) > 0.3  # untrained: ≈ 0


def test_train_rejects_mismatched_cells():
    vae = SpikeVAE(FactorisedSpikeCNN((4,), (3,), 3), LinearCalciumModel(3))
    with pytest.raises(ValueError, match="cells"):
        train_spike_vae(vae, torch.zeros(2, 5, 300), n_steps=1, batch_size=2, n_samples=4)
    with pytest.raises(ValueError, match="prior_rate"):
        SpikeVAE(FactorisedSpikeCNN((4,), (3,), 3), LinearCalciumModel(1), prior_rate=-0.1)


def _set_params(model, values):
    """Write constrained values into the model's unconstrained parameters (by name)."""
    with torch.no_grad():
        for name, (transform, value) in values.items():
            x = value.to(torch.float32)
            inv = {
                "sigmoid": lambda v: torch.log(v / (1 - v)),
                "softplus": lambda v: torch.log(torch.expm1(v)),
                "identity": lambda v: v,
            }[transform]
            getattr(model, name)[:] = inv(x)


def _inverse_params(model, p):
    _set_params(
        model,
        dict(
            g=("sigmoid", p["gamma"]),
            e=("softplus", p["eta"]),
            z=("softplus", p["zeta"]),
            d_max=("identity", p["d_max"]),
            k=("sigmoid", p["kappa"]),
            a=("softplus", p["alpha"]),
            beta=("identity", p["beta"]),
        ),
    )


def test_saturating_model_with_true_parameters_reproduces_the_simulator():
    from neuroinverse.inference import SaturatingCalciumModel
    from neuroinverse.simulators.calcium import sample_saturating_params, simulate_saturating

    p = sample_saturating_params(2, generator=torch.Generator().manual_seed(1))
    p["sigma"] = torch.zeros(2, dtype=torch.float64)
    d = simulate_saturating(2, 400, rate_hz=3.0, generator=torch.Generator().manual_seed(0), params=p)
    m = SaturatingCalciumModel(2)
    _inverse_params(m, p)
    mean = m.mean(d.spikes, torch.tensor([0, 1]))
    assert torch.allclose(mean, d.fluorescence, atol=2e-3)
    # every generative parameter receives a gradient through the frame loop
    m.log_likelihood(d.fluorescence + 0.01, d.spikes, torch.tensor([0, 1])).sum().backward()
    for name, par in m.named_parameters():
        assert par.grad is not None and torch.isfinite(par.grad).all(), name
    with pytest.raises(ValueError, match="unknown parameter"):
        SaturatingCalciumModel(1, init={"tau": 1.0})


def test_vae_trains_with_the_saturating_model():
    from neuroinverse.inference import SaturatingCalciumModel
    from neuroinverse.simulators.calcium import simulate_saturating

    d = simulate_saturating(1, 600, rate_hz=2.0, generator=torch.Generator().manual_seed(0))
    vae = SpikeVAE(FactorisedSpikeCNN((4,), (9,), 5), SaturatingCalciumModel(1), buffers=(50, 25))
    h = train_spike_vae(
        vae, make_snippets(d.fluorescence, 200, 100), n_steps=5, batch_size=2, n_samples=4, progress=False
    )
    assert len(h.loss) == 5 and all(math.isfinite(x) for x in h.loss)


def _ar_model():
    from neuroinverse.models.recognition import AutoregressiveSpikeRNN

    torch.manual_seed(0)
    return AutoregressiveSpikeRNN((4,), (5,), n_features=3, feature_kernel=3, hidden=8, out_bias=-1.0)


def test_autoregressive_posterior_is_normalised():
    import itertools

    net = _ar_model()
    T = 4
    f = torch.randn(1, T)
    all_s = torch.tensor(list(itertools.product([0.0, 1.0], repeat=T)))[None]  # (1, 16, T)
    logq = bernoulli_log_prob(all_s, torch.sigmoid(net.logits(f, all_s)), clip=0.0)
    assert torch.logsumexp(logq, -1).item() == pytest.approx(0.0, abs=1e-5)


def test_autoregressive_logits_depend_only_on_past_spikes_and_sampling_matches_them():
    net = _ar_model()
    f = torch.randn(2, 30)
    gen = torch.Generator().manual_seed(0)
    s, p = net.sample(f, 3, gen, return_probability=True)
    assert s.shape == p.shape == (2, 3, 30)
    # sequential sampling and the teacher-forced pass give the same conditionals
    assert torch.allclose(torch.sigmoid(net.logits(f, s)), p, atol=1e-5)
    s2 = s.clone()
    s2[..., 10] = 1 - s2[..., 10]
    l1, l2 = net.logits(f, s), net.logits(f, s2)
    assert torch.allclose(l1[..., :11], l2[..., :11]) and not torch.allclose(l1[..., 11:], l2[..., 11:])
    assert net.spike_probability(f).shape == (2, 30)


def test_vae_trains_with_the_autoregressive_posterior():
    d = simulate_linear(1, 600, rate_hz=2.0, generator=torch.Generator().manual_seed(0))
    vae = SpikeVAE(_ar_model(), LinearCalciumModel(1), buffers=(50, 25))
    sn = make_snippets(d.fluorescence, 200, 100)
    h = train_spike_vae(vae, sn, n_steps=3, batch_size=2, n_samples=4, progress=False)
    assert len(h.loss) == 3 and all(math.isfinite(x) for x in h.loss)
    assert math.isfinite(vae.bound(sn, 4, torch.Generator().manual_seed(1)))
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in vae.recognition.backward_rnn.parameters())


def test_spine_model_with_true_parameters_reproduces_the_simulator():
    from neuroinverse.inference import SpineCalciumModel
    from neuroinverse.simulators.calcium import simulate_spines

    d = simulate_spines(
        2, 300, n_spines=3, sigma=0.0, bap_rate_hz=3.0, syn_rate_hz=3.0, generator=torch.Generator().manual_seed(0)
    )
    assert d.fluorescence.shape == d.spikes.shape == (2, 4, 300)
    p = d.params
    m = SpineCalciumModel(2, n_spines=3)
    _set_params(
        m,
        dict(
            g_b=("sigmoid", p["gamma_b"]),
            g_s=("sigmoid", p["gamma_s"]),
            a_d=("softplus", p["alpha_d"]),
            a_b=("softplus", p["a_b"]),
            a_s=("softplus", p["a_s"]),
            beta=("identity", p["beta"]),
        ),
    )
    assert torch.allclose(m.mean(d.spikes, torch.tensor([0, 1])), d.fluorescence, atol=1e-4)
    # the dendrite sees only bAPs: a synaptic spike leaves channel 0 unchanged
    s2 = d.spikes.clone()
    s2[:, 1, 50] = 1 - s2[:, 1, 50]
    assert torch.allclose(m.mean(s2, torch.tensor([0, 1]))[:, 0], m.mean(d.spikes, torch.tensor([0, 1]))[:, 0])


def test_multichannel_vae_trains_on_spines():
    from neuroinverse.inference import SpineCalciumModel
    from neuroinverse.simulators.calcium import simulate_spines

    d = simulate_spines(2, 600, n_spines=2, generator=torch.Generator().manual_seed(0))
    net = FactorisedSpikeCNN((4,), (9,), 5, in_channels=3, out_channels=3)
    vae = SpikeVAE(net, SpineCalciumModel(2, n_spines=2), prior_rate=(0.5 / 60, 1 / 60, 1 / 60), buffers=(50, 25))
    sn = make_snippets(d.fluorescence, 200, 100)
    assert sn.shape == (2, 5, 3, 200)
    h = train_spike_vae(vae, sn, n_steps=3, batch_size=2, n_samples=4, progress=False)
    assert all(math.isfinite(x) for x in h.loss)
    assert vae.spike_probability(d.fluorescence).shape == (2, 3, 600)
    with pytest.raises(ValueError, match="channels"):
        net(torch.zeros(1, 2, 100))


def test_supervised_cnn_learns_from_true_spikes_and_checks_input():
    from neuroinverse.inference.supervised import train_supervised_spikes

    d = simulate_linear(2, 1200, rate_hz=2.0, generator=torch.Generator().manual_seed(0))
    f, s = make_snippets(d.fluorescence, 300, 150), make_snippets(d.spikes, 300, 150)
    torch.manual_seed(0)
    net = FactorisedSpikeCNN((8, 8), (15, 9), 9)
    h = train_supervised_spikes(net, f, s, n_steps=150, batch_size=8, progress=False)
    assert sum(h.loss[-10:]) < sum(h.loss[:10])
    assert binned_correlation(net.spike_probability(d.fluorescence), d.spikes, bin_width=2) > 0.5
    with pytest.raises(ValueError, match="match"):
        train_supervised_spikes(net, f, s[:, :2], n_steps=1, batch_size=2)
    with pytest.raises(ValueError, match="0 or 1"):
        train_supervised_spikes(net, f, 2 * s, n_steps=1, batch_size=2)
