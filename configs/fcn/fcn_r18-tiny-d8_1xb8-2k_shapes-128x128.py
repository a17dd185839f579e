# Per-pixel classification baseline for the demo: the same tiny ResNet-18 (dilated to stride 8)
# with mmseg's FCN head, trained on the same Shapes data with the same schedule.
_base_ = '../maskformer/maskformer_r18-tiny_1xb8-2k_shapes-128x128.py'
model = dict(
    type='EncoderDecoder',
    backbone=dict(dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), contract_dilation=True),
    decode_head=dict(
        _delete_=True,
        type='FCNHead',
        in_channels=128,
        in_index=3,
        channels=64,
        num_convs=2,
        concat_input=True,
        dropout_ratio=0.1,
        num_classes=6,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
# Per-pixel logits: mmseg's merge (softmax per view, then mean) is the right one here.
tta_model = dict(type='SegTTAModel')
