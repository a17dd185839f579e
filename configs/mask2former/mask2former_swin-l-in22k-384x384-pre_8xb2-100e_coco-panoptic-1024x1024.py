# COCO panoptic, Swin-L pretrained on ImageNet-22k at 384 (facebookresearch/Mask2Former
# configs/coco/panoptic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_100ep.yaml): Swin-B
# with embed 192, heads 6-12-24-48; 200 queries (NUM_OBJECT_QUERIES 200); 100 epochs = 737,500
# iterations with lr ×0.1 at 655,556 and 710,184; batch 16 (the official run used 16 GPUs × 1
# image, MODEL_ZOO.md). Official: 57.8 PQ (48.6 AP, 67.4 mIoU).
_base_ = './mask2former_swin-b-in22k-384x384-pre_8xb2-50e_coco-panoptic-1024x1024.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_large_patch4_window12_384_22k_20220412-6580f57d.pth'  # noqa
max_iters = 737500
model = dict(
    backbone=dict(
        embed_dims=192,
        num_heads=[6, 12, 24, 48],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[192, 384, 768, 1536], num_queries=200))
param_scheduler = [
    dict(type='MultiStepLR', milestones=[655556, 710184], gamma=0.1, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters)
