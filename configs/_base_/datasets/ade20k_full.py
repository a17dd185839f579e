# ADE20K-Full, 847 classes, as written by the official preparation script
# (facebookresearch/MaskFormer datasets/prepare_ade20k_full_sem_seg.py): images resized to a
# shortest edge <= 512 under data/ADE20K_2021_17_01/images_detectron2/{training,validation}/*.jpg,
# labels as 16-bit TIFFs (train IDs 0..846, 65535 = ignore) under annotations_detectron2/.
# 16-bit labels need Load16BitAnnotations (mmseg's LoadAnnotations casts to uint8), and every
# place that pads or ignores uses 65535 (crop, data preprocessor, head, metric).
# Recipe (configs/ade20k-full-847/Base-ADE20KFull-847.yaml): as ADE20K-150 at 512.
# Test-time augmentation: the official config has no TEST.AUG and the zoo has no multi-scale
# result for ADE20K-Full; the ADE20K-150 512 sizes are used (256..896, longest <= 3584, flip).
dataset_type = 'ADE20KFullDataset'
data_root = 'data/ADE20K_2021_17_01'
ignore_index = 65535
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Load16BitAnnotations'),
    dict(type='RandomChoiceResize', scales=[int(x * 0.1 * 512) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=2048),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0, ignore_index=ignore_index),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=512, max_size=2048),
    dict(type='Load16BitAnnotations'),
    dict(type='PackSegInputs')
]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='ResizeShortestEdge', scale=s, max_size=3584)
         for s in (256, 384, 512, 640, 768, 896)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='Load16BitAnnotations')],
        [dict(type='PackSegInputs')],
    ])
]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images_detectron2/training',
                         seg_map_path='annotations_detectron2/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images_detectron2/validation',
                         seg_map_path='annotations_detectron2/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=ignore_index)
test_evaluator = val_evaluator
