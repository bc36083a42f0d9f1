"""Classical SMLM fitter: exact recovery, Cramér–Rao precision, detection, PSF calibration, bad input."""

import math

import pytest
import torch

from neuroinverse.inference import (
    calibrate_psf,
    detect_spots,
    extract_rois,
    fit_frames,
    fit_gaussian_mle,
)
from neuroinverse.simulators import EmitterTable, GaussianPSF, SMLMSimulator

pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def spots(x, y, photons, z=None, n=None):
    x = torch.as_tensor(x, dtype=torch.float64)
    n = len(x)
    return EmitterTable(
        frame=torch.arange(n),
        x=x,
        y=torch.as_tensor(y, dtype=torch.float64),
        z=torch.zeros(n, dtype=torch.float64) if z is None else torch.as_tensor(z, dtype=torch.float64),
        photons=torch.as_tensor(photons, dtype=torch.float64),
        n_frames=n,
    )


def test_noiseless_spot_recovered_exactly():
    psf = GaussianPSF(sigma0=1.0)
    img = psf.render(spots([3.37], [2.71], [2000.0]), (7, 7)) + 20.0
    fit = fit_gaussian_mle(img, psf=psf, n_iter=30)
    x, y, N, b = fit.params[0].tolist()
    assert abs(x - 3.37) < 1e-3 and abs(y - 2.71) < 1e-3
    assert N == pytest.approx(2000.0, rel=1e-4) and b == pytest.approx(20.0, rel=1e-4)


def test_noiseless_astigmatic_spot_recovers_z():
    psf = GaussianPSF(sigma0=1.0, astigmatic=True)
    img = psf.render(spots([4.2], [3.9], [3000.0], z=[180.0]), (9, 9)) + 10.0
    init = torch.tensor([[4.0, 4.0, 0.0, 2500.0, 12.0]], dtype=torch.float64)
    fit = fit_gaussian_mle(img, psf=psf, init=init, n_iter=40)
    x, y, z, N, b = fit.params[0].tolist()
    assert abs(x - 4.2) < 1e-3 and abs(y - 3.9) < 1e-3 and abs(z - 180.0) < 0.5


def test_noisy_spots_reach_the_cramer_rao_bound():
    n, psf = 1000, GaussianPSF(sigma0=1.0)
    g = gen(1)
    x0 = 4 + torch.rand(n, generator=g, dtype=torch.float64) - 0.5
    y0 = 4 + torch.rand(n, generator=g, dtype=torch.float64) - 0.5
    mu = psf.render(spots(x0, y0, torch.full((n,), 1000.0)), (9, 9)) + 10.0
    fit = fit_gaussian_mle(torch.poisson(mu, generator=g), psf=psf, n_iter=20)
    err = fit.params[:, 0] - x0
    assert abs(err.mean().item()) < 0.01
    # empirical SD within 10 % of the mean Cramér–Rao bound
    assert err.std().item() == pytest.approx(fit.crlb[:, 0].mean().item(), rel=0.1)


def test_detection_and_pipeline_on_sparse_frames():
    sim = SMLMSimulator(frame_shape=(32, 32), density=0.3, flux_mean=3000, flux_std=0, background=(20, 20), tau=1.0)
    b = sim.sample(1, 20, generator=gen(3))
    frames = b.frames[0]
    f, r, c = detect_spots(frames)
    assert f.numel() >= 0.8 * len(b.labels)
    rois, mask, origin = extract_rois(frames, f, r, c, size=7)
    assert rois.shape == (f.numel(), 7, 7) and mask.shape == rois.shape
    corner = (r == 0) | (c == 0)
    assert (~mask[corner]).any() or not corner.any()
    loc = fit_frames(frames, psf=sim.psf, excess_noise=2.0)
    assert loc.n_frames == 20 and len(loc) > 0 and loc.sigma_x.gt(0).all()


def test_calibrate_psf_recovers_width_from_true_emitters():
    sim = SMLMSimulator(
        frame_shape=(20, 20),
        density=1.0,
        flux_mean=3000,
        flux_std=300,
        background=(20, 30),
        psf=GaussianPSF(sigma0=1.25),
    )
    b = sim.sample(1, 10, generator=gen(4))
    s0, trace = calibrate_psf(b.frames[0], b.truth, background=b.background[0], psf=GaussianPSF(1.0), n_iter=15)
    assert s0 == pytest.approx(1.25, rel=0.03) and trace[0] == pytest.approx(1.0) and len(trace) > 3


def test_bad_input():
    psf = GaussianPSF()
    with pytest.raises(ValueError, match="n_frames, H, W"):
        detect_spots(torch.zeros(8, 8))
    with pytest.raises(ValueError, match="n_frames, H, W"):
        fit_frames(torch.zeros(1, 2, 8, 8), psf=psf)
    with pytest.raises(ValueError, match="size"):
        extract_rois(
            torch.zeros(1, 8, 8),
            torch.zeros(1, dtype=torch.long),
            torch.zeros(1, dtype=torch.long),
            torch.zeros(1, dtype=torch.long),
            size=6,
        )
    with pytest.raises(ValueError, match="rois"):
        fit_gaussian_mle(torch.zeros(2, 5, 7), psf=psf)
    with pytest.raises(ValueError, match="empty"):
        calibrate_psf(torch.zeros(2, 8, 8), EmitterTable.empty(2), background=torch.ones(2))
    neg = EmitterTable(
        frame=torch.zeros(1, dtype=torch.long),
        x=torch.ones(1),
        y=torch.ones(1),
        z=torch.zeros(1),
        photons=-torch.ones(1),
        n_frames=1,
    )
    with pytest.raises(ValueError, match="negative photon"):
        calibrate_psf(torch.zeros(1, 8, 8), neg, background=torch.ones(1))
    assert not math.isnan(float(fit_gaussian_mle(torch.zeros(0, 5, 5), psf=psf).params.sum()))


def test_crlb_matches_mortensen_in_2d_and_exists_in_3d():
    from neuroinverse.inference.smlm_fitting import gaussian_crlb
    from neuroinverse.simulators.smlm_imaging import mortensen_precision

    N, b = torch.tensor([500.0, 2000.0, 5000.0]), torch.tensor([5.0, 20.0, 50.0])
    ours = gaussian_crlb(N, b, psf=GaussianPSF(1.0), excess_noise=2.0)[:, 0] * 100
    ref = mortensen_precision(N, b, sigma=1.0, pixel_size=100.0, excess_noise=2.0)
    assert torch.allclose(ours, ref, rtol=0.15)
    c3 = gaussian_crlb(N, b, psf=GaussianPSF(1.0, astigmatic=True), z=torch.tensor([-300.0, 0.0, 300.0]))
    assert c3.shape == (3, 5) and (c3[:, 2] > 0).all()
    with pytest.raises(ValueError, match="z is required"):
        gaussian_crlb(N, b, psf=GaussianPSF(1.0, astigmatic=True))
