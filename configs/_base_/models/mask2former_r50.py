# Mask2Former R50 (Cheng et al., "Masked-attention Mask Transformer for Universal Image
# Segmentation", CVPR 2022; facebookresearch/Mask2Former
# configs/ade20k/semantic-segmentation/maskformer2_R50_bs16_160k.yaml): torchvision's ResNet-50
# with frozen BatchNorm (RESNETS.NORM unset in the base yaml), the multi-scale deformable-attention
# pixel decoder (6 encoder layers on res3-res5, GN, 256 wide) and 9 masked-attention decoder
# layers (256 wide, 8 heads, FFN 2048, no dropout), 100 queries. Losses, matching and point
# sampling are Mask2FormerHead's defaults (the official ones); inference pads test images to a
# multiple of 32 (MASK_FORMER.SIZE_DIVISIBILITY: 32). Datasets set num_classes and the crop size.
_base_ = './maskformer_r50-d32.py'
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
