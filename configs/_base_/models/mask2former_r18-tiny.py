# A tiny Mask2Former for 128×128 images and CPU training, the counterpart of
# maskformer_r18-tiny.py: the same ResNet-18 with 16 base channels, a 2-layer deformable-attention
# pixel decoder and a 6-layer masked-attention decoder, 64 wide, 20 queries. Losses and matching
# are Mask2Former's (CE 2, BCE 5, dice 5 on sampled points); 784 points per mask keep the official
# ratio of points to mask-logit pixels (12544 for the 128² logits of 512² crops).
_base_ = './maskformer_r18-tiny.py'
model = dict(
    decode_head=dict(
        _delete_=True,
        type='mmseg_maskformer.Mask2FormerHead',
        in_channels=[16, 32, 64, 128],
        in_index=[0, 1, 2, 3],
        num_classes=6,
        num_queries=20,
        pixel_decoder=dict(type='MSDeformAttnPixelDecoder', feat_channels=64,
                           num_encoder_layers=2, num_heads=4, feedforward_channels=256,
                           num_groups=16),
        mask_channels=64,
        transformer_decoder=dict(num_layers=6, embed_dims=64, num_heads=4,
                                 feedforward_channels=256, dropout=0.0),
        num_points=784))
