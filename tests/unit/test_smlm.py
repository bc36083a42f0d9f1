"""SMLM simulator: PSF integrals, camera noise statistics, blinking, batching, bad input."""

import math

import pytest
import torch

from neuroinverse.simulators import (
    Camera,
    EmitterTable,
    GaussianPSF,
    SMLMSimulator,
    mortensen_precision,
    render_gaussian,
    sample_blinking,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def table(x, y, photons, frame=None, z=None, n_frames=1):
    x = torch.as_tensor(x, dtype=torch.float64)
    return EmitterTable(
        frame=torch.zeros(len(x), dtype=torch.long) if frame is None else torch.as_tensor(frame),
        x=x,
        y=torch.as_tensor(y, dtype=torch.float64),
        z=torch.zeros_like(x) if z is None else torch.as_tensor(z, dtype=torch.float64),
        photons=torch.as_tensor(photons, dtype=torch.float64),
        n_frames=n_frames,
    )


def test_psf_sums_to_photons_and_matches_erf_differences():
    psf = GaussianPSF(sigma0=1.3)
    t = table([20.3], [17.8], [5000.0])
    img = psf.render(t, (40, 41))[0]
    assert img.shape == (40, 41)
    assert img.sum().item() == pytest.approx(5000.0, rel=1e-9)
    # one pixel by hand: N/4 [erf((i+½−x)/√2σ) − erf((i−½−x)/√2σ)] [same in y]
    i, j = 22, 16  # column, row
    s = 1.3 * math.sqrt(2)
    ex = math.erf((i + 0.5 - 20.3) / s) - math.erf((i - 0.5 - 20.3) / s)
    ey = math.erf((j + 0.5 - 17.8) / s) - math.erf((j - 0.5 - 17.8) / s)
    assert img[j, i].item() == pytest.approx(5000.0 / 4 * ex * ey, rel=1e-10)


def test_psf_axes_are_column_x_row_y():
    t = table([2.0], [7.0], [100.0])
    img = GaussianPSF().render(t, (10, 12))[0]
    r, c = divmod(int(img.argmax()), 12)
    assert (r, c) == (7, 2)


def test_astigmatic_widths():
    psf = GaussianPSF(sigma0=1.0, astigmatic=True)
    sx, sy = psf.sigmas(torch.tensor([-250.0, 0.0, 250.0]))
    assert sx[0].item() == pytest.approx(1.0) and sy[2].item() == pytest.approx(1.0)
    assert sx[1].item() == pytest.approx(sy[1].item())
    assert sx[2].item() == pytest.approx(math.sqrt(1 + (500 / 280) ** 2))
    img = psf.render(table([10.0], [10.0], [1000.0], z=[300.0]), (21, 21))[0]
    # above focus: wide in x, narrow in y
    var_x = (img.sum(0) * (torch.arange(21.0) - 10) ** 2).sum() / img.sum()
    var_y = (img.sum(1) * (torch.arange(21.0) - 10) ** 2).sum() / img.sum()
    assert var_x > 2 * var_y


def _photon_stats(cam, mu, n=200_000, seed=0):
    exp = torch.full((n,), float(mu), dtype=torch.float64)
    ph = cam.backward(cam.forward(exp, generator=gen(seed)))
    return ph.mean().item(), ph.var().item()


def test_emccd_excess_noise_factor_two():
    cam = Camera.emccd()
    m, v = _photon_stats(cam, 50.0)
    assert m == pytest.approx(50.0, abs=0.15)
    # Var = F² μ + (σ_read / G)² with F² = 2
    assert v == pytest.approx(2 * 50.0 + (74.4 / 300) ** 2, rel=0.02)


def test_scmos_read_noise_and_perfect_camera():
    cam = Camera.scmos(read_sigma=3.0, e_per_adu=1.0)
    m, v = _photon_stats(cam, 20.0)
    assert m == pytest.approx(20.0 - 0.5, abs=0.05)  # flooring to ADU costs half an ADU
    assert v == pytest.approx(20.0 + 9.0 + 1 / 12, rel=0.02)
    m, v = _photon_stats(Camera.perfect(), 7.0)
    assert m == pytest.approx(7.0, abs=0.03) and v == pytest.approx(7.0, rel=0.02)


def test_scmos_per_pixel_read_noise_map():
    rs = torch.tensor([[0.0, 10.0]], dtype=torch.float64)
    cam = Camera.scmos(read_sigma=rs, e_per_adu=1.0)
    x = cam.backward(cam.forward(torch.full((20000, 1, 2), 5.0, dtype=torch.float64), generator=gen()))
    v = x.var(0)[0]
    assert v[0].item() == pytest.approx(5 + 1 / 12, rel=0.05)
    assert v[1].item() == pytest.approx(105 + 1 / 12, rel=0.05)


def test_blinking_density_and_partial_frames():
    t = sample_blinking(
        n_sequences=1,
        n_frames=4000,
        em_avg=5.0,
        tau=2.0,
        flux_mean=1000.0,
        flux_std=0.0,
        frame_shape=(20, 30),
        generator=gen(1),
    )
    assert t.counts().float().mean().item() == pytest.approx(5.0, rel=0.05)
    assert t.photons.max().item() <= 1000.0 + 1e-3
    assert (t.photons < 999.0).any()  # partial first/last frames are dimmer
    assert t.x.min() >= -0.5 and t.x.max() <= 29.5 and t.y.max() <= 19.5
    # a fluorophore is visible in consecutive frames: ~τ + 1 frames on average
    per_id = torch.bincount(t.id)
    assert per_id[per_id > 0].float().mean().item() == pytest.approx(3.0, rel=0.1)


def test_batched_rendering_equals_per_frame():
    sim = SMLMSimulator(frame_shape=(16, 18), density=2.0, flux_mean=2000, flux_std=500, background=(10, 20))
    b = sim.sample(3, 4, generator=gen(2))
    assert b.frames.shape == b.adu.shape == b.expected.shape == (3, 4, 16, 18)
    H, W = sim.frame_shape
    for f in range(12):
        one = b.truth.in_frames(f, f + 1)
        img = sim.psf.render(one, (H, W))[0] + b.background.flatten()[f]
        assert torch.allclose(img, b.expected.flatten(0, 1)[f], atol=1e-4)
    assert len(b.labels) <= len(b.truth) and (b.labels.photons >= 100).all()


def test_simulation_is_reproducible():
    sim = SMLMSimulator(frame_shape=(12, 12), density=1.0)
    a, b = sim.sample(2, 3, generator=gen(5)), sim.sample(2, 3, generator=gen(5))
    assert torch.equal(a.adu, b.adu) and torch.equal(a.truth.x, b.truth.x)


def test_mortensen_precision_limits():
    # no background: var = F (σa²/N) 16/9
    p = mortensen_precision(torch.tensor([1000.0]), 0.0, sigma=1.0, pixel_size=100.0)
    sa2 = 100.0**2 + 100.0**2 / 12
    assert p.item() == pytest.approx(math.sqrt(sa2 / 1000 * 16 / 9))
    p2 = mortensen_precision(torch.tensor([1000.0]), 0.0, excess_noise=2.0)
    assert p2.item() == pytest.approx(p.item() * math.sqrt(2))


def test_bad_input():
    with pytest.raises(ValueError, match="negative"):
        GaussianPSF().render(table([1.0], [1.0], [-5.0]), (5, 5))
    with pytest.raises(ValueError, match="negative"):
        Camera.emccd().forward(torch.full((2, 2), -1.0))
    with pytest.raises(ValueError, match="flux_mean"):
        SMLMSimulator(flux_mean=-10.0)
    with pytest.raises(ValueError, match="pixel_size"):
        SMLMSimulator(pixel_size=(100.0, -1.0))
    with pytest.raises(ValueError, match="frame"):
        EmitterTable(
            frame=torch.tensor([3]),
            x=torch.zeros(1),
            y=torch.zeros(1),
            z=torch.zeros(1),
            photons=torch.ones(1),
            n_frames=2,
        )
    with pytest.raises(ValueError, match="shape"):
        EmitterTable(
            frame=torch.tensor([0]),
            x=torch.zeros(2),
            y=torch.zeros(1),
            z=torch.zeros(1),
            photons=torch.ones(1),
            n_frames=2,
        )
    with pytest.raises(ValueError, match="density"):
        SMLMSimulator(density=(2.0, 1.0))
    with pytest.raises(ValueError, match="photons"):
        mortensen_precision(torch.tensor([0.0]), 1.0)
    # an empty table renders background-free empty frames
    assert (
        render_gaussian(torch.zeros(0, dtype=torch.long), *(torch.zeros(0),) * 5, n_frames=2, shape=(3, 3)).abs().sum()
        == 0
    )
