"""``convert_official_mask2former`` against an independent oracle.

detectron2 (which the official modules need) is not available offline, so the oracle is HF's
Mask2FormerForUniversalSegmentation with random weights, written out under the official key names
through the mapping of transformers' conversion script, run backwards (``official_testing``):
official-format file -> our converter -> our model == HF logits at every prediction set. The
real ResNet-50 and Swin-T layouts are checked key by key and shape by shape against
configs/mask2former/mask2former_{r50,swin-t}_8xb2-160k_ade20k-512x512.py.
"""
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.apis import init_model
from mmseg.registry import MODELS
from official_testing import (mask2former_rel_errors, official_mask2former_state_from_hf,
                              official_state_from_hf, tiny_hf_mask2former, write_official_pkl,
                              write_official_pth)
from transformers import (Mask2FormerConfig, Mask2FormerForUniversalSegmentation, ResNetConfig,
                          SwinConfig)

from hf_testing import STAGES, tiny_hf_model
from mmseg_maskformer.converters import (check_state_dict_fits, convert_hf_mask2former,
                                         convert_official_mask2former,
                                         convert_official_maskformer, official_model_type)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOGIT_RTOL = 1e-4
ODD_SIZE = (75, 101)


def tiny_swin(window_size=3) -> SwinConfig:
    return SwinConfig(embed_dim=32, depths=[2, 2, 3, 2], num_heads=[1, 2, 4, 8],
                      window_size=window_size, image_size=64, out_features=STAGES)


CASES = {
    # The released layout: .pkl of numpy arrays, sem_seg_head.pixel_decoder.* names, no decoder
    # input projection (pixel-decoder width == hidden_dim).
    'r50-pkl': dict(hf=dict(), writer='pkl', prefix=True),
    # .pth of tensors as the official training writes, pixel-decoder keys without the
    # pixel_decoder. part (the official head's version-1 rule), decoder input projections.
    'r50-pth-input-proj': dict(hf=dict(hidden_dim=64, enforce_input_projection=True),
                               writer='pth', prefix=False),
    'swin-pkl': dict(hf=dict(backbone=tiny_swin()), writer='pkl', prefix=True),
}


@pytest.mark.parametrize('case', CASES)
def test_logits_match_hf_at_every_prediction_set(case, tmp_path, record_property):
    spec = CASES[case]
    hf_model = tiny_hf_mask2former(seed=3, **spec['hf'])
    state = official_mask2former_state_from_hf(hf_model, spec['prefix'])
    writer = write_official_pkl if spec['writer'] == 'pkl' else write_official_pth
    path = writer(tmp_path / f'model_final.{spec["writer"]}', state)
    assert official_model_type(path) == 'Mask2Former'
    state_dict = convert_official_mask2former(path)
    # The config of the same structure (the HF converter's, itself checked against HF).
    model_cfg, hf_state_dict = convert_hf_mask2former(hf_model)
    model = MODELS.build(model_cfg)
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    # Both routes give the same tensors (detectron2's FrozenBatchNorm2d has no batch count).
    assert state_dict.keys() == hf_state_dict.keys()
    differ = [k for k in state_dict if not torch.equal(state_dict[k], hf_state_dict[k])]
    assert all(k.endswith('num_batches_tracked') for k in differ), differ[:5]
    pixel_values = torch.randn(2, 3, *ODD_SIZE, generator=torch.Generator().manual_seed(1))
    for kind, rel in mask2former_rel_errors(model, hf_model, pixel_values).items():
        record_property(f'{case}.{kind}_logits_rel_diff', rel)
        print(f'{case} {kind} logits max rel diff (all prediction sets): {rel:.3g}')
        assert rel <= LOGIT_RTOL, (kind, rel)


ZOO_LAYOUTS = {
    'r50': dict(config='mask2former_r50_8xb2-160k_ade20k-512x512.py',
                backbone=lambda: ResNetConfig(out_features=STAGES)),
    'swin-t': dict(config='mask2former_swin-t_8xb2-160k_ade20k-512x512.py',
                   backbone=lambda: SwinConfig(embed_dim=96, depths=[2, 2, 6, 2],
                                               num_heads=[3, 6, 12, 24], window_size=7,
                                               image_size=224, out_features=STAGES)),
}


@pytest.mark.parametrize('layout', ZOO_LAYOUTS)
def test_released_layout_fits_the_zoo_config(layout):
    """The released ADE20K layouts (150 classes, 100 queries, 6 encoder and 9 + 1 decoder layers,
    256 wide), from an HF model on the meta device: keys and shapes only, no weights
    materialised (mmseg's Swin cannot be built on the meta device: that model is built on CPU
    and checked with check_state_dict_fits, which names what strict loading would refuse)."""
    spec = ZOO_LAYOUTS[layout]
    hf_config = Mask2FormerConfig(backbone_config=spec['backbone'](), num_labels=150)
    with torch.device('meta'):
        hf_model = Mask2FormerForUniversalSegmentation(hf_config)
    state = official_mask2former_state_from_hf(hf_model)
    assert len([k for k in state if k.startswith('sem_seg_head.predictor.'
                                                 'transformer_cross_attention_layers.')
                and k.endswith('.norm.weight')]) == 9
    state_dict = convert_official_mask2former({'model': state})
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'mask2former', spec['config']))
    if layout == 'r50':
        with torch.device('meta'):
            model = MODELS.build(cfg.model)
        check_state_dict_fits(state_dict, model)
        model.load_state_dict(state_dict, strict=True, assign=True)
    else:
        check_state_dict_fits(state_dict, MODELS.build(cfg.model))


# --- errors ------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def official_state():
    return official_mask2former_state_from_hf(tiny_hf_mask2former(seed=5))


def test_neither_maskformer_nor_mask2former_names_the_expected_keys():
    checkpoint = {'model': {'backbone.stem.conv1.weight': np.zeros(1),
                            'sem_seg_head.predictor.class_embed.weight': np.zeros(1)}}
    expected = (r'neither an official MaskFormer nor an official Mask2Former checkpoint: '
                r'expected keys sem_seg_head\.predictor\.transformer_cross_attention_layers\.\* '
                r'\(Mask2Former\) or sem_seg_head\.predictor\.transformer\.decoder\.layers\.\* '
                r'\(MaskFormer\)')
    with pytest.raises(ValueError, match=expected):
        official_model_type(checkpoint)
    with pytest.raises(ValueError, match=expected):
        convert_official_mask2former(checkpoint)
    with pytest.raises(ValueError, match='not an official Mask2Former checkpoint'):
        convert_official_mask2former({'model': {'backbone.stem.conv1.weight': np.zeros(1)}})


def test_maskformer_checkpoint_is_told_apart():
    state = official_state_from_hf(tiny_hf_model(seed=5))
    assert official_model_type({'model': state}) == 'MaskFormer'
    with pytest.raises(ValueError, match='use convert_official_maskformer'):
        convert_official_mask2former({'model': state})


def test_leftover_and_missing_keys_are_named(official_state):
    extra = 'sem_seg_head.predictor.transformer_ffn_layers.0.extra.weight'
    with pytest.raises(ValueError, match=extra.replace('.', r'\.')):
        convert_official_mask2former({'model': {**official_state, extra: np.zeros(3)}})
    state = dict(official_state)
    del state['sem_seg_head.predictor.transformer_self_attention_layers.1.norm.bias']
    with pytest.raises(ValueError, match=r'lacks 1 keys.*transformer_self_attention_layers\.1\.'
                       r'norm\.bias'):
        convert_official_mask2former(state)


def test_maskformer_converter_still_rejects_mask2former(official_state):
    with pytest.raises(ValueError):
        convert_official_maskformer({'model': official_state})


# --- tools/convert_checkpoint.py ---------------------------------------------------------------

def tiny_tool_config(path, model_cfg, classes) -> str:
    Config(dict(
        custom_imports=dict(imports=['mmseg_maskformer.models'], allow_failed_imports=False),
        default_scope='mmseg',
        model=model_cfg,
        test_pipeline=[dict(type='LoadImageFromFile'), dict(type='PackSegInputs')],
        test_dataloader=dict(dataset=dict(type='BaseSegDataset', data_root='data/none',
                                          metainfo=dict(classes=classes))),
    )).dump(str(path))
    return str(path)


def test_convert_checkpoint_tool_detects_official_mask2former(tmp_path, record_property):
    from cli_testing import load_tool
    tool = load_tool('convert_checkpoint')
    hf_model = tiny_hf_mask2former(seed=8, backbone=tiny_swin())
    path = write_official_pkl(tmp_path / 'model_final_m2f.pkl',
                              official_mask2former_state_from_hf(hf_model))
    classes = ('sky', 'road', 'car', 'person', 'tree')
    config = tiny_tool_config(tmp_path / 'm2f_tiny.py', convert_hf_mask2former(hf_model)[0],
                              classes)
    with pytest.raises(SystemExit, match='configs/mask2former/'):
        tool.main([path, str(tmp_path / 'out')])
    tool.main([path, str(tmp_path / 'out'), '--config', config])
    model = init_model(config, str(tmp_path / 'out' / 'model_final_m2f.pth'), device='cpu')
    assert model.dataset_meta['classes'] == classes
    pixel_values = torch.randn(1, 3, *ODD_SIZE, generator=torch.Generator().manual_seed(4))
    for kind, rel in mask2former_rel_errors(model.eval(), hf_model, pixel_values).items():
        record_property(f'tool.{kind}_logits_rel_diff', rel)
        assert rel <= LOGIT_RTOL, (kind, rel)

    # A MaskFormer config for a Mask2Former file, and a file of neither model.
    maskformer_cfg = Config.fromfile(config)
    maskformer_cfg.model.decode_head.type = 'mmseg_maskformer.MaskFormerHead'
    maskformer_cfg.dump(str(tmp_path / 'maskformer.py'))
    with pytest.raises(SystemExit, match=r'official Mask2Former checkpoint, but .* builds a '
                       r'MaskFormerHead: pass a config with Mask2FormerHead'):
        tool.main([path, str(tmp_path / 'out2'), '--config', str(tmp_path / 'maskformer.py')])
    other = write_official_pkl(tmp_path / 'other.pkl',
                               {'backbone.stem.conv1.weight': np.zeros(1, np.float32)})
    with pytest.raises(SystemExit, match='neither an official MaskFormer nor an official '
                       'Mask2Former checkpoint: expected keys'):
        tool.main([other, str(tmp_path / 'out3'), '--config', config])
