# COCO panoptic, R50 + 6-layer encoder pixel decoder (paper: 46.5 PQ): batch 64 (8 GPUs × 8),
# 554k iterations, multi-scale training (short side 480-800, long side <= 1333), AdamW 1e-4,
# thresholds object 0.8 / overlap 0.8. Data: COCO 2017 with panoptic_{train,val}2017.json and
# the PNG folders under data/coco.
_base_ = [
    '../_base_/models/maskformer_r50-d32-encoder.py', 'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py'
]
num_classes = 133
model = dict(
    data_preprocessor=dict(size=None, size_divisor=32),
    decode_head=dict(
        num_classes=num_classes,
        test_cfg=dict(mode='panoptic', object_mask_threshold=0.8, overlap_threshold=0.8)))
dataset_type = 'CocoPanopticSegDataset'
data_root = 'data/coco'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='RandomChoiceResize', scales=[480 + 32 * i for i in range(11)],
         resize_type='ResizeShortestEdge', max_size=1333),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPanopticSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=800, max_size=1333),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackPanopticSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_train2017.json',
        data_prefix=dict(img_path='train2017', seg_map_path='annotations/panoptic_train2017'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_val2017.json',
        data_prefix=dict(img_path='val2017', seg_map_path='annotations/panoptic_val2017'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='PanopticQualityMetric'), dict(type='IoUMetric', iou_metrics=['mIoU'])]
test_evaluator = val_evaluator

max_iters = 554000
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.0001),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=50000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=50000))
