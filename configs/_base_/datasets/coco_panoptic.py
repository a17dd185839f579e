# COCO 2017 panoptic (133 classes: 80 things, then 53 stuff) under data/coco:
# train2017/, val2017/, annotations/panoptic_{train,val}2017.json and PNG folders.
# The official recipe (facebookresearch/MaskFormer configs/coco-panoptic/
# Base-COCO-PanopticSegmentation.yaml and mask_former/data/dataset_mappers/
# detr_panoptic_dataset_mapper.py, the DETR augmentation): flip; then with probability 1/2 a
# resize to a shortest edge of 480..800 (step 32, longest <= 1333), else a resize to a shortest
# edge of 400, 500 or 600 (no longest-edge limit), a random crop of 384..600 per side and the
# 480..800 resize; test: shortest edge 800, longest <= 1333. No colour jitter.
dataset_type = 'CocoPanopticSegDataset'
data_root = 'data/coco'
train_scales = [480 + 32 * i for i in range(11)]
train_max_size = 1333
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=train_scales,
                  resize_type='ResizeShortestEdge', max_size=train_max_size)],
            [dict(type='RandomChoiceResize', scales=[400, 500, 600],
                  resize_type='ResizeShortestEdge', max_size=1 << 30),
             dict(type='RandomRangeCrop', size_range=(384, 600)),
             dict(type='RandomChoiceResize', scales=train_scales,
                  resize_type='ResizeShortestEdge', max_size=train_max_size)],
        ]),
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
