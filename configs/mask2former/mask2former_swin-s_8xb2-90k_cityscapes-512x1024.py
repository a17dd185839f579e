# Cityscapes, Swin-S (facebookresearch/Mask2Former
# configs/cityscapes/semantic-segmentation/swin/maskformer2_swin_small_bs16_90k.yaml): Swin-T with
# depths 2-2-18-2, ImageNet-1k weights. Official: 82.6 mIoU s.s., 83.6 m.s.+flip.
_base_ = './mask2former_swin-t_8xb2-90k_cityscapes-512x1024.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_small_patch4_window7_224_20220317-7ba6d6dd.pth'  # noqa
model = dict(
    backbone=dict(
        depths=[2, 2, 18, 2], init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)))
