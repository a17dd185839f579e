# COCO panoptic, Swin-L pretrained on ImageNet-22k at 384
# (configs/coco-panoptic/swin/maskformer_panoptic_swin_large_IN21k_384_bs64_554k.yaml): Swin-B
# with embed 192, heads 6-12-24-48, and training images resized to a longest edge <= 1000
# (INPUT.MAX_SIZE_TRAIN 1000; test unchanged). Paper: 52.7 PQ.
_base_ = './maskformer_swin-b-in22k-384x384-pre_8xb8-554k_coco-panoptic-800x1333.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_large_patch4_window12_384_22k_20220412-6580f57d.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=192,
        num_heads=[6, 12, 24, 48],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]))
train_scales = [480 + 32 * i for i in range(11)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=train_scales,
                  resize_type='ResizeShortestEdge', max_size=1000)],
            [dict(type='RandomChoiceResize', scales=[400, 500, 600],
                  resize_type='ResizeShortestEdge', max_size=1 << 30),
             dict(type='RandomRangeCrop', size_range=(384, 600)),
             dict(type='RandomChoiceResize', scales=train_scales,
                  resize_type='ResizeShortestEdge', max_size=1000)],
        ]),
    dict(type='PackPanopticSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
