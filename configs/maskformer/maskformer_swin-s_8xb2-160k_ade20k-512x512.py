# ADE20K-150, Swin-S (paper: 49.8 mIoU s.s.); schedule as Swin-T.
_base_ = './maskformer_swin-t_8xb2-160k_ade20k-512x512.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_small_patch4_window7_224_20220317-7ba6d6dd.pth'  # noqa
model = dict(
    backbone=dict(
        depths=[2, 2, 18, 2], init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)))
# Swin-S has 12 more blocks in stage 2 than Swin-T: no weight decay on their norms either.
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={
        f'backbone.stages.2.blocks.{block}.norm': dict(lr_mult=1.0, decay_mult=0.0)
        for block in range(6, 18)
    }))
