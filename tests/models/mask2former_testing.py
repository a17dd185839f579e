"""Hugging Face Mask2Former modules with random weights and their state dicts in our names: the
oracle of the Mask2Former tests."""
import re

import torch


def hf_pixel_decoder_name(name: str) -> str:
    """HF ``Mask2FormerPixelDecoder`` parameter name -> our ``MSDeformAttnPixelDecoder``'s."""
    for old, new in (('input_projections.', 'input_projs.'), ('encoder.layers.', 'encoder.'),
                     ('self_attn_layer_norm', 'norm1'), ('final_layer_norm', 'norm2'),
                     ('.fc1.', '.ffn.0.'), ('.fc2.', '.ffn.3.'),
                     ('mask_projection', 'mask_feature'), ('adapter_1.0', 'lateral_conv.conv'),
                     ('adapter_1.1', 'lateral_conv.gn'), ('layer_1.0', 'output_conv.conv'),
                     ('layer_1.1', 'output_conv.gn')):
        name = name.replace(old, new)
    return re.sub(r'^input_projs\.(\d)\.([01])\.',
                  lambda m: f'input_projs.{m.group(1)}.{("conv", "gn")[int(m.group(2))]}.', name)


def hf_decoder_state(hf_state, class_predictor):
    """HF transformer-module (+ class predictor) state dict -> ours; q/k/v packed."""
    renames = (('queries_embedder', 'query_embed'), ('queries_features', 'query_feat'),
               ('input_projections', 'input_projs'), ('decoder.layers.', 'layers.'),
               ('cross_attn_layer_norm', 'norm1'), ('self_attn_layer_norm', 'norm2'),
               ('final_layer_norm', 'norm3'), ('.fc1.', '.ffn.0.'), ('.fc2.', '.ffn.3.'),
               ('decoder.layernorm', 'decoder_norm'),
               ('decoder.mask_predictor.mask_embedder.', 'mask_embed.layers.'))
    state = {}
    for name, value in hf_state.items():
        for old, new in renames:
            name = name.replace(old, new)
        name = re.sub(r'^mask_embed\.layers\.(\d)\.0\.', r'mask_embed.layers.\1.', name)
        state[name] = value
    for key in [k for k in state if k.endswith('self_attn.q_proj.weight')]:
        prefix = key[:-len('q_proj.weight')]
        for kind in ('weight', 'bias'):
            state[f'{prefix}in_proj_{kind}'] = torch.cat(
                [state.pop(f'{prefix}{p}_proj.{kind}') for p in 'qkv'])
    state['cls_embed.weight'] = class_predictor.weight
    state['cls_embed.bias'] = class_predictor.bias
    return state


def randomise(*modules, std=0.3):
    """Every parameter drawn from N(0, std²): no zero biases or unit norms hide a wrong mapping."""
    with torch.no_grad():
        for module in modules:
            for parameter in module.parameters():
                parameter.normal_(std=std)
