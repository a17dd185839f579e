# Cityscapes, 19 classes, in mmseg's layout (data/cityscapes: leftImg8bit/, gtFine/ with
# *_labelTrainIds.png from mmseg's tools/dataset_converters/cityscapes.py) with the official
# MaskFormer recipe (facebookresearch/MaskFormer configs/cityscapes-19/Base-Cityscapes-19.yaml):
# training shortest edge int(x * 0.1 * 1024), x = 5..20, longest <= 4096, 512×1024 crops, flip,
# SSD colour jitter; test shortest edge 1024, longest <= 2048 (the original 1024×2048);
# test-time augmentation (TEST.AUG): shortest edges 512..1792, longest <= 4096, flip.
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
crop_size = (512, 1024)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSizeCheckedAnnotations'),
    dict(type='RandomChoiceResize', scales=[int(x * 0.1 * 1024) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=4096),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=1024, max_size=2048),
    dict(type='LoadSizeCheckedAnnotations'),
    dict(type='PackSegInputs')
]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='ResizeShortestEdge', scale=s, max_size=4096)
         for s in (512, 768, 1024, 1280, 1536, 1792)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadSizeCheckedAnnotations')],
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
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
