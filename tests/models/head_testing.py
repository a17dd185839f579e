"""Tiny MaskFormer heads and inputs shared by the model tests."""
import torch
from mmengine.structures import PixelData
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


def random_feats(batch=2, size=64, channels=(8, 16, 32, 64)):
    return [torch.randn(batch, c, size // 2**(i + 2), size // 2**(i + 2)) for i, c in enumerate(channels)]


def sample_with_gt(sem_seg: torch.Tensor) -> SegDataSample:
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=sem_seg[None].long())
    sample.set_metainfo(dict(img_shape=tuple(sem_seg.shape), pad_shape=tuple(sem_seg.shape),
                             ori_shape=tuple(sem_seg.shape)))
    return sample
