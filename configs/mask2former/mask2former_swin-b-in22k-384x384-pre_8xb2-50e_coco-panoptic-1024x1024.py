# COCO panoptic, Swin-B pretrained on ImageNet-22k at 384 (facebookresearch/Mask2Former
# configs/coco/panoptic-segmentation/swin/maskformer2_swin_base_IN21k_384_bs16_50ep.yaml): the
# ImageNet-1k Swin-B recipe with the ImageNet-22k weights. Official: 56.4 PQ (46.3 AP, 67.1 mIoU).
_base_ = './mask2former_swin-b-in1k-384x384-pre_8xb2-50e_coco-panoptic-1024x1024.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_base_patch4_window12_384_22k_20220317-e5c09f74.pth'  # noqa
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)))
