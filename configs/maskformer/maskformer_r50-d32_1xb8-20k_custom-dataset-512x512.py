# Template: MaskFormer R50 on YOUR folder dataset. Copy this file, edit the settings below, run
#   python tools/check_dataset.py MY_CONFIG.py   and   python tools/train.py MY_CONFIG.py
# Layout (mmseg's BaseSegDataset): data_root/img_dir/{train,val}/NAME<img_suffix> and
# data_root/ann_dir/{train,val}/NAME<seg_map_suffix>, the masks single-channel PNGs with one class
# index 0..len(classes)-1 per pixel and ignore_index for "don't care" pixels.
_base_ = [
    '../_base_/models/maskformer_r50-d32.py', '../_base_/default_runtime.py',
    '../_base_/schedules/maskformer_adamw_160k.py'
]

# ---- edit these -------------------------------------------------------------------------------
data_root = 'data/my_dataset'
classes = ('background', 'object')  # the class of mask value i is classes[i]
palette = [[0, 0, 0], [220, 20, 60]]  # one RGB colour per class, for pictures
img_suffix = '.jpg'
seg_map_suffix = '.png'
# True when 0 in the masks means "unlabelled": 0 becomes ignore_index and i becomes i-1
# (then classes lists the classes of mask values 1, 2, ...), as for ADE20K.
reduce_zero_label = False
ignore_index = 255
img_scale = (2048, 512)  # images are resized to fit in this (long, short) side, at test time
crop_size = (512, 512)  # training: resized by 0.5-2 x img_scale, then cropped to (H, W)
max_iters = 20000
# ------------------------------------------------------------------------------------------------

metainfo = dict(classes=classes, palette=palette)
# LoadSizeCheckedAnnotations: mmseg's LoadAnnotations (same arguments) that stops at a mask whose
# size differs from its image's, naming both files (RandomResize would stretch it unnoticed).
data_preprocessor = dict(size=crop_size, seg_pad_val=ignore_index)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=len(classes), ignore_index=ignore_index))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSizeCheckedAnnotations', reduce_zero_label=reduce_zero_label),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75, ignore_index=ignore_index),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadSizeCheckedAnnotations', reduce_zero_label=reduce_zero_label),
    dict(type='PackSegInputs')
]
dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=metainfo,
    img_suffix=img_suffix,
    seg_map_suffix=seg_map_suffix,
    reduce_zero_label=reduce_zero_label,
    ignore_index=ignore_index)
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **dataset,
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# The paper's optimiser (AdamW 1e-4, backbone x0.1, clipping, poly) over a short schedule, one GPU
# with batch 8; validation and a checkpoint every 2000 iterations, the best mIoU kept.
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=2000, max_keep_ckpts=2, save_best='mIoU'))
