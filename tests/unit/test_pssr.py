"""Tests of the PSSR pieces: crappifiers, frame stacks, the networks, training and image metrics."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio

from neuroinverse.inference import pssr_batch, restore, restore_movie, stack_movie, train_pssr
from neuroinverse.metrics import frc, frc_cutoff, pssr_normalise, pssr_psnr, pssr_ssim, squirrel_error_map
from neuroinverse.models import LRResUNet, PSSRUNet
from neuroinverse.simulators import CRAPPIFIERS, crappify, downsample, em_tissue, frame_stack


@pytest.mark.parametrize("kind", CRAPPIFIERS)
def test_crappifiers_shapes_and_range(kind):
    x = torch.rand(2, 3, 32, 32)
    y = crappify(x, kind, factor=4, generator=torch.Generator().manual_seed(0))
    assert y.shape == (2, 3, 8, 8)
    assert y.min() >= 0 and y.max() <= 1


def test_downsample_crappifier_is_the_point_downsampling():
    x = torch.rand(2, 32, 32, dtype=torch.float64)
    np.testing.assert_allclose(crappify(x, "downsample").numpy(), downsample(x.numpy(), 4))


def test_em_ag_noise_has_the_local_variance():
    x = torch.full((64, 256, 256), 0.5, dtype=torch.float64)
    y = crappify(x, "em_ag", factor=1, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(float(y.var()), 0.05 * 0.5, rtol=0.03)
    # after the 4x point downsampling (mean of the central 2x2) the variance is a quarter
    y4 = crappify(x, "em_ag", factor=4, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(float(y4.var()), 0.05 * 0.5 / 4, rtol=0.05)


def test_noise_is_independent_across_frames_and_bad_input():
    x = torch.full((1, 5, 32, 32), 0.5)
    y = crappify(x, "em_ag", factor=1, generator=torch.Generator().manual_seed(0))
    assert abs(np.corrcoef(y[0, 0].ravel(), y[0, 1].ravel())[0, 1]) < 0.1
    with pytest.raises(ValueError, match="kind"):
        crappify(x, "blur")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        crappify(x + 1, "em_ag")
    with pytest.raises(ValueError, match="factor"):
        crappify(torch.rand(30, 30), "downsample", factor=4)


def test_frame_stack_replicates_edges():
    m = torch.arange(4.0)[:, None, None].expand(4, 2, 2)
    assert frame_stack(m, 0, 5)[:, 0, 0].tolist() == [0, 0, 0, 1, 2]
    assert frame_stack(m, 3, 5)[:, 0, 0].tolist() == [1, 2, 3, 3, 3]
    assert stack_movie(m.numpy(), 3).shape == (4, 3, 2, 2)
    with pytest.raises(ValueError, match="odd"):
        frame_stack(m, 0, 4)
    with pytest.raises(ValueError, match="t must"):
        frame_stack(m, 4, 3)


def test_pssr_batch_pairs_are_aligned():
    hr = torch.rand(3, 64, 64)
    lr, tgt = pssr_batch(
        hr, kind="downsample", factor=4, tile=32, batch=6, frames=1, generator=torch.Generator().manual_seed(0)
    )
    assert lr.shape == (6, 1, 8, 8) and tgt.shape == (6, 1, 32, 32)
    np.testing.assert_allclose(lr.numpy(), downsample(tgt.numpy(), 4), atol=1e-6)
    mov = torch.rand(2, 6, 64, 64)
    lr, tgt = pssr_batch(mov, kind="em_ag", factor=4, tile=32, batch=3, frames=5, generator=torch.Generator())
    assert lr.shape == (3, 5, 8, 8) and tgt.shape == (3, 1, 32, 32)


def test_networks_shapes_and_residual():
    net = LRResUNet(5, 4, (8, 16))
    assert net(torch.rand(2, 5, 8, 12)).shape == (2, 1, 32, 48)
    for p in net.head.parameters():
        torch.nn.init.zeros_(p)
    x = torch.rand(1, 5, 8, 8)
    base = torch.nn.functional.interpolate(x[:, 2:3], scale_factor=4, mode="bilinear", align_corners=False)
    torch.testing.assert_close(net(x), base)  # zero head: the bilinear upsampling of the centre frame
    with pytest.raises(ValueError, match="divisible"):
        LRResUNet(1, 4, (8, 16, 32))(torch.rand(1, 1, 6, 6))
    with pytest.raises(ValueError, match="input must"):
        net(torch.rand(1, 1, 8, 8))
    big = PSSRUNet(1, 4, base=8)
    assert big(torch.rand(1, 1, 8, 8)).shape == (1, 1, 32, 32)
    with pytest.raises(ValueError, match="32"):
        big(torch.rand(1, 1, 4, 6))
    with pytest.raises(ValueError, match="base"):
        PSSRUNet(1, 4, base=12)


def test_training_reduces_the_loss_and_restores():
    torch.manual_seed(0)
    hr = np.stack([em_tissue((64, 64), seed=s).image for s in range(4)])
    net = LRResUNet(1, 4, (8, 16))
    hist = train_pssr(net, hr, kind="em_ag", tile=32, batch=8, steps=60, max_lr=3e-3)
    assert np.mean(hist.loss[-10:]) < np.mean(hist.loss[:10])
    out = restore(net, downsample(hr, 4))
    assert out.shape == (4, 64, 64) and out.dtype == np.float32
    assert restore_movie(LRResUNet(3, 4, (8, 16)), downsample(hr, 4)).shape == (4, 64, 64)


def test_pssr_normalisation_is_invariant_to_gain_and_offset():
    rng = np.random.default_rng(0)
    g = ndimage.gaussian_filter(rng.random((64, 64)), 2)
    p = g + 0.01 * rng.standard_normal(g.shape)
    assert pssr_psnr(3.0 * p + 7.0, g) == pytest.approx(pssr_psnr(p, g), abs=1e-9)
    assert pssr_ssim(3.0 * p + 7.0, g) == pytest.approx(pssr_ssim(p, g), abs=1e-9)
    pn, gn = pssr_normalise(p, g)
    assert abs(pn.mean()) < 1e-12 and abs(gn.mean()) < 1e-12
    lo, hi = np.percentile(g, (0.1, 99.9))
    assert pssr_psnr(p, g) == pytest.approx(peak_signal_noise_ratio(gn, pn, data_range=1.0))
    assert pssr_psnr(p, g) > pssr_psnr(ndimage.gaussian_filter(p, 2), g)
    with pytest.raises(ValueError, match="shape"):
        pssr_psnr(p, g[:10])


def test_frc_of_identical_and_independent_images():
    rng = np.random.default_rng(0)
    a = rng.random((64, 64))
    f, c = frc(a, a)
    assert f.shape == c.shape == (32,) and f[-1] == 0.5
    np.testing.assert_allclose(c, 1.0)
    _, c2 = frc(rng.random((128, 128)), rng.random((128, 128)))
    assert np.abs(c2[8:]).mean() < 0.1  # rings of many pixels: near zero
    # a blurred copy correlates up to a lower frequency
    s = ndimage.gaussian_filter(a, 0.5)
    noisy = s + 0.2 * rng.standard_normal(a.shape)
    cut = frc_cutoff(*frc(ndimage.gaussian_filter(noisy, 3), s))
    assert cut < frc_cutoff(*frc(noisy, s))
    assert frc_cutoff([0.1, 0.2, 0.3], [1.0, 0.5, 0.0], threshold=0.25) == pytest.approx(0.25)
    assert frc_cutoff([0.1, 0.2], [1.0, 0.9]) == 0.2


def test_squirrel_recovers_blur_scale_and_offset():
    rng = np.random.default_rng(1)
    sr = ndimage.gaussian_filter(rng.random((64, 64)), 1)
    ref = 2.0 * ndimage.gaussian_filter(sr, 1.5) + 0.3
    r = squirrel_error_map(sr, ref)
    assert r.sigma == 1.5 and r.gain == pytest.approx(2.0) and r.offset == pytest.approx(0.3)
    assert r.rse < 1e-8 and r.rsp == pytest.approx(1.0) and r.error_map.shape == (64, 64)
    worse = squirrel_error_map(sr + 0.1 * rng.standard_normal(sr.shape), ref)
    assert worse.rse > r.rse and worse.rsp < r.rsp


def test_roughness_and_temporal_flicker_on_analytic_cases():
    from neuroinverse.metrics import roughness, temporal_flicker

    assert roughness(np.full((8, 8), 0.3)) == 0.0
    assert roughness(np.array([[0.0, 1.0], [0.0, 1.0]])) == pytest.approx(0.5)
    truth = np.stack([np.full((4, 4), t / 10) for t in range(5)])  # brightening by 0.1 per frame
    assert temporal_flicker(truth + 0.2, truth) == pytest.approx(0.0, abs=1e-12)  # an offset does not flicker
    noisy = truth.copy()
    noisy[2] += 0.3  # one frame off by 0.3: two frame-to-frame changes off by 0.3 of four
    assert temporal_flicker(noisy, truth) == pytest.approx(0.15)
    with pytest.raises(ValueError, match="movies"):
        temporal_flicker(truth[0], truth[0])
    with pytest.raises(ValueError, match="finite"):
        roughness(np.array([np.nan]))
