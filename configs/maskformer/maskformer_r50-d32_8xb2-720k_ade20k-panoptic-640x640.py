# ADE20K panoptic (150 classes, COCO panoptic format as made by the official preparation
# script), R50 + encoder pixel decoder (paper: 34.7 PQ): 640×640 crops, batch 16 (8 × 2), 720k
# iterations, thresholds object 0.7 / overlap 0.8.
_base_ = [
    '../_base_/models/maskformer_r50-d32-encoder.py', 'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py'
]
crop_size = (640, 640)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(
        num_classes=150,
        test_cfg=dict(mode='panoptic', object_mask_threshold=0.7, overlap_threshold=0.8)))
dataset_type = 'CocoPanopticSegDataset'
data_root = 'data/ade/ADEChallengeData2016'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='RandomChoiceResize', scales=[int(640 * r / 10) for r in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=2560),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackPanopticSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=640, max_size=2560),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackPanopticSegInputs')
]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ade20k_panoptic_train.json',
        data_prefix=dict(img_path='images/training', seg_map_path='ade20k_panoptic_train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ade20k_panoptic_val.json',
        data_prefix=dict(img_path='images/validation', seg_map_path='ade20k_panoptic_val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='PanopticQualityMetric'), dict(type='IoUMetric', iou_metrics=['mIoU'])]
test_evaluator = val_evaluator

max_iters = 720000
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.0001),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=50000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=50000))
