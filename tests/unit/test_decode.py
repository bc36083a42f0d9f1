"""DECODE network, loss, targets, post-processing and inference: shapes, definitions, bad input."""

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from neuroinverse.inference import (
    DecodeTargets,
    decode_loss,
    localise,
    make_targets,
    mixture_sigma,
    post_process,
    predict,
    simulate_windows,
    train_decode,
    window_batch,
)
from neuroinverse.models import DecodeNet, DecodeScales
from neuroinverse.simulators import EmitterTable, SMLMSimulator

pytestmark = pytest.mark.usefixtures("one_thread")


SC = DecodeScales(input_offset=30.0, input_scale=60.0, phot_max=1000.0, bg_max=50.0)


def tiny_net(n_frames=3, three_d=False):
    torch.manual_seed(0)
    return DecodeNet(scales=SC, n_frames=n_frames, features=4, depth=1, inter_features=4, three_d=three_d)


def test_forward_shapes_ranges_and_initial_p():
    net = tiny_net()
    out = net(30 + torch.randn(2, 3, 8, 8))
    assert out["p"].shape == (2, 1, 8, 8) and out["mean"].shape == (2, 3, 8, 8)
    assert out["sigma"].shape == (2, 3, 8, 8) and out["bg"].shape == (2, 1, 8, 8)
    assert out["logit"].abs().max() <= 8
    assert (out["sigma"] > 0.001 - 1e-7).all() and (out["sigma"] <= 3.001).all()
    assert out["mean"][:, 1:].abs().max() <= 1 and (out["mean"][:, 0] >= 0).all()
    # p-head bias −6: the expected count starts far below K / 2
    assert out["p"].mean().item() < 0.05
    net3 = tiny_net(three_d=True)
    assert net3(torch.zeros(1, 3, 8, 8))["mean"].shape == (1, 4, 8, 8)


def hand_case():
    # one frame of 2 × 3 pixels; two true emitters
    p = torch.tensor([[0.1, 0.7, 0.05], [0.2, 0.01, 0.3]])
    mean = torch.stack(
        [
            torch.full((2, 3), 0.5),
            torch.tensor([[0.1, -0.2, 0.0], [0.3, 0.0, -0.4]]),
            torch.tensor([[0.0, 0.25, 0.1], [-0.1, 0.2, 0.0]]),
        ]
    )
    sigma = torch.stack([torch.full((2, 3), 0.2), torch.full((2, 3), 0.3), torch.full((2, 3), 0.4)])
    bg = torch.full((1, 1, 2, 3), 0.6)
    out = dict(p=p[None, None], mean=mean[None], sigma=sigma[None], bg=bg)
    u = torch.tensor([[[0.45, 1.1, 0.2], [0.6, 2.0, 0.8]]])
    tg = DecodeTargets(u=u, mask=torch.tensor([[True, True]]), bg=torch.tensor([0.5]))
    return out, tg, p, mean, sigma


def test_loss_equals_its_definition_on_a_hand_built_case():
    out, tg, p, mean, sigma = hand_case()
    terms = decode_loss(out, tg, reduce=False)
    # count: −log N(E; Σp, Σp(1−p)) times max(E, 1) = 2
    pf = p.flatten()
    count = -Normal(pf.sum(), (pf * (1 - pf)).sum().sqrt()).log_prob(torch.tensor(2.0)) * 2
    # localisation: mixture over pixels with weights p/Σp, means (N, c_x + dx, c_y + dy)
    cy, cx = torch.meshgrid(torch.arange(2.0), torch.arange(3.0), indexing="ij")
    mu = torch.stack([mean[0], mean[1] + cx, mean[2] + cy], -1).reshape(-1, 3)
    mix = MixtureSameFamily(
        Categorical(probs=pf / pf.sum()), Independent(Normal(mu, sigma.permute(1, 2, 0).reshape(-1, 3)), 1)
    )
    loc = -mix.log_prob(tg.u[0]).sum()
    bg = ((0.6 - 0.5) ** 2) * 6
    assert terms["count"].item() == pytest.approx(count.item(), rel=1e-5)
    assert terms["loc"].item() == pytest.approx(loc.item(), rel=1e-5)
    assert terms["bg"].item() == pytest.approx(bg, rel=1e-5)
    assert decode_loss(out, tg).item() == pytest.approx((count + loc).item() + bg, rel=1e-5)


def test_empty_frame_and_count_weight():
    out, tg, p, _, _ = hand_case()
    empty = DecodeTargets(u=torch.zeros(1, 1, 3), mask=torch.zeros(1, 1, dtype=torch.bool), bg=tg.bg)
    t1 = decode_loss(out, empty, reduce=False)
    pf = p.flatten()
    c = -Normal(pf.sum(), (pf * (1 - pf)).sum().sqrt()).log_prob(torch.tensor(0.0))
    assert t1["loc"].item() == 0.0 and t1["count"].item() == pytest.approx(c.item(), rel=1e-5)
    assert decode_loss(out, empty, count_weight="count", reduce=False)["count"].item() == 0.0
    with pytest.raises(ValueError, match="count_weight"):
        decode_loss(out, tg, count_weight="mean")


def test_gradients_reach_every_parameter():
    net = tiny_net()
    sim = SMLMSimulator(frame_shape=(8, 8), density=3.0, flux_mean=1000, flux_std=100, background=(20, 40))
    b = sim.sample(4, 3, generator=torch.Generator().manual_seed(0))
    tg = make_targets(b.labels, b.background.flatten(), frames=torch.arange(4) * 3 + 1, scales=SC)
    decode_loss(net(b.frames), tg).backward()
    for name, prm in net.named_parameters():
        assert prm.grad is not None and torch.isfinite(prm.grad).all(), name
        assert prm.grad.abs().sum() > 0, name


def test_fused_heads_equal_the_heads_run_one_by_one():
    for three_d in (False, True):
        net = tiny_net(three_d=three_d)
        feat = torch.randn(2, 4, 8, 8)
        ref = torch.cat([net.head_p(feat), net.head_mean(feat), net.head_sigma(feat), net.head_bg(feat)], 1)
        assert torch.allclose(net._heads(feat), ref, atol=1e-6)


def test_simulated_windows_layout_and_shared_training():
    a = SMLMSimulator(frame_shape=(8, 8), density=3.0, flux_mean=1000, flux_std=100, background=(20, 40))
    b = SMLMSimulator(frame_shape=(8, 8), density=0.0, flux_mean=1000, flux_std=100, background=(60, 80))
    w = simulate_windows(
        [a, b], n_steps=4, batch_size=5, scales=SC, generator=torch.Generator().manual_seed(0), chunk=3
    )
    assert w.frames.shape == (20, 3, 8, 8) and w.n_steps == 4 and w.targets.u.shape[0] == 20
    # each step: 3 windows of the first simulator (background 20-40), then 2 of the second (60-80, empty)
    bg = (w.targets.bg * SC.bg_max).reshape(4, 5)
    assert (bg[:, :3] <= 40).all() and (bg[:, 3:] >= 60).all()
    assert not w.targets.mask.reshape(4, 5, -1)[:, 3:].any()
    x, tg = w.batch(1)
    assert torch.equal(x, w.frames[5:10]) and tg.u.shape[1] == max(int(tg.mask.sum(1).max()), 1)
    with pytest.raises(ValueError, match="step"):
        w.batch(4)
    h = [train_decode(tiny_net(n_frames=n), w, n_steps=4, batch_size=5, progress=False) for n in (3, 1)]
    assert all(len(x.loss) == 4 and all(math.isfinite(v) for v in x.loss) for x in h)
    with pytest.raises(ValueError, match="batch_size"):
        train_decode(tiny_net(), w, n_steps=4, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="cover"):
        train_decode(tiny_net(), w, n_steps=5, batch_size=5, progress=False)


def test_make_targets_pads_per_frame():
    lab = EmitterTable(
        frame=torch.tensor([1, 4, 1, 3]),
        x=torch.tensor([1.0, 2.0, 3.0, 4.0]),
        y=torch.tensor([0.5, 0.5, 0.5, 0.5]),
        z=torch.zeros(4),
        photons=torch.tensor([100.0, 200.0, 300.0, 400.0]),
        n_frames=6,
    )
    tg = make_targets(lab, torch.arange(6.0) * 10, frames=torch.tensor([1, 4, 0]), scales=SC)
    assert tg.u.shape == (3, 2, 3)
    assert tg.mask.tolist() == [[True, True], [True, False], [False, False]]
    assert tg.u[0, :, 1].tolist() == [1.0, 3.0] and tg.u[1, 0, 0].item() == pytest.approx(0.2)
    assert tg.bg.tolist() == pytest.approx([10 / 50, 40 / 50, 0.0])


def test_post_process_spatial_integration():
    p = torch.full((1, 1, 6, 7), 0.01)
    p[0, 0, 2, 3] = 0.55  # a local maximum above raw_th; its neighbour (< split_th) is absorbed
    p[0, 0, 2, 4] = 0.15
    p[0, 0, 0, 1], p[0, 0, 0, 2] = 0.45, 0.15  # below raw_th: no candidate, however large the sum
    p[0, 0, 4, 0], p[0, 0, 4, 1] = 0.9, 0.8  # adjacent emitters: maximum + a split pixel > 0.6
    p[0, 0, 0, 6] = 0.3  # too weak
    mean = torch.zeros(1, 3, 6, 7)
    mean[0, 0] = 0.5
    mean[0, 1, 2, 3], mean[0, 2, 2, 3] = 0.25, -0.3
    out = dict(p=p, mean=mean, sigma=torch.full((1, 3, 6, 7), 0.1), bg=torch.full((1, 1, 6, 7), 0.4))
    loc = post_process(out, scales=SC)
    got = sorted(zip(loc.x.tolist(), loc.y.tolist(), strict=True))
    assert [v for xy in got for v in xy] == pytest.approx([0.0, 4.0, 1.0, 4.0, 3.25, 1.7])
    assert (loc.prob <= 1).all() and loc.photons[0].item() == pytest.approx(500.0)
    assert loc.background[0].item() == pytest.approx(20.0) and loc.pixel_size == SC.pixel_size


def test_mixture_sigma_on_a_known_case():
    # two pixels share one emitter: p = 0.3 at (row 2, col 2) and 0.1 at (2, 3), nothing else
    p = torch.zeros(1, 1, 5, 5)
    p[0, 0, 2, 2], p[0, 0, 2, 3] = 0.3, 0.1
    mean = torch.zeros(1, 3, 5, 5)
    mean[0, 1, 2, 2], mean[0, 1, 2, 3] = 0.2, -0.4  # component means x = 2.2 and 2.6
    mean[0, 2, 2, 2], mean[0, 2, 2, 3] = 0.1, 0.1  # same y: no spread in y
    sigma = torch.full((1, 3, 5, 5), 0.5)
    sigma[0, 1, 2, 2], sigma[0, 1, 2, 3] = 0.1, 0.2
    sigma[0, 2, 2, 2], sigma[0, 2, 2, 3] = 0.3, 0.3
    sx, sy = mixture_sigma(dict(p=p, mean=mean, sigma=sigma))
    w1, w2 = 0.75, 0.25
    mbar = w1 * 2.2 + w2 * 2.6
    want = math.sqrt(w1 * (0.01 + (2.2 - mbar) ** 2) + w2 * (0.04 + (2.6 - mbar) ** 2))
    assert sx[0, 0, 2, 2].item() == pytest.approx(want, rel=1e-5)
    assert sy[0, 0, 2, 2].item() == pytest.approx(0.3, rel=1e-5)
    # a lone pixel keeps its own sigma; post_process keeps positions and swaps sigma only
    p2 = torch.zeros(1, 1, 5, 5)
    p2[0, 0, 1, 1] = 0.9
    out = dict(p=p2, mean=mean, sigma=sigma, bg=torch.zeros(1, 1, 5, 5))
    assert mixture_sigma(out)[0][0, 0, 1, 1].item() == pytest.approx(0.5)
    out["p"] = p + 0.0
    out["p"][0, 0, 2, 2] = 0.7
    a, b = post_process(out, scales=SC), post_process(out, scales=SC, sigma_readout="mixture")
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert a.sigma_x.item() == pytest.approx(0.1) and b.sigma_x.item() > a.sigma_x.item()
    with pytest.raises(ValueError, match="sigma_readout"):
        post_process(out, scales=SC, sigma_readout="wide")


def test_windows_predict_and_localise():
    net = tiny_net().eval()
    frames = 30 + 5 * torch.randn(2, 4, 8, 8)
    w = window_batch(frames, 3)
    assert torch.equal(w[0], frames[0, [0, 0, 1]]) and torch.equal(w[7], frames[1, [2, 3, 3]])
    out = predict(net, frames, batch_size=3)
    with torch.no_grad():
        ref = net(w)
    assert torch.allclose(out["p"], ref["p"], atol=1e-6)
    assert predict(net, frames[0])["p"].shape == (4, 1, 8, 8)
    loc = localise(net, frames, raw_th=0.001)
    assert loc.n_frames == 8 and len(loc) > 0


def test_training_reduces_loss_and_is_reproducible():
    sim = SMLMSimulator(frame_shape=(8, 8), density=3.0, flux_mean=1000, flux_std=100, background=(20, 40))
    held = sim.sample(16, 3, generator=torch.Generator().manual_seed(9))
    tg = make_targets(held.labels, held.background.flatten(), frames=torch.arange(16) * 3 + 1, scales=SC)
    losses, held_out = [], []
    for _ in range(2):
        net = tiny_net()
        with torch.no_grad():
            before = decode_loss(net(held.frames), tg).item()
        h = train_decode(net, [sim, sim], n_steps=15, batch_size=8, lr=1e-2, progress=False, seed=1)
        with torch.no_grad():
            held_out.append((before, decode_loss(net(held.frames), tg).item()))
        losses.append(h.loss)
    assert losses[0] == losses[1]
    assert held_out[0][1] < 0.5 * held_out[0][0]
    assert set(h.metrics) == {"count", "loc", "bg"}


def test_bad_input():
    net = tiny_net()
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match=r"\(T, H, W\) or \(B, T, H, W\)"):
        predict(net, torch.zeros(8, 8))
    with pytest.raises(ValueError, match=r"\(T, H, W\) or \(B, T, H, W\)"):
        localise(net, torch.zeros(1, 1, 2, 8, 8))
    with pytest.raises(ValueError, match="pixel_size"):
        localise(net, torch.zeros(3, 8, 8), pixel_size=160.0)
    with pytest.raises(ValueError, match="n_frames"):
        DecodeNet(scales=SC, n_frames=2)
    with pytest.raises(ValueError, match="pixel_size"):
        train_decode(net, SMLMSimulator(frame_shape=(8, 8), pixel_size=(160.0, 160.0)), n_steps=1, progress=False)
    with pytest.raises(ValueError, match="raw_th"):
        post_process(net(torch.zeros(1, 3, 8, 8)), scales=SC, raw_th=1.5)
    assert math.isfinite(SC.phot_max)
