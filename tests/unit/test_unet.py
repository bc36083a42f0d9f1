"""Tests of the shared U-Net (2-D same padding, 3-D valid anisotropic)."""

import pytest
import torch

from neuroinverse.models import UNet


def _mala_tiny(base_channels=8):
    return UNet(
        1,
        3,
        dims=3,
        base_channels=base_channels,
        depth=2,
        channel_multiplier=2,
        downsample=(1, 2, 2),
        kernel_size=[(1, 3, 3), (3, 3, 3)],
        padding="valid",
        final_activation="sigmoid",
    )


def test_2d_same_shapes_and_params():
    torch.manual_seed(0)
    net = UNet(1, 2, dims=2, base_channels=16, depth=2, final_activation="sigmoid")
    y = net(torch.randn(4, 1, 48, 48))
    assert y.shape == (4, 2, 48, 48)
    assert ((y > 0) & (y < 1)).all()
    # the malis chapter's net: 16 -> 32 fmaps, about 25k parameters (hand count)
    assert sum(p.numel() for p in net.parameters()) == 25410
    assert net.receptive_field() == (17, 17)
    assert net.output_shape((64, 32)) == (64, 32)
    assert net.crop_margin((64, 32)) == (0, 0)


def test_2d_same_deeper_and_non_square():
    net = UNet(3, 5, dims=2, base_channels=4, depth=4, channel_multiplier=2, downsample=2)
    assert net.total_downsample == (8, 8)
    assert net(torch.randn(1, 3, 40, 24)).shape == (1, 5, 40, 24)


def test_3d_valid_mala_tiny_geometry():
    net = _mala_tiny()
    assert sum(p.numel() for p in net.parameters()) == 13355
    assert net.output_shape((12, 52, 52)) == (8, 36, 36)
    assert net.crop_margin((12, 52, 52)) == (2, 8, 8)
    assert net.output_shape((16, 112, 112)) == (12, 96, 96)
    assert net.valid_input_shape((8, 36, 36)) == (12, 52, 52)
    y = net(torch.randn(1, 1, 12, 52, 52))
    assert y.shape == (1, 3, 8, 36, 36)


def test_3d_valid_three_levels_anisotropic():
    net = UNet(
        1, 3, dims=3, base_channels=4, depth=3, channel_multiplier=3, downsample=[(1, 3, 3), (1, 3, 3)], padding="valid"
    )
    shape = net.valid_input_shape((4, 10, 10))
    out = net.output_shape(shape)
    assert all(o >= 4 for o in out[:1]) and all(o >= 10 for o in out[1:])
    y = net(torch.randn(1, 1, *shape))
    assert tuple(y.shape[2:]) == out


def test_valid_output_is_centred_translation_equivariant():
    # valid conv: shifting the input by one pooling period shifts the output by the same
    torch.manual_seed(1)
    net = _mala_tiny(base_channels=2).double()
    x = torch.randn(1, 1, 7, 24, 24, dtype=torch.float64)
    a = net(x[..., :6, :22, :22])
    b = net(x[..., 1:7, 2:24, 2:24])
    assert a.shape == (1, 3, 2, 6, 6)
    torch.testing.assert_close(a[..., 1:, 2:, 2:], b[..., :-1, :-2, :-2])


def test_gradients_flow_to_every_parameter():
    torch.manual_seed(2)
    for net, x in (
        (UNet(1, 2, dims=2, base_channels=4), torch.randn(2, 1, 16, 16)),
        (_mala_tiny(base_channels=2), torch.randn(1, 1, 6, 22, 22)),
    ):
        x.requires_grad_(True)
        net(x).sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_bad_shapes_raise():
    net2 = UNet(1, 2, dims=2, depth=3)
    with pytest.raises(ValueError, match="divisible"):
        net2(torch.randn(1, 1, 30, 32))
    with pytest.raises(ValueError, match="channels"):
        net2(torch.randn(1, 2, 32, 32))
    with pytest.raises(ValueError, match="x must"):
        net2(torch.randn(1, 32, 32))
    net3 = _mala_tiny()
    with pytest.raises(ValueError, match="valid"):
        net3(torch.randn(1, 1, 12, 51, 52))
    with pytest.raises(ValueError, match="valid"):
        net3.output_shape((4, 52, 52))  # z collapses to <= 0
    with pytest.raises(ValueError, match="input_shape"):
        net3.output_shape((52, 52))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="dims"):
        UNet(1, 1, dims=4)
    with pytest.raises(ValueError, match="padding"):
        UNet(1, 1, padding="reflect")
    with pytest.raises(ValueError, match="kernel_size"):
        UNet(1, 1, kernel_size=4)
    with pytest.raises(ValueError, match="downsample"):
        UNet(1, 1, dims=3, depth=3, downsample=[(1, 2, 2)])
    with pytest.raises(ValueError, match="final_activation"):
        UNet(1, 1, final_activation="softmax")
    with pytest.raises(ValueError, match="base_channels"):
        UNet(1, 1, base_channels=0)


@pytest.mark.parametrize("kernel,padding", [((1, 3, 3), 0), ((3, 3, 3), 0), ((3, 3, 3), 1), ((2, 3, 1), (1, 0, 0))])
def test_cpu_3d_convolution_as_2d_equals_conv3d(kernel, padding):
    """The CPU path of the 3-D block convolution (2-D over sections) is nn.Conv3d's maths."""
    from neuroinverse.models.unet import _Conv3d

    torch.manual_seed(0)
    conv = _Conv3d(3, 4, kernel, padding=padding).double()
    x = torch.randn(2, 3, 6, 9, 8, dtype=torch.float64, requires_grad=True)
    y = conv(x)
    ref = torch.nn.functional.conv3d(x, conv.weight, conv.bias, padding=conv.padding)
    assert y.shape == ref.shape
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, (x, conv.weight), g)
    rx, rw = torch.autograd.grad(ref, (x, conv.weight), g)
    torch.testing.assert_close(gx, rx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw, rw, rtol=1e-12, atol=1e-12)
