"""The Mask2Former zoo (configs/mask2former, configs/mask2former/metafile.yaml) against the official
release: facebookresearch/Mask2Former MODEL_ZOO.md (results, model ids, weights) and the yaml of
each model (crop, iterations, batch, queries, thresholds, backbone), and the parameter counts of
the paper (Cheng et al., "Masked-attention Mask Transformer for Universal Image Segmentation",
CVPR 2022, Table 1: R50 44M, R101 63M, Swin-T 47M, Swin-S 69M, Swin-B 107M, Swin-L 216M)."""
import copy
import functools
import glob
import os
import re
from unittest import mock

import numpy as np
import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_maskformer.datasets  # noqa: F401
import mmseg_maskformer.models  # noqa: F401

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(REPO, 'configs/mask2former/metafile.yaml')) as f:
    METAFILE = yaml.safe_load(f)
ZOO = {model['Config']: model for model in METAFILE['Models']}
CONFIGS = sorted(os.path.relpath(p, REPO)
                 for p in glob.glob(os.path.join(REPO, 'configs/mask2former/*.py')))
PANOPTIC = sorted(p for p, m in ZOO.items() if m['Results']['Task'] == 'Panoptic Segmentation')
SEMANTIC = sorted(set(ZOO) - set(PANOPTIC))
# The paper's parameter counts (Table 1, COCO panoptic models; Swin-L there has 200 queries).
PAPER_PARAMS_M = {'r50': 44, 'r101': 63, 'swin-t': 47, 'swin-s': 69, 'swin-b': 107, 'swin-l': 216}
# Swin-L with 100 queries has 100 × 256 query features and 100 × 256 query positions less.
PARAMS_OF_100_QUERIES = 2 * 100 * 256


@functools.lru_cache(maxsize=None)
def load(path):
    cfg = Config.fromfile(os.path.join(REPO, path))
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return cfg


def backbone_of(path):
    return re.match(r'configs/mask2former/mask2former_(r50|r101|swin-[tsbl])', path).group(1)


def model_cfg(cfg):
    model = copy.deepcopy(cfg.model)
    model.backbone.init_cfg = None  # random weights: no download in tests
    return model


def build_on_meta(cfg):
    """Build without allocating weights (mmseg's Swin computes its drop-path rates with
    ``torch.linspace(...).item()``, which needs a real tensor)."""
    linspace = torch.linspace

    def cpu_linspace(*args, **kwargs):
        return linspace(*args, **{**kwargs, 'device': 'cpu'})

    with torch.device('meta'), mock.patch('torch.linspace', cpu_linspace):
        return MODELS.build(model_cfg(cfg))


def transforms(pipeline):
    for transform in pipeline:
        if isinstance(transform, (list, tuple)):
            yield from transforms(transform)
        else:
            yield transform
            yield from transforms(transform.get('transforms', []))


def test_metafile_lists_exactly_the_zoo_configs():
    assert len(ZOO) == 24 and len(SEMANTIC) == 15 and len(PANOPTIC) == 9
    assert set(ZOO) == {p for p in CONFIGS if 'shapes' not in p}
    with open(os.path.join(REPO, 'model-index.yml')) as f:
        assert 'configs/mask2former/metafile.yaml' in yaml.safe_load(f)['Import']
    for path, model in ZOO.items():
        assert model['Name'] == os.path.basename(path)[:-3]
        assert model['In Collection'] == 'Mask2Former'
        assert model['Weights'].startswith('https://dl.fbaipublicfiles.com/maskformer/mask2former/')
        # The weights folder is named after the official yaml (the Vistas R50 semantic
        # checkpoint folder says maskformer_, its yaml maskformer2_).
        official = model['Metadata']['Official Config']
        assert official.startswith('https://github.com/facebookresearch/Mask2Former/blob/main/')
        assert model['Weights'].split('/')[-2].replace('maskformer2_', 'maskformer_') == \
            os.path.basename(official)[:-5].replace('maskformer2_', 'maskformer_')
        resources = model['Metadata']['Training Resources']
        assert resources == ('16x V100 GPUs' if 'swin-l' in path else '8x V100 GPUs')


@pytest.mark.parametrize('path', sorted(ZOO))
def test_config_comment_names_the_official_yaml_and_result(path):
    with open(os.path.join(REPO, path)) as f:
        text = f.read()
    comment = ' '.join(line[1:].strip() for line in text.splitlines() if line.startswith('#'))
    comment = comment.replace('- ', '-')  # a path broken over two comment lines
    model = ZOO[path]
    official = model['Metadata']['Official Config'].split('/blob/main/')[1]
    assert 'facebookresearch/Mask2Former' in comment
    assert re.sub(r'\s', '', official) in re.sub(r'\s', '', comment), official
    metrics = model['Results']['Metrics']
    # "Official: 51.9 PQ", "Official: 47.8 mIoU s.s., 50.1 m.s.+flip" (the R50 ADE20K config:
    # "Paper: 47.2 mIoU single scale, 49.2 multi-scale + flip").
    result = re.search(r'(?:Official|Paper): (.*)', comment).group(1)
    if 'PQ' in metrics:
        assert result.startswith(f"{metrics['PQ']} PQ"), result
    else:
        assert re.match(rf"{metrics['mIoU']} mIoU (s\.s\.|single scale), "
                        rf"{metrics['mIoU(ms+flip)']} (m\.s\.\+flip|multi-scale \+ flip)",
                        result), result


@pytest.mark.parametrize('path', sorted(ZOO))
def test_config_follows_its_official_yaml(path):
    cfg, meta = load(path), ZOO[path]['Metadata']
    head = cfg.model.decode_head
    assert cfg.model.type == 'mmseg_maskformer.MaskFormerSegmentor'
    assert head.type == 'mmseg_maskformer.Mask2FormerHead'
    # Losses and matching are the head's defaults (the official ones), not repeated here.
    assert not {'loss_cls', 'loss_mask', 'loss_dice', 'matcher', 'criterion'} & set(head)
    assert head.num_points == 12544
    assert (head.transformer_decoder.num_layers, head.pixel_decoder.num_encoder_layers) == (9, 6)
    assert head.num_classes == meta['Num Classes']
    # NUM_OBJECT_QUERIES: 200 only in the COCO and ADE20K panoptic Swin-L yaml.
    assert head.num_queries == (200 if 'swin-l' in path and path in PANOPTIC else 100)
    ignore = meta['Ignore Index']
    assert head.ignore_index == ignore and cfg.model.data_preprocessor.seg_pad_val == ignore
    train = list(transforms(cfg.train_dataloader.dataset.pipeline))
    crop, = (t for t in train if t.type == 'RandomCrop')
    assert crop.get('ignore_index', 255) == ignore and crop.get('cat_max_ratio', 1.0) == 1.0
    assert 'x'.join(map(str, crop.crop_size)) == meta['Crop Size']
    assert tuple(cfg.model.data_preprocessor.size) == tuple(crop.crop_size)
    assert cfg.model.data_preprocessor.test_cfg == dict(size_divisor=32)  # SIZE_DIVISIBILITY 32
    evaluators = cfg.test_evaluator
    evaluators = evaluators if isinstance(evaluators, list) else [evaluators]
    for evaluator in (e for e in evaluators if e.type == 'IoUMetric'):
        assert evaluator.get('ignore_index', 255) == ignore
    gpus, batch = map(int, re.search(r'_(\d+)xb(\d+)-', path).groups())
    assert gpus * batch == meta['Batch Size'] == 16 and cfg.train_dataloader.batch_size == batch
    assert cfg.train_cfg.max_iters == meta['Iterations']
    optim = cfg.optim_wrapper
    assert optim.type == 'mmseg_maskformer.NonFiniteGuardOptimWrapper'
    assert (optim.optimizer.type, optim.optimizer.lr, optim.optimizer.weight_decay) == (
        'AdamW', 1e-4, 0.05)
    assert optim.clip_grad == dict(max_norm=0.01, norm_type=2)
    assert optim.paramwise_cfg.custom_keys.backbone == dict(lr_mult=0.1)
    scheduler, = cfg.param_scheduler  # no warm-up (WARMUP_ITERS 0, or 10 with factor 1.0)
    assert scheduler.end == meta['Iterations']
    if 'coco-panoptic' in path:  # detectron2's WarmupMultiStepLR, SOLVER.STEPS
        steps = [655556, 710184] if 'swin-l' in path else [327778, 355092]
        assert (scheduler.type, scheduler.milestones, scheduler.gamma) == (
            'MultiStepLR', steps, 0.1)
    else:  # WarmupPolyLR
        assert (scheduler.type, scheduler.power, scheduler.eta_min) == ('PolyLR', 0.9, 0)
    backbone = cfg.model.backbone
    if backbone.type == 'ResNet':
        assert backbone.depth == int(backbone_of(path)[1:])
        # RESNETS.NORM "SyncBN" in the ADE20K R101 and the Cityscapes yaml, else FrozenBN.
        sync = 'cityscapes' in path or 'r101_8xb2-160k_ade20k-512x512' in path
        assert backbone.norm_cfg == (dict(type='SyncBN', requires_grad=True) if sync
                                     else dict(type='BN', requires_grad=False))
        assert backbone.norm_eval == (not sync)
    else:
        expected = {'swin-t': (96, [2, 2, 6, 2], [3, 6, 12, 24], 7, 224),
                    'swin-s': (96, [2, 2, 18, 2], [3, 6, 12, 24], 7, 224),
                    'swin-b': (128, [2, 2, 18, 2], [4, 8, 16, 32], 12, 384),
                    'swin-l': (192, [2, 2, 18, 2], [6, 12, 24, 48], 12, 384)}[backbone_of(path)]
        assert (backbone.embed_dims, backbone.depths, backbone.num_heads, backbone.window_size,
                backbone.pretrain_img_size) == expected
        assert (backbone.drop_path_rate, backbone.use_abs_pos_embed, backbone.patch_norm) == (
            0.3, False, True)
        assert head.in_channels == [expected[0] * 2 ** i for i in range(4)]
        checkpoint = backbone.init_cfg.checkpoint
        assert ('_22k_' in checkpoint) == ('in22k' in path)
        assert f'window{expected[3]}_{expected[4]}' in checkpoint


@pytest.mark.parametrize('path', PANOPTIC)
def test_panoptic_configs(path):
    cfg = load(path)
    assert cfg.model.decode_head.test_cfg == dict(
        mode='panoptic', object_mask_threshold=0.8, overlap_threshold=0.8)
    assert cfg.tta_model is None
    assert 'mmseg_maskformer.evaluation' in cfg.custom_imports.imports
    assert {e.type for e in cfg.test_evaluator} == {'PanopticQualityMetric', 'IoUMetric'}
    Compose(cfg.train_dataloader.dataset.pipeline)
    Compose(cfg.test_dataloader.dataset.pipeline)


@pytest.mark.parametrize('path', SEMANTIC)
def test_semantic_configs(path):
    cfg = load(path)
    assert cfg.model.decode_head.get('test_cfg', dict(mode='semantic'))['mode'] == 'semantic'
    assert cfg.tta_model.type == 'mmseg_maskformer.MaskFormerTTAModel'
    # TEST.AUG of the official Base-*.yaml / *_res640.yaml (Vistas has none: 0.5..1.75 × 2048).
    sizes = {'512x512': (256, 384, 512, 640, 768, 896), '640x640': (320, 480, 640, 800, 960, 1120),
             '512x1024': (512, 768, 1024, 1280, 1536, 1792),
             '1024x1024': (1024, 1536, 2048, 2560, 3072, 3584)}[ZOO[path]['Metadata']['Crop Size']]
    resizes = [t for t in transforms(cfg.tta_pipeline) if t.type == 'ResizeShortestEdge']
    assert tuple(t.scale for t in resizes) == sizes
    for loader in ('train_dataloader', 'test_dataloader'):
        Compose(cfg[loader].dataset.pipeline)


@pytest.mark.parametrize('path', sorted(ZOO))
def test_parameter_count_is_the_papers(path):
    model = build_on_meta(load(path))
    params = sum(p.numel() for p in model.parameters())
    backbone = backbone_of(path)
    if backbone == 'swin-l' and model.decode_head.num_queries == 100:
        params += PARAMS_OF_100_QUERIES  # the paper's Swin-L has 200 queries
    assert round(params / 1e6) == PAPER_PARAMS_M[backbone], params


def test_measured_parameter_counts():
    # The exact counts of a few (mmseg's frozen BatchNorm affine parameters included; detectron2
    # keeps them as buffers: 53,120 in R50).
    counts = {p: sum(x.numel() for x in build_on_meta(load(f'configs/mask2former/{p}.py'))
                     .parameters()) for p in (
        'mask2former_r50_8xb2-160k_ade20k-512x512',
        'mask2former_swin-l-in22k-384x384-pre_8xb2-100e_coco-panoptic-1024x1024',
        'mask2former_swin-l-in22k-384x384-pre_8xb2-160k_ade20k-640x640')}
    assert list(counts.values()) == [44041367, 215535610, 215488779]


def test_zoo_bases_reproduce_the_r50_ade20k_model():
    r50 = load('configs/mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py')
    base = Config.fromfile(os.path.join(REPO, 'configs/_base_/models/mask2former_r50.py'))
    assert base.model.to_dict() == r50.model.to_dict()


def official_hyperparams(module_name, module, param_name):
    """(lr multiplier, weight-decay multiplier) of facebookresearch/Mask2Former train_net.py
    build_optimizer (BACKBONE_MULTIPLIER 0.1, WEIGHT_DECAY_NORM and WEIGHT_DECAY_EMBED 0.0)."""
    norms = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)
    no_decay = (isinstance(module, (*norms, torch.nn.Embedding))
                or 'relative_position_bias_table' in param_name
                or 'absolute_pos_embed' in param_name)
    return (0.1 if 'backbone' in module_name else 1.0), (0.0 if no_decay else 1.0)


@pytest.mark.parametrize('path', [
    'configs/mask2former/mask2former_swin-s_8xb2-160k_ade20k-512x512.py',  # Swin, 18-block stage
    'configs/mask2former/mask2former_r50_8xb2-90k_cityscapes-512x1024.py',  # trained SyncBN
])
def test_optimizer_groups_follow_the_official_build_optimizer(path):
    cfg = load(path)
    model = MODELS.build(model_cfg(cfg))
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    group_of = {id(p): g for g in optimizer.param_groups for p in g['params']}
    lr, wd = cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay
    checked = no_decay = 0
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            lr_mult, decay_mult = official_hyperparams(module_name, module, name)
            group = group_of[id(param)]
            assert group['lr'] == pytest.approx(lr * lr_mult), f'{module_name}.{name}'
            assert group['weight_decay'] == pytest.approx(wd * decay_mult), f'{module_name}.{name}'
            checked += 1
            no_decay += decay_mult == 0
    assert checked == sum(1 for _ in model.parameters()) and no_decay > 50
    # The pixel decoder's level embedding is a plain parameter: it decays officially.
    assert group_of[id(model.decode_head.pixel_decoder.level_embed)]['weight_decay'] == wd


def test_coco_lsj_pipeline_resizes_crops_and_keeps_the_panoptic_map_aligned():
    cfg = load('configs/mask2former/mask2former_r50_8xb2-50e_coco-panoptic-1024x1024.py')
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in pipeline] == ['LoadImageFromFile', 'LoadPanopticAnnotations',
                                          'RandomFlip', 'RandomResize', 'RandomCrop',
                                          'PackPanopticSegInputs']
    augment = Compose(pipeline[2:])
    np.random.seed(0)
    height, width = 480, 640
    sides = []
    for _ in range(20):
        index_map = np.zeros((height, width), np.uint8)
        index_map[:, width // 2:] = 1
        results = dict(img=np.zeros((height, width, 3), np.uint8),
                       gt_seg_map=np.where(index_map == 1, 3, 255).astype(np.uint8),
                       gt_panoptic_seg=index_map, seg_fields=['gt_seg_map', 'gt_panoptic_seg'],
                       panoptic_labels=[3], img_shape=(height, width), ori_shape=(height, width),
                       reduce_zero_label=False)
        packed = augment(results)
        out_h, out_w = packed['inputs'].shape[-2:]
        sample = packed['data_samples']
        assert sample.gt_panoptic_seg.data.shape[-2:] == sample.gt_sem_seg.data.shape[-2:] == (
            out_h, out_w)
        assert out_h <= 1024 and out_w <= 1024
        sides.append(max(out_h, out_w))
    # The long side is 1024 × a scale in 0.1..2.0 (then cropped to 1024): small and full crops.
    assert min(sides) < 512 and max(sides) == 1024
