# COCO 2017 panoptic (133 classes: 80 things, then 53 stuff) under data/coco:
# train2017/, val2017/, annotations/panoptic_{train,val}2017.json and PNG folders.
# Training: short side 480-800 (step 32), long side <= 1333, flip; test: short side 800.
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
