"""The GEMM-based matching costs against their pure-PyTorch reference."""
import pytest
import torch

from mmseg_maskformer.ops import reference

# (Q, h, w) logits with (M, H, W) targets, nearest-resampled to (h, w).
DENSE_SHAPES = [
    pytest.param((5, 9, 7), (4, 9, 7), id='same-size-odd'),
    pytest.param((6, 8, 10), (3, 16, 20), id='downsample-x2'),
    pytest.param((4, 7, 9), (5, 23, 31), id='downsample-non-integer'),
    pytest.param((3, 12, 10), (2, 5, 7), id='upsample'),
    pytest.param((4, 6, 6), (0, 24, 24), id='no-targets'),
    pytest.param((0, 6, 6), (3, 24, 24), id='no-queries'),
]


def _close(got, expected):
    assert got[0].shape == got[1].shape == expected[0].shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('logit_shape, target_shape', DENSE_SHAPES)
@pytest.mark.parametrize('kind', ['bool', 'uint8', 'float', 'soft'])
def test_dense_matches_reference(fused, randn, make_targets, logit_shape, target_shape, kind):
    logits = randn(logit_shape, scale=3.0)
    targets = make_targets(kind, target_shape)
    costs = fused.pairwise_mask_costs(logits, targets)
    assert costs[0].dtype == costs[1].dtype == torch.float32
    _close(costs, reference.pairwise_mask_costs(logits, targets))


@pytest.mark.parametrize('kind', ['float', 'soft', 'bool'])
def test_point_form_matches_reference(fused, randn, make_targets, kind):
    logits = randn((7, 41), scale=3.0)
    targets = make_targets(kind, (5, 41))
    _close(fused.pairwise_mask_costs(logits, targets), reference.pairwise_mask_costs(logits, targets))


@pytest.mark.parametrize('alpha, gamma, eps', [(-1.0, 2.0, 1.0), (0.5, 0.0, 0.0), (0.9, 3.5, 2.0)])
def test_hyper_parameters(fused, randn, make_targets, alpha, gamma, eps):
    logits = randn((5, 8, 6), scale=2.0)
    targets = make_targets('soft', (4, 17, 13))
    kwargs = dict(alpha=alpha, gamma=gamma, eps=eps)
    _close(fused.pairwise_mask_costs(logits, targets, **kwargs),
           reference.pairwise_mask_costs(logits, targets, **kwargs))


def test_saturated_logits(fused, randn, make_targets, generator):
    sign = torch.where(randn((6, 8, 8)) > 0, 1.0, -1.0)
    logits = sign * (30 + 70 * torch.rand((6, 8, 8), generator=generator).to(sign))
    targets = make_targets('bool', (5, 16, 16))
    costs = fused.pairwise_mask_costs(logits, targets)
    assert all(torch.isfinite(c).all() for c in costs)
    _close(costs, reference.pairwise_mask_costs(logits, targets))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16, torch.float64])
def test_logit_dtypes(fused, randn, make_targets, dtype):
    logits = randn((5, 9, 8), dtype=dtype, scale=3.0)
    targets = make_targets('uint8', (3, 18, 16))
    costs = fused.pairwise_mask_costs(logits, targets)
    assert costs[0].dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    _close(costs, reference.pairwise_mask_costs(logits, targets))


def test_non_contiguous_inputs(fused, randn, make_targets):
    logits = randn((5, 9, 8)).transpose(1, 2)
    targets = make_targets('bool', (6, 30, 40))[::2, ::2].transpose(1, 2)  # (3, 20, 15)
    assert not logits.is_contiguous() and not targets.is_contiguous()
    _close(fused.pairwise_mask_costs(logits, targets),
           reference.pairwise_mask_costs(logits.contiguous(), targets.contiguous()))


def test_backward_raises(fused, randn, make_targets):
    logits = randn((3, 4, 4)).requires_grad_()
    focal_cost, dice_cost = fused.pairwise_mask_costs(logits, make_targets('bool', (2, 8, 8)))
    with pytest.raises(RuntimeError, match='no backward'):
        (focal_cost + dice_cost).sum().backward()


def test_bce_form_equals_official_pairwise_cross_entropy(fused, randn, make_targets):
    """Mask2Former's matching cost (official ``batch_sigmoid_ce_loss``): the mean over points of
    BCE(x, 1) t + BCE(x, 0) (1 − t), written here with torch's BCE, against the op with γ = 0 and
    no α weighting."""
    logits = randn((9, 50), scale=4.0)
    targets = make_targets('soft', (6, 50))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    pos = bce(logits, torch.ones_like(logits), reduction='none')
    neg = bce(logits, torch.zeros_like(logits), reduction='none')
    expected = (pos @ targets.T + neg @ (1 - targets).T) / logits.shape[1]
    cost, _ = fused.pairwise_mask_costs(logits, targets, alpha=-1.0, gamma=0.0)
    torch.testing.assert_close(cost, expected, rtol=1e-5, atol=1e-5)
