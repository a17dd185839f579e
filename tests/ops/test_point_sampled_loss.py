"""The compiled point-sampled focal + dice loss (Mask2Former's mask losses) against the reference
chain point_sample -> sigmoid_focal_dice_loss: values, gradients, and what it keeps for backward."""
import pytest
import torch

from mmseg_maskformer.ops import reference

BCE = dict(alpha=-1.0, gamma=0.0)  # Mask2Former's mask term


def _case(randn, make_targets, generator, device, masks=6, size=(9, 11), points=40,
          dtype=torch.float32):
    logits = randn((masks, ) + size, dtype=dtype, scale=3.0)
    coords = torch.rand(masks, points, 2, generator=generator, dtype=torch.float64).to(device, dtype)
    return logits, coords, make_targets('soft', (masks, points)).to(dtype)


def _weighted(fn, logits, points, targets, weights, per_mask, **kwargs):
    """(focal, dice, d/dlogits) of Σ_n per_mask[n]·(w_f·focal_n + w_d·dice_n), as the criterion
    sums the terms (per_mask: 1 / num_masks times any loss scale)."""
    x = logits.detach().requires_grad_()
    focal, dice = fn(x, points, targets, weights=weights, **kwargs)
    total = (per_mask * (weights[0] * focal + weights[1] * dice)).sum()
    grad, = torch.autograd.grad(total, x)
    return focal.detach(), dice.detach(), grad


@pytest.mark.parametrize('weights, options', [((5.0, 5.0), BCE), ((20.0, 1.0), {}),
                                              ((5.0, 0.0), BCE), ((0.0, 2.0), {})],
                         ids=['mask2former', 'maskformer-focal', 'no-dice', 'dice-only'])
def test_equals_the_reference_chain(fused, randn, make_targets, generator, device, weights,
                                    options):
    logits, points, targets = _case(randn, make_targets, generator, device)
    per_mask = torch.rand(logits.shape[0], generator=generator).to(device)
    got = _weighted(fused.point_sampled_focal_dice_loss, logits, points, targets, weights,
                    per_mask, **options)
    ref = _weighted(reference.point_sampled_focal_dice_loss, logits, points, targets, weights,
                    per_mask, **options)
    torch.testing.assert_close(got[:2], ref[:2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[2], ref[2], rtol=1e-4, atol=1e-6)


def test_with_valid_weights(fused, randn, make_targets, generator, device):
    logits, points, targets = _case(randn, make_targets, generator, device)
    valid = torch.rand(targets.shape, generator=generator).to(device)
    per_mask = torch.ones(logits.shape[0], device=device)
    got = _weighted(fused.point_sampled_focal_dice_loss, logits, points, targets, (5.0, 5.0),
                    per_mask, valid=valid, **BCE)
    ref = _weighted(reference.point_sampled_focal_dice_loss, logits, points, targets, (5.0, 5.0),
                    per_mask, valid=valid, **BCE)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)


def test_gradients_at_mask2former_size(fused, randn, make_targets, generator, device):
    """120 matched masks of 128² logits, 12544 points each (B = 2, 60 segments), weights 5 / 5
    and 1 / num_masks, against autograd of the reference chain."""
    logits, points, targets = _case(randn, make_targets, generator, device, masks=120,
                                    size=(128, 128), points=12544)
    per_mask = torch.full((120, ), 1 / 120, device=device)
    got = _weighted(fused.point_sampled_focal_dice_loss, logits, points, targets, (5.0, 5.0),
                    per_mask, **BCE)
    ref = _weighted(reference.point_sampled_focal_dice_loss, logits, points, targets, (5.0, 5.0),
                    per_mask, **BCE)
    torch.testing.assert_close(got[:2], ref[:2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[2], ref[2], rtol=1e-4, atol=1e-4 * ref[2].abs().max().item())


@pytest.mark.parametrize('options', [BCE, {}], ids=['bce', 'focal'])
def test_gradcheck(fused, randn, make_targets, generator, device, options):
    logits, points, targets = _case(randn, make_targets, generator, device, masks=3, size=(5, 4),
                                    points=7, dtype=torch.float64)

    def per_mask_loss(x):  # gradcheck draws one upstream value per output element
        focal, dice = fused.point_sampled_focal_dice_loss(x, points, targets, weights=(5.0, 2.0),
                                                          **options)
        return 5.0 * focal + 2.0 * dice

    assert torch.autograd.gradcheck(per_mask_loss, (logits.requires_grad_(), ))


def test_keeps_one_logit_map_per_mask_for_backward(fused, randn, make_targets, generator, device):
    """4 bytes per logit pixel (here 128² per mask), where the chain keeps the points, sampled
    logits and targets: 16 bytes per point."""
    logits, points, targets = _case(randn, make_targets, generator, device, masks=10,
                                    size=(128, 128), points=12544)

    def saved_bytes(fn):
        saved = []

        def pack(tensor):
            saved.append(tensor.numel() * tensor.element_size())
            return tensor

        x = logits.detach().requires_grad_()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            fn(x, points, targets, weights=(5.0, 5.0), **BCE)
        return sum(saved)

    assert saved_bytes(fused.point_sampled_focal_dice_loss) == 10 * 128 * 128 * 4
    assert saved_bytes(lambda *a, **k: reference.sigmoid_focal_dice_loss(
        fused.point_sample(a[0][:, None], a[1])[:, 0], a[2], **BCE)) >= 10 * 12544 * 16


def test_other_term_ratio_in_backward_is_an_error(fused, randn, make_targets, generator, device):
    logits, points, targets = _case(randn, make_targets, generator, device)
    x = logits.requires_grad_()
    focal, dice = fused.point_sampled_focal_dice_loss(x, points, targets, weights=(5.0, 5.0))
    with pytest.raises(RuntimeError, match=r'weights other than the ones it was given \(5, 5\)'):
        (5.0 * focal.sum() + 10.0 * dice.sum()).backward()


@pytest.mark.parametrize('weights', [(0.0, 0.0), (-1.0, 1.0), (float('nan'), 1.0)])
def test_weights_are_checked(fused, randn, make_targets, generator, device, weights):
    logits, points, targets = _case(randn, make_targets, generator, device)
    for fn in (fused.point_sampled_focal_dice_loss, reference.point_sampled_focal_dice_loss):
        with pytest.raises(ValueError, match='weights must be two finite, non-negative'):
            fn(logits, points, targets, weights=weights)


def test_shapes_are_checked(fused, randn, make_targets, generator, device):
    logits, points, targets = _case(randn, make_targets, generator, device)
    for fn in (fused.point_sampled_focal_dice_loss, reference.point_sampled_focal_dice_loss):
        with pytest.raises(ValueError, match=r'targets must be \(N, P\) = \(6, 40\)'):
            fn(logits, points, targets[:, :5])
        with pytest.raises(ValueError, match=r'mask_logits must have 3 dimensions'):
            fn(logits[:, 0], points, targets)
