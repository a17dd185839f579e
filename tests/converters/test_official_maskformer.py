"""``convert_official_maskformer`` against independent oracles.

- ResNet and Swin: random HF models -> official-format files through the mapping of transformers'
  conversion scripts (``official_testing``) -> our converter -> our model == HF logits.
- R101c (which HF cannot express): a plain-PyTorch DeepLab ResNet written below from detectron2's
  ``projects/DeepLab/deeplab/resnet.py`` and ``modeling/backbone/resnet.py``.
- The encoder pixel decoder (absent from HF): mmdet 3.3's ``TransformerEncoderPixelDecoder``,
  loaded from the official-format tensors through a mapping written here from the official
  ``mask_former/modeling/heads/pixel_decoder.py``.
Input sizes are not multiples of the stride (32) or the Swin window.
"""
import os

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hf_testing import CASES, max_abs_diff, our_logits, randomise, tiny_hf_model
from mmdet.models.layers import TransformerEncoderPixelDecoder as MMDetEncoderPixelDecoder
from mmseg.registry import MODELS
from official_testing import (add_official_encoder, official_state_from_hf, resnet_backbone,
                              write_official_pkl, write_official_pth, zoo_like_cfg)
from transformers import (MaskFormerConfig, MaskFormerForInstanceSegmentation, ResNetConfig,
                          SwinConfig)

from mmseg_maskformer.converters import (check_state_dict_fits, convert_hf_maskformer,
                                         convert_official_maskformer)

STAGES = ['stage1', 'stage2', 'stage3', 'stage4']
LOGIT_RTOL = 1e-4
ODD_SIZE = (75, 101)


def swin_backbone(hf_backbone) -> dict:
    return dict(type='SwinTransformer', pretrain_img_size=224, embed_dims=hf_backbone.embed_dim,
                patch_size=4, window_size=hf_backbone.window_size, mlp_ratio=4,
                depths=list(hf_backbone.depths), num_heads=list(hf_backbone.num_heads),
                strides=(4, 2, 2, 2), out_indices=(0, 1, 2, 3), qkv_bias=True, qk_scale=None,
                patch_norm=True, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.3,
                use_abs_pos_embed=False, act_cfg=dict(type='GELU'),
                norm_cfg=dict(type='LN', requires_grad=True))


def tiny_swin_hf_model(window_size=3, seed=0):
    backbone = SwinConfig(embed_dim=32, depths=[2, 2, 3, 2], num_heads=[1, 2, 4, 8],
                          window_size=window_size, image_size=64, out_features=STAGES)
    return tiny_hf_model(seed=seed, backbone=backbone)


def build_loaded(cfg, state_dict):
    model = MODELS.build(cfg)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def assert_logits_match_hf(model, hf_model, size, record_property, name):
    pixel_values = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = hf_model(pixel_values=pixel_values)
    cls_logits, mask_logits = our_logits(model, pixel_values)
    for ours, theirs, kind in ((cls_logits[-1], expected.class_queries_logits, 'class'),
                               (mask_logits[-1], expected.masks_queries_logits, 'mask')):
        rel = max_abs_diff(ours, theirs) / theirs.abs().max().item()
        record_property(f'{name}.{kind}_logits_rel_diff', rel)
        print(f'{name}.{kind}_logits max rel diff: {rel:.3g}')
        assert rel <= LOGIT_RTOL, (kind, rel)
    # Masks that vary over the image, so that a misplaced or swapped weight shows.
    assert expected.masks_queries_logits.std() > 0.1


RESNET_CASES = {
    # Released layout: .pkl of numpy arrays, raw pixel-decoder names, predictor input_proj.
    'r50-pkl-raw-names': dict(hf=CASES['r50'], pixel_decoder_prefix=False, writer='pkl'),
    # No input_proj (d_model equals the res5 width) and no stage-1 shortcut; .pth with the
    # pixel_decoder. names the official code writes.
    'r101-pth-no-input-proj': dict(hf=CASES['r101-no-shortcut-no-proj'],
                                   pixel_decoder_prefix=True, writer='pth'),
}


@pytest.mark.parametrize('case', RESNET_CASES)
def test_resnet_logits_match_hf(case, tmp_path, record_property):
    spec = RESNET_CASES[case]
    hf_model = tiny_hf_model(**spec['hf'])
    state = official_state_from_hf(hf_model, spec['pixel_decoder_prefix'])
    writer = write_official_pkl if spec['writer'] == 'pkl' else write_official_pth
    path = writer(tmp_path / f'model.{spec["writer"]}', state)
    backbone = hf_model.config.backbone_config
    depth = {6: 50, 23: 101}[backbone.depths[2]]
    cfg = zoo_like_cfg(hf_model.config,
                       resnet_backbone(depth, stem_channels=backbone.embedding_size),
                       list(backbone.hidden_sizes))
    model = build_loaded(cfg, convert_official_maskformer(path))
    assert isinstance(model.decode_head.input_proj, nn.Conv2d) == (case == 'r50-pkl-raw-names')
    assert_logits_match_hf(model, hf_model, ODD_SIZE, record_property, case)


def test_swin_official_and_hf_conversions_match_hf(tmp_path, record_property):
    hf_model = tiny_swin_hf_model()
    path = write_official_pkl(tmp_path / 'swin.pkl', official_state_from_hf(hf_model))
    cfg = zoo_like_cfg(hf_model.config, swin_backbone(hf_model.config.backbone_config),
                       [32, 64, 128, 256])
    from_official = build_loaded(cfg, convert_official_maskformer(path))
    hf_cfg, hf_state = convert_hf_maskformer(hf_model)
    from_hf = build_loaded(hf_cfg, hf_state)
    for size in (ODD_SIZE, (64, 64)):
        assert_logits_match_hf(from_official, hf_model, size, record_property, f'official{size}')
        assert_logits_match_hf(from_hf, hf_model, size, record_property, f'hf{size}')
    # Both routes give the same tensors.
    official_state = from_official.state_dict()
    for key, value in from_hf.state_dict().items():
        assert torch.equal(value, official_state[key]), key


def test_swin_window_12_like_swin_b(tmp_path, record_property):
    # Swin-B/L windows (12) at a size whose stride-32 map (3x4) is smaller than a window.
    hf_model = tiny_swin_hf_model(window_size=12, seed=2)
    state = convert_official_maskformer(official_state_from_hf(hf_model, True))
    cfg = zoo_like_cfg(hf_model.config, swin_backbone(hf_model.config.backbone_config),
                       [32, 64, 128, 256])
    assert_logits_match_hf(build_loaded(cfg, state), hf_model, (90, 110), record_property,
                           'swin-window12')


@pytest.mark.parametrize('layout', ['r50', 'swin-t'])
def test_real_layouts_match_hf(layout, record_property):
    """The released ADE20K R50 and Swin-T sizes (150 classes, 100 queries, 256-wide decoder),
    random weights."""
    torch.manual_seed(0)
    if layout == 'r50':
        backbone = ResNetConfig(out_features=STAGES)  # the ResNet-50 layout
        ours = resnet_backbone(50, stem_channels=64, base_channels=64)
    else:
        backbone = SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                              window_size=7, image_size=224, out_features=STAGES)
    hf_config = MaskFormerConfig(backbone_config=backbone, num_labels=150,
                                 use_auxiliary_loss=False)
    hf_model = randomise(MaskFormerForInstanceSegmentation(hf_config)).eval()
    in_channels = (list(backbone.hidden_sizes) if layout == 'r50' else [96, 192, 384, 768])
    cfg = zoo_like_cfg(hf_config, ours if layout == 'r50' else swin_backbone(backbone),
                       in_channels)
    assert cfg['decode_head']['transformer_decoder']['num_layers'] == 6
    model = build_loaded(cfg, convert_official_maskformer(official_state_from_hf(hf_model)))
    assert_logits_match_hf(model, hf_model, (100, 130), record_property, layout)


# --- the official encoder pixel decoder, against mmdet ------------------------------------------

def official_to_mmdet_pixel_decoder(state) -> dict:
    """Official pixel-decoder names (pixel_decoder.py) -> mmdet's TransformerEncoderPixelDecoder."""
    prefix = 'sem_seg_head.'
    converted = {}
    for key, value in state.items():
        if not key.startswith(prefix) or key.startswith(f'{prefix}predictor.'):
            continue
        key = key[len(prefix):]
        for official, mmdet in (('input_proj.', 'encoder_in_proj.'),
                                ('transformer.encoder.', 'encoder.'),
                                ('self_attn.', 'self_attn.attn.'),
                                ('linear1.', 'ffn.layers.0.0.'), ('linear2.', 'ffn.layers.1.'),
                                ('norm1.', 'norms.0.'), ('norm2.', 'norms.1.'),
                                ('mask_features.', 'mask_feature.')):
            key = key.replace(official, mmdet)
        for level in range(3):
            key = key.replace(f'adapter_{level + 1}.', f'lateral_convs.{level}.')
            key = key.replace(f'layer_{level + 1}.', f'output_convs.{level}.')
        key = key.replace('layer_4.', 'encoder_out_proj.')
        # detectron2 Conv2d keeps its norm inside; mmcv ConvModule names conv and gn.
        if key.startswith(('lateral_convs', 'output_convs', 'encoder_out_proj')):
            key = key.replace('.norm.', '.gn.') if '.norm.' in key else key.replace(
                '.weight', '.conv.weight')
        converted[key] = torch.from_numpy(value)
    return converted


def test_encoder_pixel_decoder_matches_mmdet(record_property):
    hf_model = tiny_hf_model(seed=4)
    state = official_state_from_hf(hf_model)
    rng = np.random.default_rng(0)
    conv_dim, num_layers, ffn, heads = 32, 2, 48, 4
    # The panoptic R50: the encoder output has d_model channels, so no predictor input_proj.
    del state['sem_seg_head.predictor.input_proj.weight']
    del state['sem_seg_head.predictor.input_proj.bias']
    add_official_encoder(state, 256, conv_dim, num_layers, ffn, rng)
    pixel_decoder = dict(type='TransformerEncoderPixelDecoder', feat_channels=conv_dim,
                         norm_cfg=dict(type='GN', num_groups=32), act_cfg=dict(type='ReLU'),
                         num_encoder_layers=num_layers, num_heads=heads,
                         feedforward_channels=ffn, dropout=0.1)
    cfg = zoo_like_cfg(hf_model.config, resnet_backbone(), [32, 64, 128, 256], pixel_decoder)
    model = build_loaded(cfg, convert_official_maskformer({'model': state}))
    assert isinstance(model.decode_head.input_proj, nn.Identity)

    mmdet_decoder = MMDetEncoderPixelDecoder(
        [32, 64, 128, 256], feat_channels=conv_dim, out_channels=conv_dim,
        norm_cfg=dict(type='GN', num_groups=32),
        encoder=dict(num_layers=num_layers, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=conv_dim, num_heads=heads, dropout=0.0,
                               batch_first=True),
            ffn_cfg=dict(embed_dims=conv_dim, feedforward_channels=ffn, num_fcs=2,
                         ffn_drop=0.0))),
        positional_encoding=dict(num_feats=conv_dim // 2, normalize=True))
    mmdet_decoder.load_state_dict(official_to_mmdet_pixel_decoder(state), strict=True)
    mmdet_decoder.eval()
    pixel_values = torch.randn(2, 3, *ODD_SIZE)
    with torch.no_grad():
        feats = model.extract_feat(pixel_values)
        mask_ours, memory_ours = model.decode_head.pixel_decoder(list(feats))
        metas = [dict(batch_input_shape=ODD_SIZE, img_shape=ODD_SIZE)] * 2
        mask_mmdet, memory_mmdet = mmdet_decoder(list(feats), metas)
    for name, ours, theirs in (('mask_features', mask_ours, mask_mmdet),
                               ('memory', memory_ours, memory_mmdet)):
        rel = max_abs_diff(ours, theirs) / theirs.abs().max().item()
        record_property(f'encoder_pixel_decoder.{name}_rel_diff', rel)
        assert rel <= LOGIT_RTOL, (name, rel)


# --- R101c: DeepLab stem and multi-grid res5, against detectron2's definition ------------------

class D2ConvNorm(nn.Module):
    """detectron2 ``Conv2d(..., bias=False, norm=FrozenBatchNorm2d)``: ``weight`` + ``norm.*``."""

    def __init__(self, cin, cout, kernel, stride=1, dilation=1):
        super().__init__()
        scale = (2 / (cin * kernel**2))**.5
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) * scale)
        self.stride, self.dilation, self.padding = stride, dilation, dilation * (kernel // 2)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation)
        return self.norm(x)


class D2Bottleneck(nn.Module):
    """detectron2 BottleneckBlock, STRIDE_IN_1X1 False: the stride is on the 3x3 conv."""

    def __init__(self, cin, bottleneck, cout, stride, dilation):
        super().__init__()
        self.shortcut = D2ConvNorm(cin, cout, 1, stride) if cin != cout else None
        self.conv1 = D2ConvNorm(cin, bottleneck, 1)
        self.conv2 = D2ConvNorm(bottleneck, bottleneck, 3, stride, dilation)
        self.conv3 = D2ConvNorm(bottleneck, cout, 1)

    def forward(self, x):
        out = F.relu(self.conv1(x))
        out = F.relu(self.conv2(out))
        out = self.conv3(out)
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class D2DeepLabResNet(nn.Module):
    """build_resnet_deeplab_backbone with STEM_TYPE deeplab, RES5_DILATION 1 and
    RES5_MULTI_GRID (1, 2, 4): res2..res5 outputs at strides 4, 8, 16, 32."""

    def __init__(self, depths, stem_out, res2_out, multi_grid=(1, 2, 4)):
        super().__init__()
        self.stem = nn.Module()
        self.stem.conv1 = D2ConvNorm(3, stem_out // 2, 3, 2)
        self.stem.conv2 = D2ConvNorm(stem_out // 2, stem_out // 2, 3)
        self.stem.conv3 = D2ConvNorm(stem_out // 2, stem_out, 3)
        cin, cout, bottleneck = stem_out, res2_out, res2_out // 4
        for index, blocks in enumerate(depths):
            first_stride = 1 if index == 0 else 2
            dilations = multi_grid if index == 3 else (1, ) * blocks
            stage = nn.Sequential(*(
                D2Bottleneck(cin if b == 0 else cout, bottleneck, cout,
                             first_stride if b == 0 else 1, dilations[b]) for b in range(blocks)))
            self.add_module(f'res{index + 2}', stage)
            cin, cout, bottleneck = cout, cout * 2, bottleneck * 2

    def forward(self, x):
        for conv in (self.stem.conv1, self.stem.conv2, self.stem.conv3):
            x = F.relu(conv(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        outs = []
        for index in range(4):
            x = getattr(self, f'res{index + 2}')(x)
            outs.append(x)
        return outs


def randomise_frozen_bn(module):
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_(0, 0.1)
                bn.running_mean.normal_(0, 0.1)
                bn.running_var.uniform_(0.5, 1.5)
    return module.eval()


@pytest.mark.parametrize('depth,stem_out,res2_out', [(50, 32, 32), (101, 128, 256)],
                         ids=['tiny-r50c', 'r101c-real-widths'])
def test_r101c_deeplab_stem_and_multigrid_match_detectron2(depth, stem_out, res2_out,
                                                             record_property):
    torch.manual_seed(0)
    depths = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}[depth]
    reference = randomise_frozen_bn(D2DeepLabResNet(depths, stem_out, res2_out))
    # A head whose widths fit, taken from an HF model of the same stage widths.
    widths = [res2_out * 2**i for i in range(4)]
    hf_model = tiny_hf_model(backbone=dict(hidden_sizes=widths, embedding_size=16))
    state = {k: v for k, v in official_state_from_hf(hf_model).items()
             if not k.startswith('backbone.')}
    state.update({f'backbone.{k}': v.numpy()
                  for k, v in reference.state_dict().items() if 'num_batches_tracked' not in k})
    backbone = resnet_backbone(depth, stem_channels=stem_out, base_channels=res2_out // 4,
                               type='ResNetV1c', multi_grid=(1, 2, 4))
    cfg = zoo_like_cfg(hf_model.config, backbone, widths)
    model = build_loaded(cfg, convert_official_maskformer({'model': state}))
    dilations = [block.conv2.dilation[0] for block in model.backbone.layer4]
    strides = [block.conv2.stride[0] for block in model.backbone.layer4]
    assert (dilations, strides) == ([1, 2, 4], [2, 1, 1])
    pixel_values = torch.randn(1, 3, *ODD_SIZE)
    with torch.no_grad():
        expected = reference(pixel_values)
        feats = model.extract_feat(pixel_values)
    for level, (ours, theirs) in enumerate(zip(feats, expected)):
        rel = max_abs_diff(ours, theirs) / theirs.abs().max().item()
        record_property(f'r101c.res{level + 2}_rel_diff', rel)
        assert rel <= LOGIT_RTOL, (level, rel)


# --- errors ------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def official_r50_state():
    return official_state_from_hf(tiny_hf_model(seed=5))


def test_leftover_key_is_named(official_r50_state):
    state = dict(official_r50_state, **{'sem_seg_head.predictor.extra.weight': np.zeros(3)})
    with pytest.raises(ValueError, match=r'sem_seg_head\.predictor\.extra\.weight'):
        convert_official_maskformer({'model': state})


def test_missing_key_is_named(official_r50_state):
    state = dict(official_r50_state)
    del state['sem_seg_head.layer_2.norm.bias']
    with pytest.raises(ValueError, match=r'sem_seg_head\.pixel_decoder\.layer_2\.norm\.bias'):
        convert_official_maskformer({'model': state})


def test_not_a_maskformer_checkpoint():
    with pytest.raises(ValueError, match='not an official MaskFormer checkpoint'):
        convert_official_maskformer({'model': {'backbone.stem.conv1.weight': np.zeros(1)}})


def test_wrong_config_is_reported_by_key_and_shape(official_r50_state):
    hf_model = tiny_hf_model(seed=5)
    state = convert_official_maskformer({'model': official_r50_state})
    cfg = zoo_like_cfg(hf_model.config, resnet_backbone(), [32, 64, 128, 256])
    check_state_dict_fits(state, MODELS.build(cfg))
    cfg['decode_head']['num_classes'] += 1
    cfg['decode_head']['pixel_decoder']['type'] = 'TransformerEncoderPixelDecoder'
    with pytest.raises(ValueError) as error:
        check_state_dict_fits(state, MODELS.build(cfg))
    message = str(error.value)
    assert 'missing 74 keys: decode_head.pixel_decoder.encoder.layers.0.' in message
    assert 'decode_head.cls_embed.weight: checkpoint (6, 32), model (7, 32)' in message


# --- tools/convert_checkpoint.py ---------------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Five classes for the five labels of tiny_hf_model; thing_classes as a panoptic dataset names them.
TINY_METAINFO = dict(classes=('sky', 'road', 'car', 'person', 'tree'),
                     thing_classes=('car', 'person'))


def tiny_tool_config(path, hf_config, dataset=True) -> str:
    """An mmseg config of the tiny model; ``dataset``: with a test set naming its classes (the
    data need not exist)."""
    from mmengine.config import Config
    cfg = dict(
        custom_imports=dict(imports=['mmseg_maskformer.models'], allow_failed_imports=False),
        default_scope='mmseg',
        model=zoo_like_cfg(hf_config, resnet_backbone(),
                           list(hf_config.backbone_config.hidden_sizes)),
        test_pipeline=[dict(type='LoadImageFromFile'), dict(type='PackSegInputs')])
    if dataset:
        cfg['test_dataloader'] = dict(dataset=dict(type='BaseSegDataset', data_root='data/none',
                                                   metainfo=TINY_METAINFO))
    Config(cfg).dump(path)
    return str(path)


def convert_checkpoint_tool():
    """tools/convert_checkpoint.py as a module, to call its functions in-process."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'convert_checkpoint', os.path.join(REPO, 'tools', 'convert_checkpoint.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_checkpoint_tool_official_source(tmp_path, record_property):
    import subprocess
    import sys

    from mmseg.apis import init_model
    hf_model = tiny_hf_model(seed=8)
    path = write_official_pkl(tmp_path / 'model_final_abc.pkl', official_state_from_hf(hf_model))
    config = tiny_tool_config(tmp_path / 'maskformer_tiny.py', hf_model.config)
    tool = os.path.join(REPO, 'tools', 'convert_checkpoint.py')
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}

    def run(*args):
        return subprocess.run([sys.executable, tool, *map(str, args)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)

    result = run(path, tmp_path / 'out')
    assert result.returncode != 0 and '--config' in result.stderr
    result = run(path, tmp_path / 'out', '--config', config)
    assert result.returncode == 0, result.stderr
    checkpoint = tmp_path / 'out' / 'model_final_abc.pth'
    assert str(checkpoint) in result.stdout
    model = init_model(config, str(checkpoint), device='cpu')
    assert model.dataset_meta['classes'] == TINY_METAINFO['classes']
    assert_logits_match_hf(model.eval(), hf_model, ODD_SIZE, record_property, 'tool')


def test_converted_checkpoint_names_the_classes_of_the_config(tmp_path):
    """init_model reads the converted meta.dataset_meta instead of guessing from num_classes
    (5 classes: it would have taken the first 5-class name list it knows, or Cityscapes')."""
    from mmseg.apis import init_model

    from mmseg_maskformer.converters import random_palette
    tool = convert_checkpoint_tool()
    hf_model = tiny_hf_model(seed=9)
    path = write_official_pkl(tmp_path / 'model.pkl', official_state_from_hf(hf_model))
    config = tiny_tool_config(tmp_path / 'tiny.py', hf_model.config)
    tool.convert_official(path, config, str(tmp_path / 'out'), 'converted')
    checkpoint = str(tmp_path / 'out' / 'converted.pth')
    model = init_model(config, checkpoint, device='cpu')
    assert model.dataset_meta == dict(classes=TINY_METAINFO['classes'],
                                      palette=random_palette(5),
                                      thing_classes=TINY_METAINFO['thing_classes'])
    meta = torch.load(checkpoint, weights_only=True)['meta']  # plain data: loads safely
    assert meta['dataset_meta'] == model.dataset_meta


def test_converter_refuses_a_config_that_names_no_classes(tmp_path):
    tool = convert_checkpoint_tool()
    hf_model = tiny_hf_model(seed=9)
    path = write_official_pkl(tmp_path / 'model.pkl', official_state_from_hf(hf_model))
    config = tiny_tool_config(tmp_path / 'model_only.py', hf_model.config, dataset=False)
    with pytest.raises(SystemExit, match=r'model_only\.py: the config has no test_dataloader'):
        tool.convert_official(path, config, str(tmp_path / 'out'), 'converted')
    with open(config, 'a') as f:  # a test set of another number of classes
        f.write("test_dataloader = dict(dataset=dict(type='ShapesDataset'))\n")
    with pytest.raises(SystemExit, match=r'6 classes but its model predicts 5'):
        tool.convert_official(path, config, str(tmp_path / 'out'), 'converted')
    assert not (tmp_path / 'out').exists()
