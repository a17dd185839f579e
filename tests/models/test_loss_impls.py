"""The fused ops inside the full head give the reference's losses and gradients; AMP stays finite."""

import pytest
import torch
from mmseg.registry import MODELS

from head_testing import NUM_CLASSES, random_feats, sample_with_gt, tiny_head_cfg

needs_extension = pytest.mark.needs_extension


def head_pair(**overrides):
    reference = MODELS.build(tiny_head_cfg(loss_impl='reference', **overrides))
    reference.init_weights()
    fused = MODELS.build(tiny_head_cfg(loss_impl='fused', **overrides))
    fused.load_state_dict(reference.state_dict())
    return reference, fused


def gt_samples(batch=2, size=64):
    sem = torch.randint(0, NUM_CLASSES, (batch, size // 8, size // 8))
    sem = torch.nn.functional.interpolate(sem[:, None].float(), size=(size, size), mode='nearest')[:, 0].long()
    sem[0, :5] = 255
    return [sample_with_gt(s) for s in sem]


def loss_and_grads(head, feats, samples, generator=None):
    feats = [f.clone().requires_grad_() for f in feats]
    all_cls, all_masks = head(feats)
    labels, masks = head.segments_from_samples(samples)
    losses = head.criterion(all_cls, all_masks, labels, masks, generator=generator)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    grads = {n: p.grad for n, p in head.named_parameters()}
    grads.update({f'feat{i}': f.grad for i, f in enumerate(feats)})
    return losses, grads


@needs_extension
@pytest.mark.parametrize('num_points', [None, 256])
def test_fused_training_step_equals_reference(num_points):
    reference, fused = head_pair(num_points=num_points)
    feats, samples = random_feats(), gt_samples()
    ref_losses, ref_grads = loss_and_grads(reference, feats, samples, torch.Generator().manual_seed(0))
    fused_losses, fused_grads = loss_and_grads(fused, feats, samples, torch.Generator().manual_seed(0))
    assert ref_losses.keys() == fused_losses.keys()
    for key in ref_losses:
        torch.testing.assert_close(fused_losses[key], ref_losses[key], rtol=1e-4, atol=1e-6)
    for name in ref_grads:
        torch.testing.assert_close(fused_grads[name], ref_grads[name], rtol=1e-4, atol=1e-6,
                                   msg=lambda m: f'{name}: {m}')


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_losses_are_finite_float32(dtype):
    head = MODELS.build(tiny_head_cfg(loss_impl=None))
    head.init_weights()
    with torch.autocast('cpu', dtype=dtype):
        losses = head.loss(random_feats(), gt_samples(), None)
        for key, value in losses.items():
            assert value.dtype == torch.float32, key
            assert torch.isfinite(value), key
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_half_logits_give_the_float32_loss(dtype):
    # The criterion computes costs and losses in float32 whatever the logits' dtype.
    head = MODELS.build(tiny_head_cfg(loss_impl=None))
    feats, samples = random_feats(), gt_samples()
    with torch.no_grad():
        all_cls, all_masks = head(feats)
    labels, masks = head.segments_from_samples(samples)
    exact = head.criterion(all_cls, all_masks, labels, masks)
    half = head.criterion(all_cls.to(dtype), all_masks.to(dtype), labels, masks)
    for key in exact:
        torch.testing.assert_close(half[key], exact[key], rtol=2e-2, atol=2e-3)
