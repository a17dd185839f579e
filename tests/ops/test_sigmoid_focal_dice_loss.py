"""The fused focal + dice loss against its pure-PyTorch reference."""
import pytest
import torch

from mmseg_maskformer.ops import reference

# (N, h, w) logits with (N, H, W) targets.
DENSE_SHAPES = [
    pytest.param((3, 17, 13), (17, 13), id='same-size-odd'),
    pytest.param((4, 7, 9), (23, 31), id='upsample-non-integer'),
    pytest.param((2, 8, 8), (32, 32), id='upsample-x4'),
    pytest.param((3, 16, 12), (9, 7), id='downsample'),
    pytest.param((2, 5, 6), (5, 17), id='width-only'),
    pytest.param((3, 1, 1), (5, 4), id='one-logit'),
    pytest.param((0, 4, 4), (8, 8), id='no-masks'),
]


def _grads(fn, logits, targets, **kwargs):
    """(focal, dice, d/dlogits) of a sum that weighs every mask's two terms differently, with
    the same weights on every call."""
    x = logits.detach().requires_grad_()
    focal, dice = fn(x, targets, **kwargs)
    weights = torch.rand((2, ) + focal.shape, generator=torch.Generator().manual_seed(1),
                         dtype=torch.float64).to(focal)
    grad, = torch.autograd.grad((weights[0] * focal + weights[1] * dice).sum(), x)
    return focal.detach(), dice.detach(), grad


@pytest.mark.parametrize('logit_shape, target_size', DENSE_SHAPES)
@pytest.mark.parametrize('kind', ['bool', 'uint8', 'float', 'soft'])
def test_dense_matches_reference(fused, randn, make_targets, logit_shape, target_size,
                                 kind):
    logits = randn(logit_shape, scale=3.0)
    targets = make_targets(kind, (logit_shape[0], ) + target_size)
    focal, dice, grad = _grads(fused.sigmoid_focal_dice_loss, logits, targets)
    ref_focal, ref_dice, ref_grad = _grads(reference.sigmoid_focal_dice_loss, logits, targets)
    assert focal.dtype == dice.dtype == torch.float32 and focal.shape == (logit_shape[0], )
    torch.testing.assert_close(focal, ref_focal, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dice, ref_dice, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('kind', ['float', 'soft', 'uint8'])
def test_point_form_matches_reference(fused, randn, make_targets, kind):
    logits = randn((5, 37), scale=3.0)
    targets = make_targets(kind, (5, 37))
    focal, dice, grad = _grads(fused.sigmoid_focal_dice_loss, logits, targets)
    ref_focal, ref_dice, ref_grad = _grads(reference.sigmoid_focal_dice_loss, logits, targets)
    torch.testing.assert_close((focal, dice), (ref_focal, ref_dice), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('alpha, gamma, eps', [(0.25, 2.0, 1.0), (-1.0, 2.0, 1.0), (0.0, 0.0, 0.0),
                                               (1.0, 3.0, 1.0), (0.5, 0.5, 2.0)])
def test_hyper_parameters(fused, randn, make_targets, alpha, gamma, eps):
    logits = randn((4, 6, 7), scale=2.0)
    targets = make_targets('soft', (4, 13, 11))
    kwargs = dict(alpha=alpha, gamma=gamma, eps=eps)
    focal, dice, grad = _grads(fused.sigmoid_focal_dice_loss, logits, targets, **kwargs)
    ref = _grads(reference.sigmoid_focal_dice_loss, logits, targets, **kwargs)
    torch.testing.assert_close((focal, dice), ref[:2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref[2], rtol=1e-4, atol=1e-7)


def test_realistic_size_gradients(fused, randn, make_targets):
    """20 masks of 32x32 logits against 128x128 targets, float32, rtol 1e-4."""
    logits = randn((20, 32, 32), scale=4.0)
    targets = make_targets('uint8', (20, 128, 128))
    focal, dice, grad = _grads(fused.sigmoid_focal_dice_loss, logits, targets)
    ref_focal, ref_dice, ref_grad = _grads(reference.sigmoid_focal_dice_loss, logits, targets)
    torch.testing.assert_close((focal, dice), (ref_focal, ref_dice), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-4 * ref_grad.abs().max().item())


@pytest.mark.parametrize('target_size', [(6, 5), (11, 9)], ids=['same-size', 'upsample'])
@pytest.mark.parametrize('alpha, gamma', [(0.25, 2.0), (-1.0, 0.5), (0.75, 0.0)])
def test_gradcheck(fused, randn, make_targets, target_size, alpha, gamma):
    logits = randn((3, 6, 5), dtype=torch.float64, scale=2.0).requires_grad_()
    targets = make_targets('soft', (3, ) + target_size).double()

    def fn(x):
        return fused.sigmoid_focal_dice_loss(x, targets, alpha=alpha, gamma=gamma)

    assert torch.autograd.gradcheck(fn, (logits, ))


def test_gradcheck_point_form(fused, randn, make_targets):
    logits = randn((4, 9), dtype=torch.float64).requires_grad_()
    targets = make_targets('float', (4, 9)).double()
    assert torch.autograd.gradcheck(lambda x: fused.sigmoid_focal_dice_loss(x, targets),
                                    (logits, ))


@pytest.mark.parametrize('gamma', [2.0, 0.5])
def test_saturated_logits(fused, randn, make_targets, generator, gamma):
    sign = torch.where(randn((6, 5, 7)) > 0, 1.0, -1.0)
    magnitude = 30 + 70 * torch.rand((6, 5, 7), generator=generator).to(sign)
    logits = sign * magnitude
    targets = make_targets('bool', (6, 9, 13))
    focal, dice, grad = _grads(fused.sigmoid_focal_dice_loss, logits, targets, gamma=gamma)
    assert torch.isfinite(focal).all() and torch.isfinite(dice).all()
    assert torch.isfinite(grad).all()
    ref_focal, ref_dice, ref_grad = _grads(reference.sigmoid_focal_dice_loss, logits, targets,
                                           gamma=gamma)
    torch.testing.assert_close((focal, dice), (ref_focal, ref_dice), rtol=1e-5, atol=1e-6)
    if gamma >= 1:  # the reference's (1 - p_t)^(gamma - 1) is inf * 0 = nan below 1
        torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-7)


def test_gradient_relative_accuracy_over_the_exponent_range(fused):
    """Gradients of logits from 0 to +-75 against the float64 reference, relative to their size
    (no absolute slack): exp(-|x|) spans 1 to 3e-33 here, and the gradient of a logit far on the
    wrong side of a 0 target is about that size, so an exp that lost accuracy for some exponents
    (the vectorised CPU kernels carry their own) shows. Targets 1 with large positive logits are
    left out: their dice terms cancel in float64 to exactly 0."""
    magnitude = torch.linspace(0, 75, 4001)
    logits = torch.stack([-magnitude, magnitude, -magnitude])
    targets = torch.tensor([0, 0, 1], dtype=torch.bool)[:, None].expand(-1, 4001)
    focal, dice, grad = _grads(fused.sigmoid_focal_dice_loss, logits, targets)
    ref_focal, ref_dice, ref_grad = _grads(reference.sigmoid_focal_dice_loss, logits.double(),
                                           targets)
    assert ref_grad.abs().min() > 1e-38  # normal floats throughout
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=0)
    torch.testing.assert_close((focal.double(), dice.double()), (ref_focal, ref_dice), rtol=1e-6,
                               atol=0)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('target_size', [(8, 7), (19, 15)], ids=['same-size', 'upsample'])
def test_low_precision_logits(fused, randn, make_targets, dtype, target_size):
    logits = randn((4, 8, 7), dtype=dtype, scale=3.0)
    targets = make_targets('bool', (4, ) + target_size)
    focal, dice, grad = _grads(fused.sigmoid_focal_dice_loss, logits, targets)
    ref_focal, ref_dice, ref_grad = _grads(reference.sigmoid_focal_dice_loss, logits, targets)
    assert focal.dtype == torch.float32 and grad.dtype == dtype
    torch.testing.assert_close((focal, dice), (ref_focal, ref_dice), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad)  # dtype-aware tolerances of float16/bfloat16


def test_float64_stays_float64(fused, randn, make_targets):
    logits = randn((2, 4, 4), dtype=torch.float64)
    targets = make_targets('float', (2, 8, 8)).double()
    focal, dice, grad = _grads(fused.sigmoid_focal_dice_loss, logits, targets)
    ref = _grads(reference.sigmoid_focal_dice_loss, logits, targets)
    assert focal.dtype == dice.dtype == grad.dtype == torch.float64
    torch.testing.assert_close((focal, dice, grad), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('target_dtype', [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_target_dtypes(fused, randn, make_targets, target_dtype):
    logits = randn((3, 5, 6))
    targets = make_targets('soft', (3, 10, 12)).to(target_dtype)
    got = _grads(fused.sigmoid_focal_dice_loss, logits, targets)
    ref = _grads(reference.sigmoid_focal_dice_loss, logits, targets)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)


def test_non_contiguous_inputs(fused, randn, make_targets):
    logits = randn((4, 9, 7)).transpose(1, 2)  # (4, 7, 9), transposed strides
    targets = make_targets('uint8', (8, 21, 40))[::2, :, ::2]  # (4, 21, 20), sliced
    assert not logits.is_contiguous() and not targets.is_contiguous()
    got = _grads(fused.sigmoid_focal_dice_loss, logits, targets)
    ref = _grads(reference.sigmoid_focal_dice_loss, logits.contiguous(), targets.contiguous())
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-7)
    expanded = make_targets('bool', (1, 21, 20)).expand(4, -1, -1)  # stride 0
    got = _grads(fused.sigmoid_focal_dice_loss, logits, expanded)
    ref = _grads(reference.sigmoid_focal_dice_loss, logits, expanded.contiguous())
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-7)


def test_only_one_output_used(fused, randn, make_targets):
    logits = randn((3, 4, 5)).requires_grad_()
    targets = make_targets('bool', (3, 8, 10))
    focal, _ = fused.sigmoid_focal_dice_loss(logits, targets)
    grad, = torch.autograd.grad(focal.sum(), logits)
    x = logits.detach().requires_grad_()
    ref_grad, = torch.autograd.grad(reference.sigmoid_focal_dice_loss(x, targets)[0].sum(), x)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-7)


# Mask2Former's mask loss: the op with gamma=0 and no α weighting is binary cross-entropy.
BCE = dict(alpha=-1.0, gamma=0.0)


@pytest.mark.parametrize('logit_shape, target_size', [((3, 17, 13), (17, 13)), ((4, 7, 9), (23, 31)),
                                                      ((5, 37), None)], ids=['dense', 'upsample',
                                                                             'points'])
def test_bce_form_equals_torch_binary_cross_entropy(fused, randn, make_targets, logit_shape,
                                                    target_size):
    """Against ``F.binary_cross_entropy_with_logits`` (per-mask mean), value and gradient, with
    the logits bilinearly upsampled first as in the dense form."""
    logits = randn(logit_shape, scale=4.0)
    targets = make_targets('soft', logit_shape[:1] + (target_size or logit_shape[1:]))

    def fused_bce(x, t):
        loss = fused.sigmoid_focal_dice_loss(x, t, **BCE)[0]
        return loss, torch.zeros_like(loss)

    def torch_bce(x, t):
        if x.dim() == 3:
            x = torch.nn.functional.interpolate(x[:, None], size=t.shape[-2:], mode='bilinear',
                                                align_corners=False)[:, 0]
        bce = torch.nn.functional.binary_cross_entropy_with_logits(x, t.to(x.dtype),
                                                                   reduction='none')
        loss = bce.flatten(1).mean(1)
        return loss, torch.zeros_like(loss)

    loss, _, grad = _grads(fused_bce, logits, targets)
    expected, _, expected_grad = _grads(torch_bce, logits, targets)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4,
                               atol=1e-4 * expected_grad.abs().max().item())


@pytest.mark.parametrize('shape', [(3, 6, 5), (4, 9)], ids=['dense', 'points'])
def test_gradcheck_bce_form(fused, randn, make_targets, shape):
    logits = randn(shape, dtype=torch.float64, scale=2.0).requires_grad_()
    targets = make_targets('soft', shape if len(shape) == 2 else (3, 11, 9)).double()
    assert torch.autograd.gradcheck(
        lambda x: fused.sigmoid_focal_dice_loss(x, targets, **BCE), (logits, ))


def test_bce_form_gradients_at_mask2former_size(fused, randn, make_targets):
    """200 masks × 12544 points (Mask2Former's sampled losses), against the reference's autograd."""
    logits = randn((200, 12544), scale=4.0)
    targets = make_targets('float', (200, 12544))
    got = _grads(fused.sigmoid_focal_dice_loss, logits, targets, **BCE)
    ref = _grads(reference.sigmoid_focal_dice_loss, logits, targets, **BCE)
    torch.testing.assert_close(got[:2], ref[:2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[2], ref[2], rtol=1e-4, atol=1e-4 * ref[2].abs().max().item())
