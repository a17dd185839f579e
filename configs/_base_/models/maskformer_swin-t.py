# MaskFormer with a Swin-T backbone (mmseg's SwinTransformer; the official D2SwinTransformer has
# the same structure: facebookresearch/MaskFormer mask_former/modeling/backbone/swin.py and
# configs/ade20k-150/swin/maskformer_swin_tiny_bs16_160k.yaml): patch 4, window 7, embed 96,
# depths 2-2-6-2, heads 3-6-12-24, drop path 0.3, no absolute position embedding, an output
# LayerNorm per stage. Pretrained: the ImageNet-1k Swin-T that mmseg converts from the original
# release, as the official run.
_base_ = './maskformer_r50-d32.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_tiny_patch4_window7_224_20220317-1cdeb081.pth'  # noqa
model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        pretrain_img_size=224,
        embed_dims=96,
        patch_size=4,
        window_size=7,
        mlp_ratio=4,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        strides=(4, 2, 2, 2),
        out_indices=(0, 1, 2, 3),
        qkv_bias=True,
        qk_scale=None,
        patch_norm=True,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.3,
        use_abs_pos_embed=False,
        act_cfg=dict(type='GELU'),
        norm_cfg=dict(type='LN', requires_grad=True),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[96, 192, 384, 768]))
