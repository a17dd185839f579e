# COCO 2017 panoptic (133 classes) with Mask2Former's large-scale jittering (LSJ)
# (facebookresearch/Mask2Former
# configs/coco/panoptic-segmentation/Base-COCO-PanopticSegmentation.yaml: INPUT.IMAGE_SIZE 1024,
# MIN_SCALE 0.1, MAX_SCALE 2.0, DATASET_MAPPER_NAME "coco_panoptic_lsj";
# mask2former/data/dataset_mappers/coco_panoptic_new_baseline_dataset_mapper.py
# build_transform_gen): horizontal flip; detectron2's ResizeScale (a scale drawn uniformly from
# 0.1..2.0, the image resized so that it fits in 1024·scale × 1024·scale) = mmcv's RandomResize
# with ratio_range and keep_ratio; detectron2's FixedSizeCrop(1024, 1024) = a random 1024×1024
# crop of larger images (mmseg's RandomCrop without a category-area limit) plus padding to
# 1024×1024, which the data preprocessor's size=(1024, 1024) does at batch time (image padded with
# 0 after normalisation rather than FixedSizeCrop's 128 before it; labels with 255 / void).
# No colour jitter. Test as coco_panoptic.py: shortest edge 800, longest <= 1333 (detectron2's
# default INPUT.MIN/MAX_SIZE_TEST, which the Mask2Former yaml keeps). Batch 2 per GPU.
_base_ = './coco_panoptic.py'
image_size = (1024, 1024)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=image_size, cat_max_ratio=1.0),
    dict(type='PackPanopticSegInputs')
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
