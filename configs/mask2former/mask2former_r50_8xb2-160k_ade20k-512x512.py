# Mask2Former R50 on ADE20K-150 (facebookresearch/Mask2Former
# configs/ade20k/semantic-segmentation/maskformer2_R50_bs16_160k.yaml): the MaskFormer R50 ADE20K
# recipe's data (512×512 crops, batch 16 = 8 GPUs × 2, 160k iterations) with Mask2Former's head,
# losses and matching (Mask2FormerHead defaults) and weight decay 0.05, none on norms and
# embeddings. Paper: 47.2 mIoU single scale, 49.2 multi-scale + flip.
_base_ = '../maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py'
model = dict(
    decode_head=dict(
        _delete_=True,
        type='mmseg_maskformer.Mask2FormerHead',
        in_channels=[256, 512, 1024, 2048],
        in_index=[0, 1, 2, 3],
        num_classes=150,
        num_queries=100,
        pixel_decoder=dict(type='MSDeformAttnPixelDecoder', feat_channels=256,
                           num_encoder_layers=6, num_heads=8, num_points=4,
                           feedforward_channels=1024, dropout=0.0),
        mask_channels=256,
        transformer_decoder=dict(num_layers=9, embed_dims=256, num_heads=8,
                                 feedforward_channels=2048, dropout=0.0),
        loss_impl=None,
        num_points=12544,
        ignore_index=255))
optim_wrapper = dict(
    optimizer=dict(weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={
        'backbone': dict(lr_mult=0.1),
        'query_embed': dict(decay_mult=0.0),
        'query_feat': dict(decay_mult=0.0),
        'level_embed': dict(decay_mult=0.0),
    }))
