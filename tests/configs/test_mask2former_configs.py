"""The Mask2Former ADE20K R50 config against the official recipe and model size
(facebookresearch/Mask2Former configs/ade20k/semantic-segmentation/maskformer2_R50_bs16_160k.yaml
and MODEL_ZOO.md: 44M parameters)."""
import os

import pytest

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_maskformer.models  # noqa: F401

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, 'configs', 'mask2former', 'mask2former_r50_8xb2-160k_ade20k-512x512.py')


def test_r50_ade20k_recipe_and_size():
    init_default_scope('mmseg')
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    head = model.decode_head
    assert type(head).__name__ == 'Mask2FormerHead'
    assert round(sum(p.numel() for p in model.parameters()) / 1e6) == 44
    assert len(head.transformer_decoder.layers) == 9 and head.num_queries == 100
    assert len(head.pixel_decoder.encoder) == 6
    assert head.criterion.num_points == head.matcher.num_points == 12544
    terms = head.criterion.terms
    assert (terms.cls_weight, terms.mask.weight, terms.dice.weight) == (2.0, 5.0, 5.0)
    assert terms.class_weights.tolist() == [1.0] * 150 + [pytest.approx(0.1)]
    assert (terms.mask.alpha, terms.mask.gamma) == (-1, 0.0)  # BCE
    costs = head.matcher.costs
    assert (costs.cls_weight, costs.mask_weight, costs.dice_weight) == (2.0, 5.0, 5.0)
    assert (costs.alpha, costs.gamma, costs.eps) == (-1, 0.0, 1.0)
    optimizer = cfg.optim_wrapper
    assert optimizer.optimizer.lr == 1e-4 and optimizer.optimizer.weight_decay == 0.05
    assert optimizer.clip_grad.max_norm == 0.01
    assert optimizer.paramwise_cfg.custom_keys.backbone.lr_mult == 0.1
    assert all(optimizer.paramwise_cfg.custom_keys[key].decay_mult == 0
               for key in ('query_embed', 'query_feat', 'transformer_decoder.level_embed'))
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size * 8 == 16
