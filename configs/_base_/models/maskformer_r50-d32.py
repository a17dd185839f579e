# MaskFormer R50 as in the paper and the official configs (facebookresearch/MaskFormer
# configs/ade20k-150/maskformer_R50_bs16_160k.yaml): BasePixelDecoder (GN 32), 6-layer post-norm
# DETR decoder (256 wide, 8 heads, FFN 2048, dropout 0.1), 100 queries, matcher costs 1 / 20 / 1,
# losses CE (∅ weight 0.1) + 20·focal + 1·dice with deep supervision.
#
# Backbone: torchvision's ResNet-50 layout (stride on the 3×3 conv, 7×7 stem) with frozen
# BatchNorm, the detectron2 default the official configs keep (RESNETS.NORM unset = FrozenBN,
# FREEZE_AT 0: every conv trains, no BN statistic or affine parameter does).
custom_imports = dict(imports=['mmseg_maskformer.models', 'mmseg_maskformer.datasets'],
                      allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=False)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    size=(512, 512),
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    # The official model pads every test image to a multiple of 32
    # (MASK_FORMER.SIZE_DIVISIBILITY: 32).
    test_cfg=dict(size_divisor=32))
num_classes = 150
model = dict(
    type='mmseg_maskformer.MaskFormerSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 1, 1),
        strides=(1, 2, 2, 2),
        norm_cfg=norm_cfg,
        norm_eval=True,
        style='pytorch',
        contract_dilation=True,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    decode_head=dict(
        type='mmseg_maskformer.MaskFormerHead',
        in_channels=[256, 512, 1024, 2048],
        in_index=[0, 1, 2, 3],
        num_classes=num_classes,
        num_queries=100,
        pixel_decoder=dict(
            type='BasePixelDecoder',
            feat_channels=256,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU')),
        mask_channels=256,
        transformer_decoder=dict(
            num_layers=6, embed_dims=256, num_heads=8, feedforward_channels=2048, dropout=0.1),
        enforce_input_project=False,
        # The paper's losses and matching costs, mmdet style (mmseg's loss blocks paste unchanged).
        loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0, no_object_weight=0.1),
        loss_mask=dict(type='FocalLoss', loss_weight=20.0, alpha=0.25, gamma=2.0),
        loss_dice=dict(type='DiceLoss', loss_weight=1.0, eps=1.0),
        matcher=dict(
            type='HungarianMatcher',
            match_costs=[
                dict(type='ClassificationCost', weight=1.0),
                dict(type='FocalLossCost', weight=20.0, alpha=0.25, gamma=2.0),
                dict(type='DiceCost', weight=1.0, eps=1.0)
            ]),
        # None: the fused C++/CUDA losses when the extension is built, else the reference.
        loss_impl=None,
        # None: exact full-resolution mask losses (the paper); e.g. 12544 for point sampling.
        num_points=None,
        ignore_index=255),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
