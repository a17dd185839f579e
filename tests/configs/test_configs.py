"""Every config under configs/ parses, builds its model and data pipelines and runs a tiny
forward; the zoo configs match the model table (configs/maskformer/metafile.yaml, which carries
facebookresearch/MaskFormer MODEL_ZOO.md) and the official recipes."""
import functools
import gc
import glob
import os
import re

import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg_maskformer.ops import extension_available

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)
with open(os.path.join(REPO, 'configs/maskformer/metafile.yaml')) as f:
    ZOO = {model['Config']: model for model in yaml.safe_load(f)['Models']}
SEMANTIC_ZOO = [path for path, model in ZOO.items()
                if model['Results']['Task'] == 'Semantic Segmentation']
PANOPTIC_ZOO = [path for path in ZOO if path not in SEMANTIC_ZOO]
# Official TEST.AUG (facebookresearch/MaskFormer configs/ade20k-150/Base-ADE20K-150.yaml,
# configs/ade20k-150/swin/*_res640.yaml, configs/coco-stuff-10k-171/Base-COCOStuff10K-171.yaml,
# configs/cityscapes-19/Base-Cityscapes-19.yaml).
OFFICIAL_TTA = {
    'ade20k-512x512': ((256, 384, 512, 640, 768, 896), 3584),
    'ade20k-640x640': ((320, 480, 640, 800, 960, 1120), 4480),
    'coco-stuff10k-640x640': ((320, 480, 640, 800, 960, 1120), 4480),
    'cityscapes-512x1024': ((512, 768, 1024, 1280, 1536, 1792), 4096),
}
# configs/_base_/default_hooks.py, which every schedule here inherits.
PROJECT_HOOKS = dict(safe_checkpoint='mmseg_maskformer.SafeCheckpointHook',
                     random_state='mmseg_maskformer.RandomStateHook',
                     data_check='mmseg_maskformer.DataCheckHook')
# The annotation loaders that compare an annotation's size with its image's at load time.
SIZE_CHECKING_LOADERS = {'LoadSizeCheckedAnnotations', 'Load16BitAnnotations',
                         'LoadPanopticAnnotations'}


@functools.lru_cache(maxsize=None)
def parse(path):
    return Config.fromfile(os.path.join(REPO, path))


def load(path):
    """The parsed config (parsed once per session; callers do not modify it)."""
    cfg = parse(path)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return cfg


def build_model(cfg):
    model_cfg = cfg.model.copy()
    model_cfg.backbone.pop('init_cfg', None)  # no pretrained download in tests
    return MODELS.build(model_cfg)


def transforms(pipeline):
    """Every transform of a pipeline, inside RandomChoice / TestTimeAug too."""
    for transform in pipeline:
        if isinstance(transform, (list, tuple)):
            yield from transforms(transform)
        else:
            yield transform
            yield from transforms(transform.get('transforms', []))


def test_every_zoo_model_has_a_config_and_every_paper_config_a_zoo_entry():
    assert len(ZOO) == 24
    assert set(ZOO) <= set(CONFIGS)
    # Besides the zoo: the built-in Shapes data and the template for a user's own dataset.
    paper_configs = {p for p in CONFIGS
                     if 'maskformer' in p and 'shapes' not in p and 'custom-dataset' not in p}
    assert paper_configs == set(ZOO)


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_and_runs_a_tiny_forward(path):
    cfg = load(path)
    model = build_model(cfg).eval()
    num_classes = cfg.model.decode_head.num_classes
    assert model.decode_head.num_classes == num_classes
    for loader in ('train_dataloader', 'test_dataloader'):
        Compose(cfg[loader].dataset.pipeline)
    if cfg.get('tta_pipeline'):
        Compose(cfg.tta_pipeline)
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64)))
    with torch.no_grad():
        prediction, = model.test_step(dict(inputs=[image], data_samples=[sample]))
    # MaskFormer segmentors with the fused ops predict labels without the (K, H, W) scores.
    fused = getattr(model, 'fused_labels', lambda device: False)(torch.device('cpu'))
    assert fused == (('maskformer' in path or 'mask2former' in path) and extension_available())
    if not fused:
        assert prediction.seg_logits.data.shape == (num_classes, 64, 64)
    assert prediction.pred_sem_seg.data.shape == (1, 64, 64)
    del model
    gc.collect()


@pytest.mark.parametrize('path', CONFIGS)
def test_config_has_the_project_hooks_as_default_hooks(path):
    # In default_hooks (merged key by key), a derived config's own custom_hooks cannot drop them.
    cfg = load(path)
    assert {key: cfg.default_hooks[key].type for key in PROJECT_HOOKS} == PROJECT_HOOKS
    assert not set(PROJECT_HOOKS.values()) & {hook.type for hook in cfg.get('custom_hooks', [])}


@pytest.mark.parametrize('path', CONFIGS)
def test_every_pipeline_checks_annotation_sizes_when_loading(path):
    # mmseg's LoadAnnotations does not: a training resize would stretch a wrong-size annotation
    # onto its image unnoticed.
    cfg = load(path)
    pipelines = [cfg[loader].dataset.pipeline
                 for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    for pipeline in pipelines + ([cfg.tta_pipeline] if cfg.get('tta_pipeline') else []):
        loaders = {t.type for t in transforms(pipeline) if t.type.endswith('Annotations')}
        assert len(loaders) == 1 and loaders <= SIZE_CHECKING_LOADERS, loaders


@pytest.mark.parametrize('path', sorted(ZOO))
def test_zoo_config_matches_the_table(path):
    cfg, entry = load(path), ZOO[path]['Metadata']
    head = cfg.model.decode_head
    assert head.num_classes == entry['Num Classes']
    ignore = entry['Ignore Index']
    assert head.ignore_index == ignore
    assert cfg.model.data_preprocessor.seg_pad_val == ignore
    train = list(transforms(cfg.train_dataloader.dataset.pipeline))
    for crop in (t for t in train if t.type in ('RandomCrop', 'RandomRangeCrop')):
        assert crop.get('ignore_index', 255) == ignore
    evaluators = cfg.test_evaluator
    evaluators = evaluators if isinstance(evaluators, list) else [evaluators]
    for evaluator in (e for e in evaluators if e.type == 'IoUMetric'):
        assert evaluator.get('ignore_index', 255) == ignore
    if 'coco-panoptic' in path:
        crop, = (t for t in train if t.type == 'RandomRangeCrop')
        assert '-'.join(map(str, crop.size_range)) == entry['Crop Size']
    else:
        crop, = (t for t in train if t.type == 'RandomCrop')
        assert 'x'.join(map(str, crop.crop_size)) == entry['Crop Size']
        assert tuple(cfg.model.data_preprocessor.size) == tuple(crop.crop_size)
    assert cfg.train_cfg.max_iters == entry['Iterations']
    assert cfg.param_scheduler[-1].end == entry['Iterations']
    gpus, batch = map(int, re.search(r'_(\d+)xb(\d+)-', path).groups())
    assert gpus * batch == entry['Batch Size'] and cfg.train_dataloader.batch_size == batch
    assert head.num_queries == 100
    assert cfg.optim_wrapper.type == 'mmseg_maskformer.NonFiniteGuardOptimWrapper'
    assert cfg.optim_wrapper.max_consecutive_skips == 0
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=0.01, norm_type=2)


@pytest.mark.parametrize('path', SEMANTIC_ZOO)
def test_semantic_configs_use_the_official_tta(path):
    cfg = load(path)
    assert cfg.tta_model.type == 'mmseg_maskformer.MaskFormerTTAModel'
    resizes = [t for t in transforms(cfg.tta_pipeline) if t.type == 'ResizeShortestEdge']
    flips = [t.prob for t in transforms(cfg.tta_pipeline) if t.type == 'RandomFlip']
    assert flips == [0.0, 1.0] and len(resizes) == 6
    key = re.search(r'_([a-z0-9-]+-\d+x\d+)\.py$', path).group(1)
    if key in OFFICIAL_TTA:
        sizes, max_size = OFFICIAL_TTA[key]
        assert tuple(t.scale for t in resizes) == sizes
        assert {t.max_size for t in resizes} == {max_size}


@pytest.mark.parametrize('path', PANOPTIC_ZOO)
def test_panoptic_configs_have_no_tta(path):
    cfg = load(path)
    assert cfg.tta_model is None and cfg.model.decode_head.test_cfg.mode == 'panoptic'


@pytest.mark.parametrize('path', [p for p in ZOO if 'r101c' in p])
def test_r101c_is_the_deeplab_resnet(path):
    # detectron2's DeepLab ResNet: stem 3→64 (stride 2)→64→128, res5 dilations 1, 2, 4,
    # stride 32.
    backbone = build_model(load(path)).backbone
    stem_convs = [m for m in backbone.stem if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in stem_convs] == [
        (3, 64, 2), (64, 64, 1), (64, 128, 1)]
    assert backbone.layer1[0].conv1.in_channels == 128
    assert [block.conv2.dilation for block in backbone.layer4] == [(1, 1), (2, 2), (4, 4)]
    backbone.eval()
    with torch.no_grad():
        feats = backbone(torch.zeros(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]


@pytest.mark.parametrize('path', [
    'configs/maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py',
    'configs/maskformer/maskformer_swin-t_8xb2-160k_ade20k-512x512.py'
])
def test_optimizer_groups_follow_the_official_build_optimizer(path):
    # train_net.py build_optimizer: backbone lr × BACKBONE_MULTIPLIER; no weight decay on norm
    # layers (WEIGHT_DECAY_NORM 0.0), embeddings (WEIGHT_DECAY_EMBED 0.0) and Swin's relative
    # position tables; ResNets have frozen BatchNorm.
    cfg = load(path)
    model = build_model(cfg)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    group_of = {id(p): g for g in optimizer.param_groups for p in g['params']}
    base_lr, base_wd = cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay
    swin = 'swin' in path
    norm_types = (torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.BatchNorm2d)
    checked = 0
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                assert isinstance(module, torch.nn.BatchNorm2d) and not swin
                continue
            group = group_of[id(param)]
            no_decay = (isinstance(module, (*norm_types, torch.nn.Embedding))
                        or 'relative_position_bias_table' in name)
            lr = base_lr * (0.1 if module_name.startswith('backbone') and not swin else 1.0)
            assert group['lr'] == pytest.approx(lr), module_name
            assert group['weight_decay'] == (0.0 if no_decay else base_wd), module_name
            checked += 1
    assert checked > 100
    model.train()
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(not m.training for m in bn) and (swin or len(bn) > 50)


def official_lr(step, base_lr, max_iters, warmup_iters=0, warmup_factor=1.0):
    """detectron2's WarmupPolyLR (linear warm-up, power 0.9)."""
    warmup = 1.0
    if step < warmup_iters:
        alpha = step / warmup_iters
        warmup = warmup_factor * (1 - alpha) + alpha
    return base_lr * warmup * (1 - step / max_iters) ** 0.9


@pytest.mark.parametrize('path, warmup', [
    ('configs/maskformer/maskformer_r101-d32_8xb2-90k_cityscapes-512x1024.py', (0, 1.0)),
    ('configs/maskformer/maskformer_swin-t_8xb2-160k_ade20k-512x512.py', (1500, 1e-6)),
])
def test_lr_schedule_is_detectron2_warmup_poly(path, warmup):
    cfg = load(path)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=optimizer)) for s in cfg.param_scheduler]
    checkpoints = {0, 1, 700, 1499, 1500, 1501, 5000}
    for step in range(max(checkpoints) + 1):
        if step in checkpoints:
            expected = official_lr(step, cfg.optim_wrapper.optimizer.lr, cfg.train_cfg.max_iters,
                                   *warmup)
            assert optimizer.param_groups[0]['lr'] == pytest.approx(expected, rel=1e-6), step
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
