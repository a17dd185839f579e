"""point_sample and sample_uncertain_points against their pure-PyTorch references."""
import pytest
import torch

from mmseg_maskformer import ops
from mmseg_maskformer.ops import reference


def _points(shape, generator, device, dtype=torch.float32, margin=0.1):
    """Points in [-margin, 1 + margin]^2: some fall outside the image (zero padding)."""
    return ((1 + 2 * margin) * torch.rand(shape, generator=generator, dtype=torch.float64) -
            margin).to(device=device, dtype=dtype)


def _sample_and_grad(fn, inputs, points, align_corners):
    x = inputs.detach().requires_grad_()
    out = fn(x, points, align_corners=align_corners)
    weights = torch.rand(out.shape, generator=torch.Generator().manual_seed(1),
                         dtype=torch.float64).to(out)
    grad, = torch.autograd.grad((weights * out).sum(), x)
    return out.detach(), grad


@pytest.mark.parametrize('shape, num_points', [((2, 3, 11, 13), 50), ((1, 1, 1, 1), 7),
                                               ((3, 4, 8, 8), 1), ((2, 5, 16, 9), 0),
                                               ((0, 3, 5, 5), 4)])
@pytest.mark.parametrize('align_corners', [False, True])
def test_matches_reference(fused, randn, generator, device, shape, num_points, align_corners):
    inputs = randn(shape)
    points = _points((shape[0], num_points, 2), generator, device)
    out, grad = _sample_and_grad(fused.point_sample, inputs, points, align_corners)
    ref_out, ref_grad = _sample_and_grad(reference.point_sample, inputs, points, align_corners)
    assert out.shape == (shape[0], shape[1], num_points) and out.dtype == inputs.dtype
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-6)


def test_border_points(fused, randn, device):
    inputs = randn((1, 2, 5, 4))
    corners = [0.0, 1.0, 0.5, 1e-7, 1 - 1e-7, -1e-3, 1.001]
    points = torch.tensor([[x, y] for x in corners for y in corners], device=device)[None]
    for align_corners in (False, True):
        torch.testing.assert_close(fused.point_sample(inputs, points, align_corners),
                                   reference.point_sample(inputs, points, align_corners))


def test_realistic_size(fused, randn, generator, device):
    inputs = randn((4, 3, 64, 64), scale=3.0)
    points = _points((4, 1000, 2), generator, device, margin=0.0)
    got = _sample_and_grad(fused.point_sample, inputs, points, False)
    ref = _sample_and_grad(reference.point_sample, inputs, points, False)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('align_corners', [False, True])
def test_gradcheck(fused, randn, generator, device, align_corners):
    inputs = randn((2, 2, 5, 6), dtype=torch.float64).requires_grad_()
    points = _points((2, 9, 2), generator, device, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: fused.point_sample(x, points, align_corners),
                                    (inputs, ))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_low_precision_inputs(fused, randn, generator, device, dtype):
    inputs = randn((2, 3, 9, 10), dtype=dtype)
    points = _points((2, 20, 2), generator, device)
    out, grad = _sample_and_grad(fused.point_sample, inputs, points, False)
    ref_out, ref_grad = _sample_and_grad(reference.point_sample, inputs, points, False)
    assert out.dtype == grad.dtype == dtype
    torch.testing.assert_close(out, ref_out)
    # Gradients accumulate in the input dtype (no float32 copy), a rounding per contribution.
    torch.testing.assert_close(grad, ref_grad, rtol=2e-2, atol=2e-2)


def test_non_contiguous_inputs_and_points(fused, randn, generator, device):
    inputs = randn((2, 7, 9, 3)).permute(0, 3, 1, 2)  # channels-last strides
    points = _points((2, 2, 15), generator, device, dtype=torch.float64).transpose(1, 2)
    assert not inputs.is_contiguous() and not points.is_contiguous()
    got = _sample_and_grad(fused.point_sample, inputs, points, False)
    ref = _sample_and_grad(reference.point_sample, inputs.contiguous(), points.contiguous(), False)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


def test_points_requiring_grad(fused, randn, generator, device):
    inputs = randn((1, 2, 6, 6))
    points = _points((1, 5, 2), generator, device).requires_grad_()
    with pytest.raises(ValueError, match='not differentiable with respect to points'):
        fused.point_sample(inputs, points)
    with torch.no_grad():
        torch.testing.assert_close(fused.point_sample(inputs, points),
                                   reference.point_sample(inputs, points))
    # The dispatching op sends them to the reference, which has that gradient.
    ops.point_sample(inputs, points).sum().backward()
    assert points.grad is not None


@pytest.mark.parametrize('num_points, oversample_ratio, importance_sample_ratio',
                         [(64, 3.0, 0.75), (10, 1.0, 1.0), (33, 2.5, 0.0)])
def test_sample_uncertain_points_same_draws(fused, randn, device, num_points, oversample_ratio,
                                            importance_sample_ratio):
    logits = randn((3, 12, 10), scale=3.0)

    def draw(module):
        generator = torch.Generator(device=device).manual_seed(7)
        return module.sample_uncertain_points(logits, num_points, oversample_ratio,
                                              importance_sample_ratio, generator=generator)

    points = draw(fused)
    assert points.shape == (3, num_points, 2) and points.dtype == torch.float32
    torch.testing.assert_close(points, draw(reference), rtol=0, atol=0)
