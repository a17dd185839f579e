# ADE20K-150 (mmseg's layout: data/ade/ADEChallengeData2016, labels 1..150, 0 = "other" read as
# 255 with reduce_zero_label) with the official MaskFormer data recipe
# (facebookresearch/MaskFormer configs/ade20k-150/Base-ADE20K-150.yaml and
# mask_former/data/dataset_mappers/mask_former_semantic_dataset_mapper.py):
# - training: shortest edge chosen from int(x * 0.1 * 512), x = 5..20, longest edge <= 2048;
#   512×512 crop without a category-area limit (SINGLE_CATEGORY_MAX_AREA 1.0); horizontal flip;
#   SSD colour jitter (mmseg's PhotoMetricDistortion);
# - test: shortest edge 512, longest edge <= 2048;
# - test-time augmentation (TEST.AUG): shortest edges 256..896, longest edge <= 3584, with and
#   without horizontal flip, semantic scores averaged (mmseg_maskformer.MaskFormerTTAModel).
# Annotations are read with LoadSizeCheckedAnnotations, mmseg's LoadAnnotations (same arguments)
# that stops at an annotation whose size differs from its image's, naming both files: the resize
# would otherwise stretch it onto the image unnoticed.
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSizeCheckedAnnotations', reduce_zero_label=True),
    dict(type='RandomChoiceResize', scales=[int(x * 0.1 * 512) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=2048),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=512, max_size=2048),
    # Annotations are loaded after the resize: metrics compare at the original size.
    dict(type='LoadSizeCheckedAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='ResizeShortestEdge', scale=s, max_size=3584)
         for s in (256, 384, 512, 640, 768, 896)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadSizeCheckedAnnotations', reduce_zero_label=True)],
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
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
