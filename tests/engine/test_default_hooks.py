"""The project's hooks (SafeCheckpointHook, RandomStateHook, DataCheckHook) are default hooks:
a config that sets its own ``custom_hooks`` keeps them, in their place, and a config or the
command line of tools/train.py and tools/test.py drops one only by naming it
(``default_hooks.data_check=None``)."""

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from cli_testing import CONFIG as TINY
from cli_testing import load_tool
from mmseg_maskformer.datasets import generate_shapes_dataset

PROJECT_HOOKS = ['SafeCheckpointHook', 'RandomStateHook', 'DataCheckHook']
# The order in which the Runner calls the hooks of the tiny config (priority, then registration):
# the project's hooks (priority VERY_HIGH) right after mmengine's RuntimeInfoHook.
TINY_HOOKS = ['RuntimeInfoHook', *PROJECT_HOOKS, 'IterTimerHook', 'DistSamplerSeedHook',
              'SegVisualizationHook', 'LoggerHook', 'ParamSchedulerHook', 'CheckpointHook']


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes_dataset(str(root), num_train=2, num_val=1, size=32, seed=0)
    return str(root)


def tiny_options(data_root, work_dir):
    options = {f'{loader}.{key}': value
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
               for key, value in (('dataset.data_root', data_root), ('num_workers', 0),
                                  ('persistent_workers', False))}
    return dict(options, work_dir=str(work_dir))


def derived_config(tmp_path, text):
    """A config file in ``tmp_path`` that derives from the tiny config and adds ``text``."""
    path = tmp_path / 'derived.py'
    path.write_text(f'_base_ = [{TINY!r}]\n{text}\n')
    return str(path)


def runner_hooks(config, data_root, work_dir):
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(tiny_options(data_root, work_dir))
    runner = Runner.from_cfg(cfg)
    return [(type(hook).__name__, hook.priority) for hook in runner.hooks]


def test_project_hooks_run_first_with_very_high_priority(data_root, tmp_path):
    hooks = runner_hooks(TINY, data_root, tmp_path)
    assert [name for name, _ in hooks] == TINY_HOOKS
    assert [priority for name, priority in hooks if name in PROJECT_HOOKS] == ['VERY_HIGH'] * 3


def test_config_with_its_own_custom_hooks_keeps_the_project_hooks(data_root, tmp_path):
    config = derived_config(tmp_path, "custom_hooks = [dict(type='EMAHook')]")
    hooks = [name for name, _ in runner_hooks(config, data_root, tmp_path)]
    expected = list(TINY_HOOKS)
    expected.insert(expected.index('SegVisualizationHook') + 1, 'EMAHook')  # NORMAL priority
    assert hooks == expected


@pytest.mark.parametrize('tool', ['train', 'test'])
@pytest.mark.parametrize('where', ['config', 'command line'])
def test_tools_drop_default_hooks_set_to_none(tool, where, data_root, tmp_path):
    # mmengine 0.10.7's Runner.register_default_hooks removes its own default hooks set to None
    # (runtime_info, timer, ...) and asserts on any other key set to None: the tools must remove
    # the project's, and keep mmengine's for the Runner (else it would add its default back).
    if where == 'config':
        config = derived_config(tmp_path, 'default_hooks = dict(data_check=None, timer=None)')
        dropping = []
    else:
        config = TINY
        dropping = ['default_hooks.data_check=None', 'default_hooks.timer=None']
    options = [f'{key}={value}' for key, value in tiny_options(data_root, tmp_path).items()]
    arguments = [config] + (['unused.pth'] if tool == 'test' else [])
    module = load_tool(tool)
    cfg = module.build_config(module.parse_args(arguments + ['--cfg-options'] + options +
                                                dropping))
    hooks = [type(hook).__name__ for hook in Runner.from_cfg(cfg).hooks]
    assert hooks == [name for name in TINY_HOOKS if name not in ('DataCheckHook', 'IterTimerHook')]
