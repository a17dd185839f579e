"""Every config under configs/ parses, builds its model and its data pipelines."""
import glob
import os

import pytest
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)


def test_there_are_configs():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {'maskformer_r50-d32_8xb2-160k_ade20k-512x512.py', 'maskformer_r101-d32_8xb2-160k_ade20k-512x512.py',
            'maskformer_swin-t_8xb2-160k_ade20k-512x512.py', 'maskformer_swin-s_8xb2-160k_ade20k-512x512.py',
            'maskformer_r18-tiny_1xb8-2k_shapes-128x128.py'} <= names


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds(path):
    cfg = Config.fromfile(os.path.join(REPO, path))
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model.copy()
    model_cfg.backbone.pop('init_cfg', None)  # no pretrained download in tests
    model = MODELS.build(model_cfg)
    assert model.decode_head.num_classes == cfg.model.decode_head.num_classes
    for loader in ('train_dataloader', 'test_dataloader'):
        Compose(cfg[loader].dataset.pipeline)


@pytest.mark.parametrize('path', [p for p in CONFIGS if 'ade20k-512x512' in p])
def test_ade20k_recipe(path):
    # SPEC §1.5: batch 16 as 8×2, 160k iterations, gradient clipping at 0.01, poly schedule.
    cfg = Config.fromfile(os.path.join(REPO, path))
    assert cfg.train_dataloader.batch_size == 2 and cfg.train_cfg.max_iters == 160000
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=0.01, norm_type=2)
    assert cfg.model.decode_head.num_queries == 100 and cfg.model.decode_head.num_classes == 150
    optimizer = cfg.optim_wrapper.optimizer
    if 'swin' in path:
        assert (optimizer.lr, optimizer.weight_decay) == (6e-5, 0.01)
        assert cfg.param_scheduler[0].end == 1500 and cfg.model.backbone.drop_path_rate == 0.3
    else:
        assert (optimizer.lr, optimizer.weight_decay) == (1e-4, 1e-4)
        assert cfg.optim_wrapper.paramwise_cfg.custom_keys['backbone'] == dict(lr_mult=0.1)
        assert cfg.param_scheduler[0].power == 0.9
