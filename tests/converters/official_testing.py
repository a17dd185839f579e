"""Official-format MaskFormer and Mask2Former checkpoints (facebookresearch/MaskFormer,
facebookresearch/Mask2Former) made from random HF models.

The official -> HF key mapping is the one of transformers' conversion scripts
(``src/transformers/models/maskformer/convert_maskformer_{resnet,swin}_to_pytorch.py``:
``create_rename_keys``, ``read_in_swin_q_k_v``, ``read_in_decoder_q_k_v``;
``src/transformers/models/mask2former/``
``convert_mask2former_original_pytorch_checkpoint_to_pytorch.py``: ``replace_swin_backbone``,
``replace_pixel_module``, ``rename_keys_in_masked_attention_decoder``,
``replace_keys_qkv_transformer_decoder``, ``replace_universal_segmentation_module``), written out
here independently of the converters and run backwards: HF model -> official-format dict. The HF
model then serves as the executable oracle of what the official network computes.
"""
import pickle

import numpy as np
import torch
from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, ResNetConfig

# Names transformers 5 gave the decoder-layer modules the scripts still call by their old names.
HF_RENAMES = (('.self_attn.out_proj.', '.self_attn.o_proj.'),
              ('.encoder_attn.out_proj.', '.encoder_attn.o_proj.'),
              ('.fc1.', '.mlp.fc1.'), ('.fc2.', '.mlp.fc2.'))
LINEAR = ('weight', 'bias')
BN = ('weight', 'bias', 'running_mean', 'running_var')


def _current_hf_name(script_name: str) -> str:
    if script_name.startswith('model.transformer_module.decoder.layers.'):
        for old, new in HF_RENAMES:
            script_name = script_name.replace(old, new)
    return script_name


def _resnet_renames(backbone):
    hf = 'model.pixel_level_module.encoder'
    yield 'backbone.stem.conv1.weight', f'{hf}.embedder.embedder.convolution.weight'
    for p in BN:
        yield f'backbone.stem.conv1.norm.{p}', f'{hf}.embedder.embedder.normalization.{p}'
    for stage, blocks in enumerate(backbone.depths):
        for block in range(blocks):
            official = f'backbone.res{stage + 2}.{block}'
            layer = f'{hf}.encoder.stages.{stage}.layers.{block}'
            if block == 0:
                yield f'{official}.shortcut.weight', f'{layer}.shortcut.convolution.weight'
                for p in BN:
                    yield f'{official}.shortcut.norm.{p}', f'{layer}.shortcut.normalization.{p}'
            for i in range(3):
                yield f'{official}.conv{i + 1}.weight', f'{layer}.layer.{i}.convolution.weight'
                for p in BN:
                    yield f'{official}.conv{i + 1}.norm.{p}', f'{layer}.layer.{i}.normalization.{p}'


def _swin_renames(backbone):
    hf = 'model.pixel_level_module.encoder.model'
    for p in LINEAR:
        yield f'backbone.patch_embed.proj.{p}', f'{hf}.embeddings.patch_embeddings.projection.{p}'
        yield f'backbone.patch_embed.norm.{p}', f'{hf}.embeddings.norm.{p}'
    for i, blocks in enumerate(backbone.depths):
        for j in range(blocks):
            official = f'backbone.layers.{i}.blocks.{j}'
            block = f'{hf}.encoder.layers.{i}.blocks.{j}'
            for name in ('relative_position_bias_table', 'relative_position_index'):
                yield f'{official}.attn.{name}', f'{block}.attention.self.{name}'
            for p in LINEAR:
                yield f'{official}.norm1.{p}', f'{block}.layernorm_before.{p}'
                yield f'{official}.attn.proj.{p}', f'{block}.attention.output.dense.{p}'
                yield f'{official}.norm2.{p}', f'{block}.layernorm_after.{p}'
                yield f'{official}.mlp.fc1.{p}', f'{block}.intermediate.dense.{p}'
                yield f'{official}.mlp.fc2.{p}', f'{block}.output.dense.{p}'
        if i < 3:
            yield (f'backbone.layers.{i}.downsample.reduction.weight',
                   f'{hf}.encoder.layers.{i}.downsample.reduction.weight')
            for p in LINEAR:
                yield (f'backbone.layers.{i}.downsample.norm.{p}',
                       f'{hf}.encoder.layers.{i}.downsample.norm.{p}')
        for p in LINEAR:
            yield (f'backbone.norm{i}.{p}',
                   f'model.pixel_level_module.encoder.hidden_states_norms.{i}.{p}')


def _head_renames(decoder_layers):
    decoder = 'model.pixel_level_module.decoder'
    for p in ('weight', ):
        yield f'sem_seg_head.layer_4.{p}', f'{decoder}.fpn.stem.0.{p}'
    for p in LINEAR:
        yield f'sem_seg_head.layer_4.norm.{p}', f'{decoder}.fpn.stem.1.{p}'
    for source_index, target_index in zip(range(3, 0, -1), range(0, 3)):
        yield (f'sem_seg_head.adapter_{source_index}.weight',
               f'{decoder}.fpn.layers.{target_index}.proj.0.weight')
        yield (f'sem_seg_head.layer_{source_index}.weight',
               f'{decoder}.fpn.layers.{target_index}.block.0.weight')
        for p in LINEAR:
            yield (f'sem_seg_head.adapter_{source_index}.norm.{p}',
                   f'{decoder}.fpn.layers.{target_index}.proj.1.{p}')
            yield (f'sem_seg_head.layer_{source_index}.norm.{p}',
                   f'{decoder}.fpn.layers.{target_index}.block.1.{p}')
    for p in LINEAR:
        yield f'sem_seg_head.mask_features.{p}', f'{decoder}.mask_projection.{p}'
    predictor = 'sem_seg_head.predictor'
    transformer = 'model.transformer_module'
    for idx in range(decoder_layers):
        official = f'{predictor}.transformer.decoder.layers.{idx}'
        hf = f'{transformer}.decoder.layers.{idx}'
        for p in LINEAR:
            yield f'{official}.self_attn.out_proj.{p}', f'{hf}.self_attn.out_proj.{p}'
            yield f'{official}.multihead_attn.out_proj.{p}', f'{hf}.encoder_attn.out_proj.{p}'
            yield f'{official}.linear1.{p}', f'{hf}.fc1.{p}'
            yield f'{official}.linear2.{p}', f'{hf}.fc2.{p}'
            yield f'{official}.norm1.{p}', f'{hf}.self_attn_layer_norm.{p}'
            yield f'{official}.norm2.{p}', f'{hf}.encoder_attn_layer_norm.{p}'
            yield f'{official}.norm3.{p}', f'{hf}.final_layer_norm.{p}'
    for p in LINEAR:
        yield f'{predictor}.transformer.decoder.norm.{p}', f'{transformer}.decoder.layernorm.{p}'
        yield f'{predictor}.input_proj.{p}', f'{transformer}.input_projection.{p}'
        yield f'{predictor}.class_embed.{p}', f'class_predictor.{p}'
        for i in range(3):
            yield f'{predictor}.mask_embed.layers.{i}.{p}', f'mask_embedder.{i}.0.{p}'
    yield f'{predictor}.query_embed.weight', f'{transformer}.queries_embedder.weight'


def _packed_projections(config):
    """(official packed key, HF q/k/v keys): decoder attentions and, for Swin, ``attn.qkv``."""
    for idx in range(config.decoder_config.decoder_layers):
        for official_attn, hf_attn in (('self_attn', 'self_attn'),
                                       ('multihead_attn', 'encoder_attn')):
            for p in LINEAR:
                yield (f'sem_seg_head.predictor.transformer.decoder.layers.{idx}.{official_attn}.'
                       f'in_proj_{p}', [f'model.transformer_module.decoder.layers.{idx}.{hf_attn}.'
                                        f'{x}_proj.{p}' for x in 'qkv'])
    backbone = config.backbone_config
    if 'swin' in backbone.model_type:
        hf = 'model.pixel_level_module.encoder.model.encoder.layers'
        for i, blocks in enumerate(backbone.depths):
            for j in range(blocks):
                for p in LINEAR:
                    yield (f'backbone.layers.{i}.blocks.{j}.attn.qkv.{p}',
                           [f'{hf}.{i}.blocks.{j}.attention.self.{x}.{p}'
                            for x in ('query', 'key', 'value')])


def official_state_from_hf(hf_model, pixel_decoder_prefix: bool = False) -> dict:
    """{official key: numpy array} of an HF ``MaskFormerForInstanceSegmentation``.

    ``pixel_decoder_prefix``: name the pixel decoder as the official code writes it
    (``sem_seg_head.pixel_decoder.layer_4``) instead of the released files' raw names.
    """
    config = hf_model.config
    hf_state = hf_model.state_dict()
    backbone = config.backbone_config
    renames = list(_swin_renames(backbone) if 'swin' in backbone.model_type else
                   _resnet_renames(backbone))
    renames += list(_head_renames(config.decoder_config.decoder_layers))
    official = {}
    used = set()
    for official_key, script_key in renames:
        hf_key = _current_hf_name(script_key)
        if hf_key not in hf_state and ('shortcut' in hf_key or 'input_projection' in hf_key):
            continue  # absent in this HF model (no projection needed)
        official[official_key] = hf_state[hf_key]
        used.add(hf_key)
    for official_key, hf_keys in _packed_projections(config):
        official[official_key] = torch.cat([hf_state[_current_hf_name(k)] for k in hf_keys])
        used.update(_current_hf_name(k) for k in hf_keys)
    # The official criterion buffer: 1 per class, the no-object weight last.
    official['criterion.empty_weight'] = hf_state['criterion.empty_weight']
    used.add('criterion.empty_weight')
    unused = {k for k in hf_state.keys() - used
              if not k.endswith('num_batches_tracked')
              and not k.startswith('model.pixel_level_module.encoder.model.layernorm.')}
    assert not unused, f'the oracle mapping misses HF tensors: {sorted(unused)[:5]}'
    if pixel_decoder_prefix:
        official = {
            k.replace('sem_seg_head.', 'sem_seg_head.pixel_decoder.')
            if k.startswith('sem_seg_head.') and not k.startswith('sem_seg_head.predictor.')
            else k: v for k, v in official.items()}
    return {k: v.detach().numpy().copy() for k, v in official.items()}


def write_official_pkl(path, state: dict) -> str:
    """The released format: a pickle of ``{'model': {name: ndarray}, '__author__': ...}``."""
    with open(path, 'wb') as f:
        pickle.dump({'model': state, '__author__': 'test'}, f)
    return str(path)


def write_official_pth(path, state: dict) -> str:
    """What the official training code writes: ``{'model': {name: tensor}, 'iteration': ...}``."""
    torch.save({'model': {k: torch.from_numpy(v) for k, v in state.items()}, 'iteration': 7},
               path)
    return str(path)


def random_array(*shape, rng) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32) * 0.2


def zoo_like_cfg(hf_config, backbone: dict, in_channels, pixel_decoder=None,
                 enforce_input_project=False) -> dict:
    """An mmseg config with the structure of configs/maskformer (frozen BN, GN 32 FPN, ...),
    sized like the HF model."""
    decoder = hf_config.decoder_config
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                               seg_pad_val=255),
        backbone=backbone,
        decode_head=dict(
            type='mmseg_maskformer.MaskFormerHead',
            in_channels=in_channels,
            in_index=[0, 1, 2, 3],
            num_classes=hf_config.num_labels,
            num_queries=decoder.num_queries,
            pixel_decoder=pixel_decoder or dict(
                type='BasePixelDecoder', feat_channels=hf_config.fpn_feature_size,
                norm_cfg=dict(type='GN', num_groups=32), act_cfg=dict(type='ReLU')),
            mask_channels=hf_config.mask_feature_size,
            transformer_decoder=dict(
                num_layers=decoder.decoder_layers, embed_dims=decoder.d_model,
                num_heads=decoder.decoder_attention_heads,
                feedforward_channels=decoder.decoder_ffn_dim, dropout=0.1),
            enforce_input_project=enforce_input_project,
            ignore_index=255),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def resnet_backbone(depth=50, stem_channels=16, base_channels=8, **overrides) -> dict:
    cfg = dict(type='ResNet', depth=depth, stem_channels=stem_channels,
               base_channels=base_channels, num_stages=4, out_indices=(0, 1, 2, 3),
               dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2),
               norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, style='pytorch',
               contract_dilation=True)
    cfg.update(overrides)
    return cfg


def add_official_encoder(state, in_channels, conv_dim, num_layers, ffn, rng):
    """Tensors the official TransformerEncoderPixelDecoder adds (``input_proj``,
    ``transformer.encoder.layers.*``; ``layer_4`` then reads ``conv_dim`` channels)."""
    pd = 'sem_seg_head.'
    state[f'{pd}input_proj.weight'] = random_array(conv_dim, in_channels, 1, 1, rng=rng)
    state[f'{pd}input_proj.bias'] = random_array(conv_dim, rng=rng)
    state[f'{pd}layer_4.weight'] = random_array(conv_dim, conv_dim, 3, 3, rng=rng)
    for i in range(num_layers):
        layer = f'{pd}transformer.encoder.layers.{i}'
        state[f'{layer}.self_attn.in_proj_weight'] = random_array(3 * conv_dim, conv_dim, rng=rng)
        state[f'{layer}.self_attn.in_proj_bias'] = random_array(3 * conv_dim, rng=rng)
        state[f'{layer}.self_attn.out_proj.weight'] = random_array(conv_dim, conv_dim, rng=rng)
        state[f'{layer}.self_attn.out_proj.bias'] = random_array(conv_dim, rng=rng)
        state[f'{layer}.linear1.weight'] = random_array(ffn, conv_dim, rng=rng)
        state[f'{layer}.linear1.bias'] = random_array(ffn, rng=rng)
        state[f'{layer}.linear2.weight'] = random_array(conv_dim, ffn, rng=rng)
        state[f'{layer}.linear2.bias'] = random_array(conv_dim, rng=rng)
        for norm in ('norm1', 'norm2'):
            state[f'{layer}.{norm}.weight'] = 1 + random_array(conv_dim, rng=rng)
            state[f'{layer}.{norm}.bias'] = random_array(conv_dim, rng=rng)


# --- Mask2Former -------------------------------------------------------------------------------

def tiny_hf_mask2former(seed=0, backbone=None, **overrides) -> Mask2FormerForUniversalSegmentation:
    """A tiny random HF Mask2Former; ``backbone``: a backbone config (default: the tiny ResNet-50
    layout of ``hf_testing.TINY_BACKBONE``)."""
    from hf_testing import TINY_BACKBONE, randomise
    torch.manual_seed(seed)
    kwargs = dict(backbone_config=backbone or ResNetConfig(**TINY_BACKBONE), feature_size=32,
                  mask_feature_size=32, hidden_dim=32, encoder_feedforward_dim=48,
                  dim_feedforward=48, num_attention_heads=4, encoder_layers=2, decoder_layers=4,
                  num_queries=6, num_labels=5, dropout=0.0, use_auxiliary_loss=True)
    kwargs.update(overrides)
    model = Mask2FormerForUniversalSegmentation(Mask2FormerConfig(**kwargs))
    with torch.no_grad():  # level embeddings and queries too, beyond what randomise() covers
        for name, parameter in model.named_parameters():
            if 'embed' in name or 'queries' in name:
                parameter.normal_(std=0.5)
    return randomise(model).eval()


# transformers 5's SwinBackbone names for what the Mask2Former script still calls by the older
# SwinModel names (its destination keys lack the ``model.`` of the universal-segmentation model).
M2F_SWIN_RENAMES = (
    ('pixel_level_module.encoder.embeddings.', 'pixel_level_module.encoder.swin.embeddings.'),
    ('pixel_level_module.encoder.encoder.', 'pixel_level_module.encoder.swin.encoder.'),
    ('.attention.self.relative_position_bias_table',
     '.attention.relative_position_bias.relative_position_bias_table'),
    ('.attention.self.relative_position_index',
     '.attention.relative_position_bias.relative_position_index'),
    ('.attention.self.query.', '.attention.q_proj.'),
    ('.attention.self.key.', '.attention.k_proj.'),
    ('.attention.self.value.', '.attention.v_proj.'),
    ('.attention.output.dense.', '.attention.o_proj.'),
    ('.intermediate.dense.', '.mlp.fc1.'),
    ('.output.dense.', '.mlp.fc2.'),
)


def _m2f_hf_name(script_name: str, swin: bool) -> str:
    name = script_name if script_name == 'criterion.empty_weight' or script_name.startswith(
        'class_predictor.') else f'model.{script_name}'
    if swin and name.startswith('model.pixel_level_module.encoder.'):
        for old, new in M2F_SWIN_RENAMES:
            name = name.replace(old, new)
    return name


def _m2f_swin_renames(backbone):
    """replace_swin_backbone: (official, script HF name); q/k/v in _m2f_packed."""
    hf = 'pixel_level_module.encoder'
    for p in LINEAR:
        yield f'backbone.patch_embed.proj.{p}', f'{hf}.embeddings.patch_embeddings.projection.{p}'
        yield f'backbone.patch_embed.norm.{p}', f'{hf}.embeddings.norm.{p}'
    for i, blocks in enumerate(backbone.depths):
        for j in range(blocks):
            official = f'backbone.layers.{i}.blocks.{j}'
            block = f'{hf}.encoder.layers.{i}.blocks.{j}'
            for p in LINEAR:
                yield f'{official}.norm1.{p}', f'{block}.layernorm_before.{p}'
                yield f'{official}.attn.proj.{p}', f'{block}.attention.output.dense.{p}'
                yield f'{official}.norm2.{p}', f'{block}.layernorm_after.{p}'
                yield f'{official}.mlp.fc1.{p}', f'{block}.intermediate.dense.{p}'
                yield f'{official}.mlp.fc2.{p}', f'{block}.output.dense.{p}'
            yield (f'{official}.attn.relative_position_bias_table',
                   f'{block}.attention.self.relative_position_bias_table')
        if i < 3:
            yield (f'backbone.layers.{i}.downsample.reduction.weight',
                   f'{hf}.encoder.layers.{i}.downsample.reduction.weight')
            for p in LINEAR:
                yield (f'backbone.layers.{i}.downsample.norm.{p}',
                       f'{hf}.encoder.layers.{i}.downsample.norm.{p}')
        for p in LINEAR:
            yield f'backbone.norm{i}.{p}', f'{hf}.hidden_states_norms.stage{i + 1}.{p}'


def _m2f_head_renames(config):
    """replace_pixel_module, replace_masked_attention_decoder, replace_transformer_module,
    replace_universal_segmentation_module: (official, script HF name)."""
    src, dst = 'sem_seg_head.pixel_decoder', 'pixel_level_module.decoder'
    for name in ('adapter_1', 'layer_1'):
        yield f'{src}.{name}.weight', f'{dst}.{name}.0.weight'
        for p in LINEAR:
            yield f'{src}.{name}.norm.{p}', f'{dst}.{name}.1.{p}'
    for i in range(3):
        for j in range(2):
            for p in LINEAR:
                yield f'{src}.input_proj.{i}.{j}.{p}', f'{dst}.input_projections.{i}.{j}.{p}'
    yield f'{src}.transformer.level_embed', f'{dst}.level_embed'
    for layer in range(config.encoder_layers):
        s, d = f'{src}.transformer.encoder.layers.{layer}', f'{dst}.encoder.layers.{layer}'
        for s_part, d_part in (('linear1', 'fc1'), ('linear2', 'fc2'),
                               ('norm1', 'self_attn_layer_norm'), ('norm2', 'final_layer_norm'),
                               ('self_attn.attention_weights', 'self_attn.attention_weights'),
                               ('self_attn.output_proj', 'self_attn.output_proj'),
                               ('self_attn.sampling_offsets', 'self_attn.sampling_offsets'),
                               ('self_attn.value_proj', 'self_attn.value_proj')):
            for p in LINEAR:
                yield f'{s}.{s_part}.{p}', f'{d}.{d_part}.{p}'
    for p in LINEAR:
        yield f'{src}.mask_features.{p}', f'{dst}.mask_projection.{p}'

    src, dst = 'sem_seg_head.predictor', 'transformer_module.decoder'
    for i in range(config.decoder_layers - 1):
        self_layer = f'{src}.transformer_self_attention_layers.{i}'
        cross_layer = f'{src}.transformer_cross_attention_layers.{i}'
        ffn_layer = f'{src}.transformer_ffn_layers.{i}'
        d = f'{dst}.layers.{i}'
        for p in LINEAR:
            yield f'{self_layer}.self_attn.out_proj.{p}', f'{d}.self_attn.out_proj.{p}'
            yield f'{self_layer}.norm.{p}', f'{d}.self_attn_layer_norm.{p}'
            yield f'{cross_layer}.multihead_attn.in_proj_{p}', f'{d}.cross_attn.in_proj_{p}'
            yield f'{cross_layer}.multihead_attn.out_proj.{p}', f'{d}.cross_attn.out_proj.{p}'
            yield f'{cross_layer}.norm.{p}', f'{d}.cross_attn_layer_norm.{p}'
            yield f'{ffn_layer}.linear1.{p}', f'{d}.fc1.{p}'
            yield f'{ffn_layer}.linear2.{p}', f'{d}.fc2.{p}'
            yield f'{ffn_layer}.norm.{p}', f'{d}.final_layer_norm.{p}'
    for p in LINEAR:
        yield f'{src}.decoder_norm.{p}', f'{dst}.layernorm.{p}'
        for i in range(3):
            yield (f'{src}.mask_embed.layers.{i}.{p}',
                   f'{dst}.mask_predictor.mask_embedder.{i}.0.{p}')
        yield f'{src}.class_embed.{p}', f'class_predictor.{p}'
        # Not in the script (the released models need no projection): the official
        # decoder's input_proj[i] is a detectron2 Conv2d(in_channels, hidden_dim, 1).
        for i in range(3):
            yield f'{src}.input_proj.{i}.{p}', f'transformer_module.input_projections.{i}.{p}'
    yield f'{src}.query_embed.weight', 'transformer_module.queries_embedder.weight'
    yield f'{src}.query_feat.weight', 'transformer_module.queries_features.weight'
    yield f'{src}.level_embed.weight', 'transformer_module.level_embed.weight'


def _m2f_packed(config):
    """(official packed key, script HF q/k/v keys): replace_keys_qkv_transformer_decoder (the
    predictor's self-attention in_proj = cat(q, k, v)) and, for Swin, ``attn.qkv``."""
    for i in range(config.decoder_layers - 1):
        for p in LINEAR:
            yield (f'sem_seg_head.predictor.transformer_self_attention_layers.{i}.self_attn.'
                   f'in_proj_{p}', [f'transformer_module.decoder.layers.{i}.self_attn.{x}_proj.{p}'
                                    for x in 'qkv'])
    backbone = config.backbone_config
    if backbone.model_type == 'swin':
        for i, blocks in enumerate(backbone.depths):
            for j in range(blocks):
                for p in LINEAR:
                    yield (f'backbone.layers.{i}.blocks.{j}.attn.qkv.{p}',
                           [f'pixel_level_module.encoder.encoder.layers.{i}.blocks.{j}.attention.'
                            f'self.{x}.{p}' for x in ('query', 'key', 'value')])


def official_mask2former_state_from_hf(hf_model, pixel_decoder_prefix: bool = True) -> dict:
    """{official key: numpy array} of an HF ``Mask2FormerForUniversalSegmentation``.

    ``pixel_decoder_prefix=False``: pixel-decoder keys without ``pixel_decoder.`` (what the
    official MaskFormerHead._load_from_state_dict renames for version-1 files).
    """
    config = hf_model.config
    # Swin's relative_position_index is a non-persistent buffer in transformers 5.
    hf_state = {**dict(hf_model.named_buffers()), **hf_model.state_dict()}
    backbone = config.backbone_config
    swin = backbone.model_type == 'swin'
    if swin:
        renames = list(_m2f_swin_renames(backbone))
    else:  # the Mask2Former script converts Swin only; HF's ResNetBackbone is MaskFormer's
        renames = [(official, hf[len('model.'):]) for official, hf in _resnet_renames(backbone)]
    renames += list(_m2f_head_renames(config))
    official, used = {}, set()
    for official_key, script_key in renames:
        hf_key = _m2f_hf_name(script_key, swin)
        if hf_key not in hf_state and ('shortcut' in hf_key or 'input_projections' in hf_key):
            continue  # absent in this HF model (no projection needed)
        official[official_key] = hf_state[hf_key]
        used.add(hf_key)
    if swin:  # official Swin buffer: (Wh*Ww, Wh*Ww); HF's is flattened
        for i, blocks in enumerate(backbone.depths):
            for j in range(blocks):
                hf_key = _m2f_hf_name(f'pixel_level_module.encoder.encoder.layers.{i}.blocks.{j}.'
                                      'attention.self.relative_position_index', swin)
                side = backbone.window_size**2
                official[f'backbone.layers.{i}.blocks.{j}.attn.relative_position_index'] = \
                    hf_state[hf_key].reshape(side, side)
                used.add(hf_key)
    for official_key, hf_keys in _m2f_packed(config):
        official[official_key] = torch.cat([hf_state[_m2f_hf_name(k, swin)] for k in hf_keys])
        used.update(_m2f_hf_name(k, swin) for k in hf_keys)
    official['criterion.empty_weight'] = hf_state['criterion.empty_weight']
    used.add('criterion.empty_weight')
    unused = {k for k in hf_state.keys() - used
              if not k.endswith('num_batches_tracked')
              and not k.startswith('model.pixel_level_module.encoder.swin.layernorm.')}
    assert not unused, f'the oracle mapping misses HF tensors: {sorted(unused)[:5]}'
    if not pixel_decoder_prefix:
        official = {k.replace('sem_seg_head.pixel_decoder.', 'sem_seg_head.'): v
                    for k, v in official.items()}
    return {k: v.detach().cpu().numpy().copy() if v.device.type != 'meta' else v
            for k, v in official.items()}


@torch.no_grad()
def mask2former_rel_errors(model, hf_model, pixel_values) -> dict:
    """Max |ours - HF| / max |HF| of the class and of the mask logits over every prediction set
    (HF ``auxiliary_logits``, i.e. before the first decoder layer and after each but the last,
    then the final output); asserts the numbers of sets agree and the masks vary."""
    out = hf_model(pixel_values, output_auxiliary_logits=True)
    all_cls, all_masks = model.decode_head(model.extract_feat(pixel_values))
    want_cls = [aux['class_queries_logits'] for aux in out.auxiliary_logits] + [
        out.class_queries_logits]
    want_masks = [aux['masks_queries_logits'] for aux in out.auxiliary_logits] + [
        out.masks_queries_logits]
    assert len(all_cls) == len(all_masks) == len(want_cls) == hf_model.config.decoder_layers
    assert out.masks_queries_logits.std() > 0.1  # masks that vary, so a misplaced weight shows
    errors = {}
    for kind, got, want in (('class', all_cls, want_cls), ('mask', all_masks, want_masks)):
        errors[kind] = max(((g - w).abs().max() / w.abs().max()).item()
                           for g, w in zip(got, want))
    return errors
