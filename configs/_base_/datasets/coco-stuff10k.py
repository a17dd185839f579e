# COCO-Stuff-10k, 171 classes, in mmseg's layout (data/coco_stuff10k as written by mmseg's
# tools/dataset_converters/coco_stuff10k.py: train IDs 1..171, 0 = unlabeled, read with
# reduce_zero_label=True) with the official MaskFormer recipe (facebookresearch/MaskFormer
# configs/coco-stuff-10k-171/Base-COCOStuff10K-171.yaml): training shortest edge
# int(x * 0.1 * 640), x = 5..15, longest <= 2560, 640×640 crops, flip, SSD colour jitter; test
# (the 1000 test2014 images) shortest edge 640, longest <= 2560; test-time augmentation
# (TEST.AUG): shortest edges 320..1120, longest <= 4480, flip.
dataset_type = 'COCOStuffDataset'
data_root = 'data/coco_stuff10k'
crop_size = (640, 640)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSizeCheckedAnnotations', reduce_zero_label=True),
    dict(type='RandomChoiceResize', scales=[int(x * 0.1 * 640) for x in range(5, 16)],
         resize_type='ResizeShortestEdge', max_size=2560),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=640, max_size=2560),
    dict(type='LoadSizeCheckedAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='ResizeShortestEdge', scale=s, max_size=4480)
         for s in (320, 480, 640, 800, 960, 1120)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadSizeCheckedAnnotations', reduce_zero_label=True)],
        [dict(type='PackSegInputs')],
    ])
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        reduce_zero_label=True,
        data_prefix=dict(img_path='images/train2014', seg_map_path='annotations/train2014'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        reduce_zero_label=True,
        data_prefix=dict(img_path='images/test2014', seg_map_path='annotations/test2014'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
