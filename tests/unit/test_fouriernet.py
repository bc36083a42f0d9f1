"""Wave optics, snapshot imaging, FourierNet and the snapshot-reconstruction training."""

import math

import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve

from neuroinverse.inference import (
    SnapshotTraining,
    high_pass,
    nmse,
    pearson,
    snapshot_loss,
    train_snapshot_decoder,
    wiener_deconvolution,
)
from neuroinverse.models import FourierNet
from neuroinverse.models.fouriernet import FourierConv2d
from neuroinverse.simulators import (
    PupilMicroscope,
    airy_first_zero,
    flat_mask,
    image_volume,
    r80,
    radial_profile_zero,
    ramps_mask,
    random_phase_mask,
    sparse_volumes,
)


def small_scope(z=(-4.0, 0.0, 4.0), **kw):
    args = dict(n_pixels=32, pad=16, dx=0.325, wavelength=0.532, na=0.8, n_immersion=1.33, z=z, downsample=2)
    args.update(kw)
    return PupilMicroscope(**args)


def test_energy_is_one_over_dx_squared():
    s = small_scope()
    h = s.field_psf(ramps_mask(s, 2.0))
    np.testing.assert_allclose(h.sum((1, 2)).double().numpy() * s.dx**2, 1.0, rtol=1e-5)


@pytest.mark.parametrize("na", [0.8, 0.5])
def test_in_focus_first_zero_is_airy(na):
    s = PupilMicroscope(64, 64, 0.325, 0.532, na, 1.33, (0.0,))
    zero = radial_profile_zero(s, flat_mask(s), 0)
    assert abs(zero - airy_first_zero(0.532, na)) < 0.01  # the analytic 0.61 λ/NA, to 10 nm
    assert abs(airy_first_zero(0.532, 0.8) - 0.4055) < 1e-3


def test_flat_mask_is_symmetric_in_z_and_ramps_are_not():
    s = small_scope(z=(-6.0, -2.0, 2.0, 6.0))
    flat = s.psf_stack(flat_mask(s))
    assert float((flat - flat.flip(0)).abs().max() / flat.max()) < 1e-5
    ramps = s.psf_stack(ramps_mask(s, 2.0))
    assert float((ramps - ramps.flip(0)).abs().max() / ramps.max()) > 0.1


def test_psf_stack_is_differentiable_in_the_mask():
    s = small_scope()
    m = random_phase_mask(s, 0.5, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    psf = s.psf_stack(m)
    assert psf.shape == (3, 16, 16)
    (psf[:, 8, 8].sum()).backward()
    assert torch.isfinite(m.grad).all() and m.grad.abs().sum() > 0


def test_bad_inputs_raise_clear_errors():
    s = small_scope()
    with pytest.raises(ValueError, match="pupil grid"):
        s.psf_stack(torch.zeros(10, 10))
    bad = flat_mask(s)
    bad[3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        s.psf_stack(bad)
    with pytest.raises(ValueError, match="wavelength"):
        small_scope(wavelength=0.0)
    with pytest.raises(ValueError, match="na"):
        small_scope(na=-0.1)
    with pytest.raises(ValueError, match="aliases"):
        small_scope(dx=0.5)
    with pytest.raises(ValueError, match="planes"):
        image_volume(torch.ones(2, 5, 16, 16), s.psf_stack(flat_mask(s)))


def test_image_formation_matches_scipy_fftconvolve():
    s = small_scope()
    psf = s.psf_stack(ramps_mask(s, 2.0)).double()
    vol = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = image_volume(vol, psf).numpy()
    # "same" crop: output pixel i sees the PSF centred at (h//2, w//2)
    ref = sum(fftconvolve(vol[z].numpy(), psf[z].numpy(), mode="full")[8:24, 8:24] for z in range(3))
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_fourier_conv_is_a_circular_convolution():
    torch.manual_seed(0)
    layer = FourierConv2d(1, 2, (8, 8)).double()
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    y = layer(x).detach().numpy()
    kernel = torch.fft.irfft2(torch.view_as_complex(layer.weight.detach()), s=(8, 8)).numpy()  # (2, 1, 8, 8)
    xn = x.numpy()[0, 0]
    for o in range(2):
        ref = sum(kernel[o, 0, a, b] * np.roll(xn, (a, b), axis=(0, 1)) for a in range(8) for b in range(8))
        np.testing.assert_allclose(y[0, o], ref + float(layer.bias[o].detach()), atol=1e-10)


def test_fouriernet_shapes_and_cpu_head_matches_conv3d():
    torch.manual_seed(0)
    net = FourierNet((16, 16), 4, features=8, kernel=(3, 3, 3))
    x = torch.rand(2, 1, 16, 16)
    assert net(x).shape == (2, 4, 16, 16)
    from neuroinverse.models.fouriernet import _conv3d

    f = torch.randn(2, 2, 4, 16, 16)
    torch.testing.assert_close(_conv3d(f, net.conv1), net.conv1(f), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="multiple"):
        FourierNet((16, 16), 3, features=8)


def test_r80_of_a_point_and_a_disc():
    p = torch.zeros(1, 21, 21)
    p[0, 10, 10] = 1
    assert float(r80(p)[0]) == 0
    yy, xx = torch.meshgrid(torch.arange(101.0), torch.arange(101.0), indexing="ij")
    disc = (((yy - 50) ** 2 + (xx - 50) ** 2) <= 30**2).float()
    assert abs(float(r80(disc)[0]) - 30 * math.sqrt(0.8)) < 1.0


def test_losses_metrics_and_wiener():
    v = sparse_volumes(2, (3, 16, 16), mean_nuclei=5, generator=torch.Generator().manual_seed(0))
    assert float(snapshot_loss(v, v)) == 0
    assert float(snapshot_loss(torch.zeros_like(v), v)) > 1
    assert torch.allclose(high_pass(torch.ones(1, 32, 32))[..., 10:22, 10:22], torch.zeros(12, 12), atol=1e-6)
    assert torch.allclose(nmse(v, v), torch.zeros(2)) and torch.allclose(pearson(v, v), torch.ones(2))
    s = small_scope()
    psf = s.psf_stack(ramps_mask(s, 2.0))
    w = wiener_deconvolution(image_volume(v, psf), psf, 1e-3)
    assert float(pearson(w, v).mean()) > 0.5


def test_training_joint_moves_the_mask_and_frozen_does_not():
    s = small_scope(z=(-4.0, 4.0))
    bank = sparse_volumes(8, (2, 16, 16), mean_nuclei=5, generator=torch.Generator().manual_seed(0))
    m0 = ramps_mask(s, 2.0)
    cfg = SnapshotTraining(steps=3, batch=2, photons=50.0)
    torch.manual_seed(0)
    _, frozen, _ = train_snapshot_decoder(FourierNet((16, 16), 2, features=4), s, m0, bank, cfg)
    assert torch.equal(frozen, m0)
    torch.manual_seed(0)
    hist, joint, snaps = train_snapshot_decoder(
        FourierNet((16, 16), 2, features=4), s, m0, bank, cfg, joint=True, record_every=1
    )
    assert not torch.equal(joint, m0) and len(hist.loss) == 3 and len(snaps) == 4
    with pytest.raises(ValueError, match="volumes"):
        train_snapshot_decoder(FourierNet((16, 16), 2, features=4), s, m0, bank[:, :1], cfg)
