"""The ``valid`` argument of the loss and cost ops (pixels that count; ignore_mode='exclude').

The reference with ``valid`` is checked against a hand-written masked formula, the fused ops
against the reference, and ``valid=None`` against the unchanged formula (bitwise) and ``valid``
of all ones.
"""
import pytest
import torch
import torch.nn.functional as F

from mmseg_maskformer.ops import reference

# (N, h, w) logits with (N, H, W) targets.
DENSE_SHAPES = [
    pytest.param((3, 17, 13), (17, 13), id='same-size-odd'),
    pytest.param((4, 7, 9), (23, 31), id='upsample-non-integer'),
    pytest.param((2, 8, 8), (32, 32), id='upsample-x4'),
    pytest.param((3, 16, 12), (9, 7), id='downsample'),
    pytest.param((3, 1, 1), (5, 4), id='one-logit'),
    pytest.param((0, 4, 4), (8, 8), id='no-masks'),
]


def _grads(fn, logits, targets, **kwargs):
    """(focal, dice, d/dlogits) of a sum weighting every mask's two terms differently."""
    x = logits.detach().requires_grad_()
    focal, dice = fn(x, targets, **kwargs)
    weights = torch.rand((2, ) + focal.shape, generator=torch.Generator().manual_seed(1),
                         dtype=torch.float64).to(focal)
    grad, = torch.autograd.grad((weights[0] * focal + weights[1] * dice).sum(), x)
    return focal.detach(), dice.detach(), grad


@pytest.fixture
def make_valid(generator, device):
    """'bool' (70% valid), 'soft' weights in [0, 1], 'none-valid' or 'all-valid' maps."""

    def make(kind, shape):
        values = torch.rand(shape, generator=generator)
        return {
            'bool': lambda: values > 0.3,
            'soft': lambda: values,
            'none-valid': lambda: torch.zeros(shape, dtype=torch.bool),
            'all-valid': lambda: torch.ones(shape, dtype=torch.bool),
        }[kind]().to(device)

    return make


def test_reference_loss_by_hand():
    """One mask of four pixels, two of them valid: the loss of those two alone."""
    x = torch.tensor([[0.5, -1.0, 2.0, 3.0]])
    t = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    valid = torch.tensor([[True, False, True, False]])
    focal, dice = reference.sigmoid_focal_dice_loss(x, t, valid=valid)
    kept_focal, kept_dice = reference.sigmoid_focal_dice_loss(x[:, valid[0]], t[:, valid[0]])
    torch.testing.assert_close((focal, dice), (kept_focal, kept_dice), rtol=1e-6, atol=0)
    p = torch.sigmoid(torch.tensor([0.5, 2.0]))
    torch.testing.assert_close(dice, 1 - (2 * p.sum() + 1) / (p.sum() + 2 + 1)[None])
    # No valid pixel: focal 0 (sum / max(count, 1)), dice 1 - eps / eps = 0.
    focal, dice = reference.sigmoid_focal_dice_loss(x, t, valid=torch.zeros_like(valid))
    assert focal.item() == 0 and dice.item() == 0


def test_reference_costs_by_hand():
    """Costs with valid == the costs of the kept pixels alone (the map nearest-resized)."""
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 6, 5, generator=g)
    targets = torch.rand(3, 12, 10, generator=g) > 0.5
    valid = torch.rand(12, 10, generator=g) > 0.4
    focal, dice = reference.pairwise_mask_costs(logits, targets, valid=valid)
    kept = F.interpolate(valid[None, None].float(), size=(6, 5), mode='nearest')[0, 0].bool()
    small = F.interpolate(targets[:, None].float(), size=(6, 5), mode='nearest')[:, 0]
    ref = reference.pairwise_mask_costs(logits[:, kept], small[:, kept])
    torch.testing.assert_close((focal, dice), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('logit_shape, target_size', DENSE_SHAPES)
@pytest.mark.parametrize('valid_kind', ['bool', 'soft', 'none-valid'])
@pytest.mark.parametrize('target_kind', ['bool', 'soft'])
def test_loss_matches_reference(fused, randn, make_targets, make_valid, logit_shape, target_size,
                                valid_kind, target_kind):
    logits = randn(logit_shape, scale=3.0)
    shape = (logit_shape[0], ) + target_size
    targets, valid = make_targets(target_kind, shape), make_valid(valid_kind, shape)
    got = _grads(fused.sigmoid_focal_dice_loss, logits, targets, valid=valid)
    ref = _grads(reference.sigmoid_focal_dice_loss, logits, targets, valid=valid)
    torch.testing.assert_close(got[:2], ref[:2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[2], ref[2], rtol=1e-4, atol=1e-7)
    if valid_kind == 'none-valid':
        assert (got[0] == 0).all() and (got[2] == 0).all()


@pytest.mark.parametrize('logit_shape, target_size', DENSE_SHAPES[:4])
def test_loss_valid_none_equals_all_valid(fused, randn, make_targets, make_valid, logit_shape,
                                          target_size):
    """valid of ones multiplies every term by exactly 1: the same numbers as valid=None up to
    the compiler's choice of fused multiply-adds, which may differ between the two inlined
    copies of the pixel maths (a few ulp)."""
    logits = randn(logit_shape, scale=3.0)
    shape = (logit_shape[0], ) + target_size
    targets = make_targets('soft', shape)
    plain = _grads(fused.sigmoid_focal_dice_loss, logits, targets)
    ones = _grads(fused.sigmoid_focal_dice_loss, logits, targets,
                  valid=make_valid('all-valid', shape))
    torch.testing.assert_close(ones, plain, rtol=1e-6, atol=1e-9)


def test_reference_valid_none_unchanged():
    """valid=None runs the official formula, bit for bit."""
    g = torch.Generator().manual_seed(4)
    x = 3 * torch.randn(3, 50, generator=g)
    t = torch.rand(3, 50, generator=g)
    p = x.sigmoid()
    ce = F.binary_cross_entropy_with_logits(x, t, reduction='none')
    focal = (0.25 * t + 0.75 * (1 - t)) * (ce * (1 - (p * t + (1 - p) * (1 - t)))**2)
    dice = 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
    got = reference.sigmoid_focal_dice_loss(x, t)
    assert torch.equal(got[0], focal.mean(1)) and torch.equal(got[1], dice)


def test_loss_expanded_valid_view(fused, randn, make_targets, make_valid):
    """One map expanded over the masks (stride 0), or a sliced one, is read in place."""
    logits = randn((6, 9, 7), scale=2.0)
    targets = make_targets('bool', (6, 20, 17))
    image_map = make_valid('bool', (20, 34))[:, ::2]  # (20, 17), column stride 2
    for valid in (image_map.expand(6, -1, -1), image_map.t().contiguous().t().expand(6, -1, -1)):
        assert valid.stride(0) == 0
        got = _grads(fused.sigmoid_focal_dice_loss, logits, targets, valid=valid)
        ref = _grads(reference.sigmoid_focal_dice_loss, logits, targets,
                     valid=valid.contiguous())
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-7)


def test_loss_point_form(fused, randn, make_targets, make_valid):
    logits = randn((5, 37), scale=3.0)
    targets = make_targets('soft', (5, 37))
    for kind in ('bool', 'soft'):
        valid = make_valid(kind, (5, 37))
        got = _grads(fused.sigmoid_focal_dice_loss, logits, targets, valid=valid)
        ref = _grads(reference.sigmoid_focal_dice_loss, logits, targets, valid=valid)
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-7)


def test_loss_realistic_size_gradients(fused, randn, make_targets, make_valid):
    """20 masks of 32x32 logits against 128x128 targets with ignore pixels."""
    logits = randn((20, 32, 32), scale=4.0)
    targets = make_targets('uint8', (20, 128, 128))
    valid = make_valid('bool', (20, 128, 128))
    got = _grads(fused.sigmoid_focal_dice_loss, logits, targets, valid=valid)
    ref = _grads(reference.sigmoid_focal_dice_loss, logits, targets, valid=valid)
    torch.testing.assert_close(got[:2], ref[:2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[2], ref[2], rtol=1e-4, atol=1e-4 * ref[2].abs().max().item())


@pytest.mark.parametrize('target_size', [(6, 5), (11, 9), (4, 3)],
                         ids=['same-size', 'upsample', 'downsample'])
@pytest.mark.parametrize('valid_kind', ['bool', 'soft'])
def test_loss_gradcheck(fused, randn, make_targets, make_valid, target_size, valid_kind):
    logits = randn((3, 6, 5), dtype=torch.float64, scale=2.0).requires_grad_()
    shape = (3, ) + target_size
    targets = make_targets('soft', shape).double()
    valid = make_valid(valid_kind, shape)
    assert torch.autograd.gradcheck(
        lambda x: fused.sigmoid_focal_dice_loss(x, targets, valid=valid), (logits, ))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16, torch.float64])
def test_loss_dtypes(fused, randn, make_targets, make_valid, dtype):
    logits = randn((4, 8, 7), dtype=dtype, scale=3.0)
    targets = make_targets('bool', (4, 19, 15))
    valid = make_valid('soft', (4, 19, 15)).to(dtype)
    got = _grads(fused.sigmoid_focal_dice_loss, logits, targets, valid=valid)
    ref = _grads(reference.sigmoid_focal_dice_loss, logits, targets, valid=valid)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[:2], ref[:2], **tol)
    torch.testing.assert_close(got[2], ref[2], **(tol if dtype == torch.float64 else {}))


# (Q, h, w) logits with (M, H, W) targets, or point form.
COST_SHAPES = [
    pytest.param((5, 8, 8), (4, 32, 32), id='downsample-x4'),
    pytest.param((5, 17, 13), (3, 17, 13), id='same-size'),
    pytest.param((4, 7, 9), (6, 23, 31), id='downsample-non-integer'),
    pytest.param((4, 37), (6, 37), id='points'),
    pytest.param((3, 6, 5), (0, 12, 10), id='no-targets'),
]


@pytest.mark.parametrize('logit_shape, target_shape', COST_SHAPES)
@pytest.mark.parametrize('valid_kind', ['bool', 'soft', 'none-valid', 'all-valid'])
def test_costs_match_reference(fused, randn, make_targets, make_valid, logit_shape, target_shape,
                               valid_kind):
    logits = randn(logit_shape, scale=3.0)
    targets = make_targets('bool', target_shape)
    valid = make_valid(valid_kind, target_shape[1:])
    got = fused.pairwise_mask_costs(logits, targets, valid=valid)
    ref = reference.pairwise_mask_costs(logits, targets, valid=valid)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    if valid_kind == 'all-valid':
        torch.testing.assert_close(got, fused.pairwise_mask_costs(logits, targets), rtol=1e-6,
                                   atol=1e-9)


def test_costs_float64(fused, randn, make_targets, make_valid):
    logits = randn((4, 6, 5), dtype=torch.float64)
    targets = make_targets('soft', (3, 12, 10)).double()
    valid = make_valid('soft', (12, 10)).double()
    got = fused.pairwise_mask_costs(logits, targets, valid=valid)
    ref = reference.pairwise_mask_costs(logits, targets, valid=valid)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


def _costs_with_tf32_enabled(fused, logits, targets, valid):
    before = (torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision())
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.set_float32_matmul_precision('medium')
        costs = fused.pairwise_mask_costs(logits, targets, valid=valid)
        settings = (torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision())
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before[0]
        torch.set_float32_matmul_precision(before[1])
    return costs, settings


def test_costs_leave_tf32_settings_alone(fused, randn, make_targets, make_valid):
    """The GEMM runs in full float32 under a thread-local guard: global settings are untouched."""
    _, settings = _costs_with_tf32_enabled(fused, randn((6, 32, 32), scale=3.0),
                                           make_targets('bool', (5, 128, 128)),
                                           make_valid('bool', (128, 128)))
    assert settings == (True, 'medium')


@pytest.mark.parametrize('device', [
    pytest.param(torch.device('cuda'), marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason='TF32 exists on CUDA only: nothing to compare'))])
def test_tf32_does_not_change_the_costs(fused, randn, make_targets, make_valid, device):
    logits = randn((6, 32, 32), scale=3.0)
    targets = make_targets('bool', (5, 128, 128))
    valid = make_valid('bool', (128, 128))
    with_tf32, _ = _costs_with_tf32_enabled(fused, logits, targets, valid)
    exact = reference.pairwise_mask_costs(logits.double(), targets, valid=valid)
    torch.testing.assert_close(with_tf32, tuple(c.float() for c in exact), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('op', ['sigmoid_focal_dice_loss', 'pairwise_mask_costs'])
def test_valid_errors(fused, randn, make_targets, op):
    logits = randn((3, 6, 5))
    targets = make_targets('bool', (3, 12, 10))
    fns = [getattr(fused, op), getattr(reference, op)]
    good = (3, 12, 10) if op == 'sigmoid_focal_dice_loss' else (12, 10)
    for fn in fns:
        with pytest.raises(ValueError, match='valid must have the shape'):
            fn(logits, targets, valid=torch.ones(2, 12, 10, dtype=torch.bool, device=logits.device))
        with pytest.raises(TypeError, match='valid must be bool'):
            fn(logits, targets, valid=torch.ones(good, dtype=torch.int64, device=logits.device))
        with pytest.raises(TypeError, match='valid must be None or a torch.Tensor'):
            fn(logits, targets, valid=[1])


def test_backward_checks_saved_inputs(fused, randn, make_targets, device):
    """The backward op rejects sums / gradients that do not belong to its forward."""
    ops = torch.ops.mmseg_maskformer
    logits = randn((3, 4, 5))
    targets = make_targets('bool', (3, 8, 10))
    _, _, sums = ops.sigmoid_focal_dice_loss(logits, targets, 0.25, 2.0, 1.0)
    ones = torch.ones(3, device=device)
    with pytest.raises(RuntimeError, match=r'sums must be the \(3, 3\)'):
        ops.sigmoid_focal_dice_loss_backward(ones, ones, logits, targets, sums[:2], 0.25, 2.0, 1.0)
    with pytest.raises(RuntimeError, match=r'sums must be the \(3, 4\)'):
        ops.sigmoid_focal_dice_loss_backward(ones, ones, logits, targets, sums, 0.25, 2.0, 1.0,
                                             torch.ones_like(targets))
    with pytest.raises(RuntimeError, match='sums must be'):
        ops.sigmoid_focal_dice_loss_backward(ones, ones, logits, targets, sums.double(), 0.25, 2.0,
                                             1.0)
    with pytest.raises(RuntimeError, match=r'grad_dice must be a floating \(3,\)'):
        ops.sigmoid_focal_dice_loss_backward(ones, ones[:1], logits, targets, sums, 0.25, 2.0, 1.0)
    with pytest.raises(RuntimeError, match='grad_focal must be'):
        ops.sigmoid_focal_dice_loss_backward(ones.long(), ones, logits, targets, sums, 0.25, 2.0,
                                             1.0)


def _op(name):
    return getattr(torch.ops.mmseg_maskformer, name).default


@pytest.mark.filterwarnings('ignore:.*torch.jit.script_method.*:DeprecationWarning')
def test_opcheck_with_valid(fused, randn, make_targets, make_valid, generator, device):
    logits = randn((3, 5, 6)).requires_grad_()
    targets = make_targets('uint8', (3, 11, 13))
    for valid in (make_valid('bool', (3, 11, 13)), make_valid('soft', (3, 11, 13))):
        torch.library.opcheck(_op('sigmoid_focal_dice_loss'),
                              (logits, targets, 0.25, 2.0, 1.0, valid))
    values = torch.rand((3, 6), generator=generator).to(device)  # sums, grad_focal, grad_dice
    torch.library.opcheck(_op('sigmoid_focal_dice_loss_backward'),
                          (values[:, 4], values[:, 5], logits.detach(), targets, values[:, :4] + 1,
                           0.25, 2.0, 1.0, make_valid('bool', (3, 11, 13))))
    torch.library.opcheck(_op('pairwise_mask_costs'),
                          (logits.detach(), targets, 0.25, 2.0, 1.0, make_valid('bool', (11, 13))))


def test_torch_compile_with_valid(fused, randn, make_targets, make_valid):
    def step(mask_logits, targets, valid):
        focal_cost, dice_cost = fused.pairwise_mask_costs(mask_logits.detach(), targets,
                                                          valid=valid[0])
        focal, dice = fused.sigmoid_focal_dice_loss(mask_logits, targets, valid=valid)
        return 20 * focal.sum() + dice.sum(), focal_cost + dice_cost

    compiled = torch.compile(step, fullgraph=True, backend='aot_eager')
    logits = randn((3, 6, 5))
    targets = make_targets('bool', (3, 12, 10))
    valid = make_valid('bool', (12, 10)).expand(3, -1, -1)
    results = []
    for fn in (step, compiled):
        x = logits.clone().requires_grad_()
        loss, costs = fn(x, targets, valid)
        results.append((loss.detach(), costs, torch.autograd.grad(loss, x)[0]))
    torch.testing.assert_close(results[1], results[0])
