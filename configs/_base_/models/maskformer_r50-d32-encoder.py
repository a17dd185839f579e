# MaskFormer R50 with the TransformerEncoderPixelDecoder (a 6-layer DETR encoder on the stride-32
# feature feeds the FPN and the transformer decoder), the official COCO-panoptic model.
_base_ = './maskformer_r50-d32.py'
custom_imports = dict(
    imports=['mmseg_maskformer.models', 'mmseg_maskformer.datasets', 'mmseg_maskformer.evaluation'],
    allow_failed_imports=False)
model = dict(
    type='mmseg_maskformer.MaskFormerSegmentor',
    decode_head=dict(
        pixel_decoder=dict(
            _delete_=True,
            type='TransformerEncoderPixelDecoder',
            feat_channels=256,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            num_encoder_layers=6,
            num_heads=8,
            feedforward_channels=2048,
            dropout=0.1)))
