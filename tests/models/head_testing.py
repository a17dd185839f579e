"""Tiny MaskFormer heads and inputs shared by the model tests."""
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_maskformer.models  # noqa: F401  (registers the scope)

NUM_CLASSES = 5


def tiny_head_cfg(**overrides):
    cfg = dict(
        type='mmseg_maskformer.MaskFormerHead',
        in_channels=[8, 16, 32, 64],
        num_classes=NUM_CLASSES,
        num_queries=7,
        pixel_decoder=dict(type='BasePixelDecoder', feat_channels=32,
                           norm_cfg=dict(type='GN', num_groups=8)),
        mask_channels=24,
        transformer_decoder=dict(num_layers=3, embed_dims=32, num_heads=4,
                                 feedforward_channels=64, dropout=0.0),
        loss_impl='reference')
    cfg.update(overrides)
    return cfg


def tiny_segmentor(test_cfg, num_classes=6, mode='whole', **segmentor_test_cfg):
    """A tiny ``MaskFormerSegmentor`` (ResNet-18 at 8 base channels) with this head ``test_cfg``."""
    head = tiny_head_cfg(num_classes=num_classes, test_cfg=test_cfg)
    # ConfigDict as from a config file: mmseg reads test_cfg.mode as an attribute.
    return MODELS.build(ConfigDict(
        type='mmseg_maskformer.MaskFormerSegmentor',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0], std=[255, 255, 255],
                               bgr_to_rgb=True, size=(64, 64), seg_pad_val=255),
        backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8,
                      out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN')),
        decode_head=dict(head, in_channels=[8, 16, 32, 64]),
        test_cfg=dict(mode=mode, **segmentor_test_cfg)))


def random_feats(batch=2, size=64, channels=(8, 16, 32, 64)):
    return [torch.randn(batch, c, size // 2**(i + 2), size // 2**(i + 2)) for i, c in enumerate(channels)]


def sample_with_gt(sem_seg: torch.Tensor) -> SegDataSample:
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=sem_seg[None].long())
    sample.set_metainfo(dict(img_shape=tuple(sem_seg.shape), pad_shape=tuple(sem_seg.shape),
                             ori_shape=tuple(sem_seg.shape)))
    return sample
