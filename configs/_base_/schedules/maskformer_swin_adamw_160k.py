# The official Swin optimisation (facebookresearch/MaskFormer
# configs/ade20k-150/swin/maskformer_swin_tiny_bs16_160k.yaml, train_net.py build_optimizer):
# AdamW lr 6e-5, weight decay 0.01, backbone lr ×1.0; no weight decay on normalisation layers,
# relative position tables and the query embedding; linear warm-up from 1e-6 over 1500 iterations
# multiplied with the poly decay (power 0.9) over all iterations, as detectron2's WarmupPolyLR.
_base_ = './maskformer_adamw_160k.py'
optim_wrapper = dict(
    optimizer=dict(lr=0.00006, weight_decay=0.01),
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        custom_keys={
            'relative_position_bias_table': dict(decay_mult=0.0),
            'absolute_pos_embed': dict(decay_mult=0.0),
            'query_embed': dict(decay_mult=0.0)
        }))
param_scheduler = [
    # mmengine's LinearLR reaches factor 1 at step end - 1, detectron2's warm-up at 1500.
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1501),
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=160000, by_epoch=False)
]
