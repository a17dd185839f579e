# A tiny MaskFormer for 128×128 images and CPU training: ResNet-18 with 16 base channels, 64-wide
# pixel decoder and transformer, 20 queries. Head, matcher and losses are the paper's; only the
# sizes are small.
custom_imports = dict(imports=['mmseg_maskformer.models', 'mmseg_maskformer.datasets'],
                      allow_failed_imports=False)
crop_size = (128, 128)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    size=crop_size,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='mmseg_maskformer.MaskFormerSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        style='pytorch'),
    decode_head=dict(
        type='mmseg_maskformer.MaskFormerHead',
        in_channels=[16, 32, 64, 128],
        in_index=[0, 1, 2, 3],
        num_classes=6,
        num_queries=20,
        pixel_decoder=dict(type='BasePixelDecoder', feat_channels=64,
                           norm_cfg=dict(type='GN', num_groups=16)),
        mask_channels=64,
        transformer_decoder=dict(
            num_layers=6, embed_dims=64, num_heads=4, feedforward_channels=256, dropout=0.1),
        loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0, no_object_weight=0.1),
        loss_mask=dict(type='FocalLoss', loss_weight=20.0, alpha=0.25, gamma=2.0),
        loss_dice=dict(type='DiceLoss', loss_weight=1.0, eps=1.0),
        matcher=dict(
            type='HungarianMatcher',
            match_costs=[
                dict(type='ClassificationCost', weight=1.0),
                dict(type='FocalLossCost', weight=20.0, alpha=0.25, gamma=2.0),
                dict(type='DiceCost', weight=1.0, eps=1.0)
            ])),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
