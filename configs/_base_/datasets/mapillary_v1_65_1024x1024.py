# Mapillary Vistas v1.2, 65 classes (ignore 65), with the Mask2Former crop
# (facebookresearch/Mask2Former
# configs/mapillary-vistas/semantic-segmentation/Base-MapillaryVistas-SemanticSegmentation.yaml):
# 1024×1024 crops instead of MaskFormer's 1280×1280; everything else as mapillary_v1_65.py
# (training shortest edge int(x * 0.1 * 2048), longest <= 8192, flip, SSD colour jitter; test
# shortest edge 2048, longest <= 2048; no official TEST.AUG, see mapillary_v1_65.py).
_base_ = './mapillary_v1_65.py'
crop_size = (1024, 1024)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSizeCheckedAnnotations'),
    dict(type='RandomChoiceResize', scales=[int(x * 0.1 * 2048) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=8192),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0, ignore_index=65),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
