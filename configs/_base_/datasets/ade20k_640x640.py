# ADE20K-150 at 640 (the official Swin-B / Swin-L recipe, facebookresearch/MaskFormer
# configs/ade20k-150/swin/maskformer_swin_{base,large}_IN21k_384_bs16_160k_res640.yaml): training
# shortest edge int(x * 0.1 * 640), x = 5..20, longest <= 2560, 640×640 crops; test shortest edge
# 640, longest <= 2560; test-time augmentation: shortest edges 320..1120, longest <= 4480, flip.
_base_ = './ade20k.py'
crop_size = (640, 640)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSizeCheckedAnnotations', reduce_zero_label=True),
    dict(type='RandomChoiceResize', scales=[int(x * 0.1 * 640) for x in range(5, 21)],
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
