"""point_sample and select_uncertain_points against their pure-PyTorch references (the sampler
that uses them: test_sample_uncertain_points.py)."""
import os
import subprocess
import sys
import textwrap

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
    torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_low_precision_gradients_accumulate_in_float32(fused, generator, device, dtype):
    # 4000 points on a 3x3 image: each pixel's gradient sums about a thousand contributions. Summed
    # in half precision, the running sum would round every contribution (bfloat16 keeps 8 bits);
    # in float32 and rounded once, the gradient is the float64 one rounded to the dtype.
    inputs = torch.zeros(1, 2, 3, 3, dtype=dtype, device=device)
    points = _points((1, 4000, 2), generator, device, margin=0.0)
    _, grad = _sample_and_grad(fused.point_sample, inputs, points, False)
    _, exact = _sample_and_grad(reference.point_sample, inputs.double(), points.double(), False)
    # At most one unit in the last place apart (float32 sums round to either neighbour).
    ulp = torch.finfo(dtype).eps * exact.abs().max().item()
    torch.testing.assert_close(grad.double(), exact.to(dtype).double(), rtol=0, atol=ulp)


@pytest.mark.parametrize('dtype', [torch.bool, torch.uint8])
def test_integer_inputs_are_sampled_as_float32(fused, generator, device, dtype):
    high = 2 if dtype == torch.bool else 256
    values = torch.randint(0, high, (3, 2, 17, 11), generator=generator)
    inputs = values.to(dtype=dtype, device=device)
    points = _points((3, 70, 2), generator, device)
    for align_corners in (False, True):
        out = fused.point_sample(inputs, points, align_corners)
        assert out.dtype == torch.float32
        expected = reference.point_sample(inputs.float(), points, align_corners)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(reference.point_sample(inputs, points, align_corners), expected)


def test_many_channels(fused, randn, generator, device):
    # The matcher samples every query of every layer at the same points: hundreds of channels.
    inputs = randn((1, 150, 24, 20), scale=3.0)
    points = _points((1, 3001, 2), generator, device)
    torch.testing.assert_close(fused.point_sample(inputs, points),
                               reference.point_sample(inputs, points), rtol=1e-5, atol=1e-5)


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


def _distinct_magnitudes(shape, generator, device, dtype=torch.float32):
    """Logits whose |x| differ within each row (topk leaves the choice among equal ones open)."""
    magnitudes = torch.stack([torch.randperm(shape[1], generator=generator) + 0.5
                              for _ in range(shape[0])]) / shape[1]
    signs = torch.randint(0, 2, shape, generator=generator) * 2 - 1
    return (4 * magnitudes * signs).to(device=device, dtype=dtype)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('num_candidates, num_uncertain', [(200, 50), (37, 37), (9, 0), (1, 1)])
def test_select_uncertain_points_matches_reference(fused, generator, device, dtype, by_position,
                                                   num_candidates, num_uncertain):
    # Strided logits (a transposed view), as the sampler's (N, 1, C)[:, 0] ones can be.
    logits = _distinct_magnitudes((3, num_candidates), generator, device, dtype).T.contiguous().T
    candidates = torch.rand(3, num_candidates, 2, generator=generator).to(device)
    selected = fused.select_uncertain_points(logits, candidates, num_uncertain)
    assert selected.shape == (3, num_uncertain, 2) and selected.dtype == torch.float32
    expected = reference.select_uncertain_points(logits, candidates, num_uncertain)
    torch.testing.assert_close(by_position(selected), by_position(expected), rtol=0, atol=0)


def test_select_uncertain_points_realistic_size(fused, generator, device, by_position):
    """Mask2Former's sizes: 3 × 12544 candidates, 0.75 × 12544 kept, 40 masks."""
    logits = _distinct_magnitudes((40, 37632), generator, device)
    candidates = torch.rand(40, 37632, 2, generator=generator).to(device)
    selected = fused.select_uncertain_points(logits, candidates, 9408)
    expected = reference.select_uncertain_points(logits, candidates, 9408)
    torch.testing.assert_close(by_position(selected), by_position(expected), rtol=0, atol=0)


def test_select_uncertain_points_ties_and_nan(fused, device):
    candidates = torch.arange(12, dtype=torch.float32, device=device).view(1, 6, 2) / 12
    logits = torch.tensor([[0.5, -0.5, 0.1, 2.0, float('nan'), -0.1]], device=device)
    # NaN is the least certain (as topk(-|x|) ranks it), then |x| = 0.1 twice.
    for module in (fused, reference):
        chosen = module.select_uncertain_points(logits, candidates, 3)
        assert sorted((chosen[0, :, 0] * 6).round().long().tolist()) == [2, 4, 5]
    if device.type == 'cpu':  # equal |logit|: the lower candidate index (topk leaves it open)
        chosen = fused.select_uncertain_points(logits, candidates, 4)
        assert sorted((chosen[0, :, 0] * 6).round().long().tolist()) == [0, 2, 4, 5]


@pytest.mark.parametrize('logits_shape, candidates_shape, num_uncertain, message', [
    ((2, 5, 1), (2, 5, 2), 1, 'candidate_logits must have 2 dimensions'),
    ((2, 5), (2, 4, 2), 1, r'candidates must have shape \(N, C, 2\) = \(2, 5, 2\)'),
    ((2, 5), (2, 5, 2), 6, r'num_uncertain must be in \[0, 5\]'),
    ((2, 5), (2, 5, 2), -1, r'num_uncertain must be in \[0, 5\]'),
])
def test_select_uncertain_points_rejects_bad_inputs(fused, device, logits_shape, candidates_shape,
                                                    num_uncertain, message):
    logits, candidates = torch.zeros(logits_shape, device=device), torch.zeros(candidates_shape,
                                                                                device=device)
    for module in (reference, fused):
        with pytest.raises(ValueError, match=message):
            module.select_uncertain_points(logits, candidates, num_uncertain)


@pytest.mark.parametrize('logits_shape, candidates_shape, num_uncertain, message', [
    ((2, 5, 1), (2, 5, 2), 1, 'candidate_logits must be a floating'),
    ((2, 5), (2, 4, 2), 1, r'candidates must be a floating \(N, C, 2\) tensor'),
    ((2, 5), (2, 5, 2), 6, r'num_uncertain must be in \[0, 5\]'),
])
def test_select_uncertain_points_kernel_checks_direct_calls(fused, device, logits_shape,
                                                            candidates_shape, num_uncertain,
                                                            message):
    logits, candidates = torch.zeros(logits_shape, device=device), torch.zeros(candidates_shape,
                                                                                device=device)
    with pytest.raises(RuntimeError, match=message):
        torch.ops.mmseg_maskformer.select_uncertain_points(logits, candidates, num_uncertain)


def test_deterministic_algorithms(fused, randn, generator, device):
    inputs = randn((2, 3, 6, 7))
    points = _points((2, 500, 2), generator, device)
    try:
        torch.use_deterministic_algorithms(True)
        if device.type == 'cuda':
            # Atomics sum in an unspecified order, as in grid_sample's backward.
            with pytest.raises(RuntimeError, match='point_sample_backward_cuda'):
                _sample_and_grad(fused.point_sample, inputs, points, False)
        else:
            # One thread sums each plane in point order: bitwise the same on every run.
            first = _sample_and_grad(fused.point_sample, inputs, points, False)
            torch.testing.assert_close(_sample_and_grad(fused.point_sample, inputs, points, False),
                                       first, rtol=0, atol=0)
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize('grad_shape, points_shape, points_dtype, size, message', [
    ((2, 3), (2, 5, 2), torch.float32, (4, 4), 'grad_output must be a floating'),
    ((2, 3, 5), (2, 5, 3), torch.float32, (4, 4), 'points must be a floating'),
    ((2, 3, 5), (2, 5, 2), torch.int64, (4, 4), 'points must be a floating'),
    ((2, 3, 5), (2, 6, 2), torch.float32, (4, 4), r'grad_output must be \(N, C, P\)'),
    ((2, 3, 5), (1, 5, 2), torch.float32, (4, 4), r'grad_output must be \(N, C, P\)'),
    ((2, 3, 5), (2, 5, 2), torch.float32, (0, 4), 'height and width must be positive'),
])
def test_backward_checks_its_arguments(fused, device, grad_shape, points_shape, points_dtype, size,
                                       message):
    grad_output = torch.ones(grad_shape, device=device)
    points = torch.zeros(points_shape, device=device).to(points_dtype)
    with pytest.raises(RuntimeError, match=message):
        torch.ops.mmseg_maskformer.point_sample_backward(grad_output, points, *size, False)


def test_backward_checks_dtype_and_device(fused, device):
    points = torch.zeros(1, 4, 2, device=device)
    with pytest.raises(RuntimeError, match='grad_output must be a floating'):
        torch.ops.mmseg_maskformer.point_sample_backward(
            torch.ones(1, 2, 4, dtype=torch.int32, device=device), points, 3, 3, False)
    if device.type == 'cuda':
        with pytest.raises(RuntimeError, match='points are on cpu'):
            torch.ops.mmseg_maskformer.point_sample_backward(
                torch.ones(1, 2, 4, device=device), points.cpu(), 3, 3, False)


def test_empty_image_is_rejected(fused, device):
    inputs, points = torch.zeros(1, 2, 0, 5, device=device), torch.zeros(1, 3, 2, device=device)
    for module in (reference, fused):
        with pytest.raises(ValueError, match=r'non-empty \(H, W\)'):
            module.point_sample(inputs, points)
    with pytest.raises(RuntimeError, match=r'non-empty \(H, W\)'):
        torch.ops.mmseg_maskformer.point_sample(inputs, points, False)


def test_portable_cpu_kernels(fused, device):
    """The kernels for CPUs without AVX2 (selected as ATen selects its own kernels)."""
    if device.type != 'cpu':
        pytest.skip('CPU kernels only')
    script = textwrap.dedent('''
        import torch
        from mmseg_maskformer.ops import _extension, fused, reference
        assert _extension.extension_available()
        g = torch.Generator().manual_seed(0)
        for dtype in (torch.float32, torch.float16, torch.uint8):
            inputs = (4 * torch.randn(3, 5, 13, 9, generator=g)).to(dtype)
            points = 1.2 * torch.rand(3, 101, 2, generator=g) - 0.1
            torch.testing.assert_close(fused.point_sample(inputs, points),
                                       reference.point_sample(inputs, points))
        x = torch.randn(2, 2, 7, 6, generator=g, requires_grad=True)
        points = torch.rand(2, 300, 2, generator=g)
        grads = [torch.autograd.grad(m.point_sample(x, points).square().sum(), x)[0]
                 for m in (fused, reference)]
        torch.testing.assert_close(*grads)
        # The sampler: scalar Philox and sampling draw the reference's points.
        logits = 3 * torch.randn(5, 33, 40, generator=g)
        for dtype in (torch.float32, torch.float64):
            got, expected = (m.sample_uncertain_points(logits.to(dtype), 1001, 3.0, 0.75,
                                                       torch.Generator().manual_seed(1))
                             for m in (fused, reference))
            assert torch.equal(got[:, 750:], expected[:, 750:])
            for mask in range(5):
                assert (sorted(map(tuple, got[mask, :750].tolist())) ==
                        sorted(map(tuple, expected[mask, :750].tolist())))
        print('portable ok', torch.backends.cpu.get_cpu_capability())
    ''')
    env = dict(os.environ, ATEN_CPU_CAPABILITY='default', OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'portable ok DEFAULT' in result.stdout
