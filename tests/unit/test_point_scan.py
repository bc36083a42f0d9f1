"""Tests of the point-scanning acquisition model and the pixel-centre resampling convention."""

import numpy as np
import pytest
import torch

from neuroinverse.simulators import (
    downsample,
    downsample_torch,
    gaussian_blur,
    gaussian_blur_torch,
    point_scan,
    point_scan_torch,
    upsample,
    upsample_torch,
)


def test_shapes_and_determinism():
    x = np.random.default_rng(0).random((32, 48))
    y = point_scan(x, factor=4, seed=1)
    assert y.shape == (8, 12) and y.dtype == np.float64
    np.testing.assert_array_equal(y, point_scan(x, factor=4, seed=1))
    assert not np.array_equal(y, point_scan(x, factor=4, seed=2))
    np.testing.assert_array_equal(y, point_scan(x, factor=4, generator=np.random.default_rng(1)))


@pytest.mark.parametrize("dwell", [0.5, 2.0, 8.0])
def test_poisson_variance_scales_with_dwell(dwell):
    x = np.full((128, 128), 0.5)
    lam = 10.0 * dwell
    y = point_scan(x, dwell_us=dwell, photons_per_us=10.0, blur_px=0.0, detector_sigma=0.0, seed=0)
    assert abs(y.mean() - 0.5) < 4 * np.sqrt(0.5 / lam / y.size)
    np.testing.assert_allclose(y.var(), 0.5 / lam, rtol=0.05)
    # counts are integers: y * λ
    np.testing.assert_allclose(y * lam, np.round(y * lam), atol=1e-9)


def test_detector_noise_adds_variance():
    x = np.full((128, 128), 0.5)
    y = point_scan(x, dwell_us=1.0, photons_per_us=50.0, blur_px=0.0, detector_sigma=0.05, seed=0)
    np.testing.assert_allclose(y.var(), 0.5 / 50 + 0.05**2, rtol=0.05)


def test_mask_rescans_only_chosen_pixels_and_dwell_maps():
    x = np.full((16, 16), 0.5)
    mask = np.zeros((16, 16), bool)
    mask[3:6, 2:9] = True
    y = point_scan(x, mask=mask, seed=0)
    assert np.isfinite(y[mask]).all() and np.isnan(y[~mask]).all()
    y0 = point_scan(x, mask=mask, fill_value=0.0, seed=0)
    assert np.all(y0[~mask] == 0.0)
    dmap = np.where(np.arange(16)[None, :] < 8, 0.1, 100.0) * np.ones((16, 1))
    big = np.full((128, 128), 0.5)
    y = point_scan(big, factor=8, dwell_us=dmap, photons_per_us=10.0, blur_px=0.0, detector_sigma=0.0, seed=0)
    assert y[:, :8].var() > 100 * y[:, 8:].var()


def test_pixel_centre_convention_with_a_shifted_delta():
    # a delta at fine (9, 6) lies in coarse pixel (2, 1) of a 4x downsampling; point sampling
    # at the centres 4i+1.5 sees it only through the central 2x2 of its block
    x = np.zeros((16, 16))
    x[9, 6] = 1.0
    d = downsample(x, 4)
    assert d[2, 1] == 0.25 and d.sum() == 0.25
    x[9, 6], x[8, 4] = 0.0, 1.0  # off the central 2x2: invisible without a probe blur
    assert downsample(x, 4).sum() == 0.0
    # a Gaussian blob at fine (y0, x0) has its coarse centroid at ((y0-1.5)/4, (x0-1.5)/4)
    yy, xx = np.mgrid[0:64, 0:64]
    y0, x0 = 29.5, 22.0
    blob = np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * 4.0**2))
    c = downsample(blob, 4, mode="area")
    cy, cx = np.mgrid[0:16, 0:16]
    np.testing.assert_allclose(
        [(c * cy).sum() / c.sum(), (c * cx).sum() / c.sum()], [(y0 - 1.5) / 4, (x0 - 1.5) / 4], atol=1e-3
    )
    # an upsampled coarse delta is centred on the centre of its block
    e = np.zeros((8, 8))
    e[3, 5] = 1.0
    u = upsample(e, 4, order=1)
    fy, fx = np.mgrid[0:32, 0:32]
    np.testing.assert_allclose([(u * fy).sum() / u.sum(), (u * fx).sum() / u.sum()], [4 * 3 + 1.5, 4 * 5 + 1.5])


def test_down_then_up_reproduces_a_ramp():
    # a linear ramp survives point downsampling + bilinear interpolation exactly away from the
    # edges; a corner-to-corner zoom would shift it by 1.5 fine pixels (0.015 here)
    yy, xx = np.mgrid[0:64, 0:64].astype(float)
    ramp = 0.01 * yy + 0.004 * xx
    back = upsample(downsample(ramp, 4), 4, order=1)
    np.testing.assert_allclose(back[8:-8, 8:-8], ramp[8:-8, 8:-8], atol=1e-9)
    # bicubic (Keys, a = -0.75) is not exact on ramps but has no net shift
    cub = upsample(downsample(ramp, 4), 4, order=3)[8:-8, 8:-8] - ramp[8:-8, 8:-8]
    assert abs(cub.mean()) < 1e-3 and np.abs(cub).max() < 3e-3


def test_torch_versions_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.random((2, 32, 32))
    t = torch.tensor(x)
    for mode in ("point", "area"):
        np.testing.assert_allclose(downsample_torch(t, 4, mode=mode).numpy(), downsample(x, 4, mode=mode))
    for s in (0.7, 3.0):
        np.testing.assert_allclose(gaussian_blur_torch(t, s)[0].numpy(), gaussian_blur(x[0], s), atol=1e-12)
    np.testing.assert_allclose(upsample_torch(t, 2, order=3)[1].numpy(), upsample(x[1], 2, order=3))
    y = point_scan_torch(torch.full((4, 64, 64), 0.5), factor=2, dwell_us=2.0, photons_per_us=5.0, detector_sigma=0.0)
    assert y.shape == (4, 32, 32)
    np.testing.assert_allclose(float(y.var()), 0.5 / 10, rtol=0.1)


@pytest.mark.parametrize(
    "image, kwargs, match",
    [
        (np.full((8, 8), 1.5), {}, r"\[0, 1\]"),
        (np.full((8, 8), -0.1), {}, r"\[0, 1\]"),
        (np.zeros((2, 8, 8)), {}, "2-D"),
        (np.zeros(8), {}, "2-D"),
        (np.zeros((8, 8)), dict(factor=3), "factor 3 must divide"),
        (np.zeros((8, 8)), dict(factor=0), "factor"),
        (np.zeros((8, 8)), dict(dwell_us=0.0), "dwell_us"),
        (np.zeros((8, 8)), dict(dwell_us=-1.0), "dwell_us"),
        (np.zeros((8, 8)), dict(photons_per_us=0.0), "photons_per_us"),
        (np.zeros((8, 8)), dict(blur_px=-1.0), "blur_px"),
        (np.zeros((8, 8)), dict(detector_sigma=-0.1), "detector_sigma"),
        (np.zeros((8, 8)), dict(mask=np.ones((4, 4), bool)), "mask"),
        (np.zeros((8, 8)), dict(dwell_us=np.ones((3, 3))), "dwell_us"),
    ],
)
def test_bad_input(image, kwargs, match):
    with pytest.raises(ValueError, match=match):
        point_scan(image, **kwargs)


def test_bad_resampling_arguments():
    with pytest.raises(ValueError, match="factor"):
        downsample(np.zeros((6, 6)), 4)
    with pytest.raises(ValueError, match="mode"):
        downsample(np.zeros((8, 8)), 4, mode="cubic")
    with pytest.raises(ValueError, match="order"):
        upsample(np.zeros((4, 4)), 2, order=2)
    with pytest.raises(ValueError, match="sigma_px"):
        gaussian_blur(np.zeros((4, 4)), -1)
