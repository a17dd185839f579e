# Mask2Former with a Swin-T backbone (facebookresearch/Mask2Former
# configs/ade20k/semantic-segmentation/swin/maskformer2_swin_tiny_bs16_160k.yaml; the other tasks'
# swin/*.yaml set the same SWIN block): mmseg's SwinTransformer with the structure of the
# official D2SwinTransformer (mask2former/modeling/backbone/swin.py): patch 4, window 7, embed 96,
# depths 2-2-6-2, heads 3-6-12-24, MLP ratio 4, qkv bias, drop path 0.3 (SWIN.DROP_PATH_RATE), no
# absolute position embedding (APE False), patch norm, an output LayerNorm per stage.
# Pretrained: the ImageNet-1k Swin-T (swin_tiny_patch4_window7_224) that mmseg converts from the
# original release. The head is the Mask2Former R50 one on 96-768 channels.
_base_ = './mask2former_r50.py'
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
