# The official Mask2Former optimisation (facebookresearch/Mask2Former
# configs/ade20k/semantic-segmentation/Base-ADE20K-SemanticSegmentation.yaml SOLVER, the same in
# every Base-*.yaml, and train_net.py build_optimizer): AdamW lr 1e-4, weight decay 0.05, backbone
# lr ×0.1 (ResNet and Swin alike), full-model gradient clipping at L2 norm 0.01, poly decay (power
# 0.9) over 160k iterations without warm-up. No weight decay on normalisation layers
# (WEIGHT_DECAY_NORM 0.0), nn.Embedding modules (WEIGHT_DECAY_EMBED 0.0: the decoder's query_feat,
# query_embed and level_embed; the pixel decoder's level_embed is a plain nn.Parameter and decays)
# and Swin's relative_position_bias_table / absolute_pos_embed.
#
# mmengine applies only the longest custom key that a parameter name contains and then skips
# norm_decay_mult, so the backbone's own normalisation layers get keys of their own, longer than
# 'backbone' (lr ×0.1, no decay): mmseg ResNet's .bn1-3.weight/bias and downsample.1, Swin's
# patch_embed.norm, blocks.i.norm1/2, downsample.norm and the output norms backbone.norm0-3. The
# head's norms match no key and get norm_decay_mult 0.
# A config with another length sets max_iters, param_scheduler and train_cfg again.
_base_ = './maskformer_adamw_160k.py'
backbone_no_decay = dict(lr_mult=0.1, decay_mult=0.0)
optim_wrapper = dict(
    optimizer=dict(weight_decay=0.05),
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        custom_keys={
            'backbone': dict(lr_mult=0.1),
            'query_embed': dict(decay_mult=0.0),
            'query_feat': dict(decay_mult=0.0),
            'transformer_decoder.level_embed': dict(decay_mult=0.0),
            'relative_position_bias_table': backbone_no_decay,
            'absolute_pos_embed': backbone_no_decay,
            # ResNet (trained SyncBN, e.g. Cityscapes; frozen BN has no trainable parameter)
            **{f'.bn{i}.{name}': backbone_no_decay
               for i in (1, 2, 3) for name in ('weight', 'bias')},
            'downsample.1': backbone_no_decay,
            # Swin
            'patch_embed.norm': backbone_no_decay,
            'downsample.norm': backbone_no_decay,
            'backbone.norm': backbone_no_decay,
            **{f'blocks.{i}.norm{j}': backbone_no_decay for i in range(18) for j in (1, 2)},
        }))
