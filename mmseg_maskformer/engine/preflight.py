"""What the tools do to a config before mmengine's Runner gets it: the command line's settings,
and checks of the data that must run before the Runner builds its loops."""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from ..datasets.validation import DataError
from ..datasets.wrappers import underlying_dataset_configs

# The default hooks mmengine 0.10.7's Runner knows: it accepts None (do not register) for these
# and refuses it for any other key (Runner.register_default_hooks).
MMENGINE_DEFAULT_HOOKS = ('runtime_info', 'timer', 'sampler_seed', 'logger', 'param_scheduler',
                          'checkpoint')


def drop_disabled_default_hooks(cfg) -> None:
    """Remove the ``default_hooks`` a config sets to None, except mmengine's own (None there
    already means "not registered"; removed, the Runner would put its default back)."""
    hooks = cfg.get('default_hooks') or {}
    disabled = [name for name, hook in hooks.items() if hook is None]
    for name in set(disabled) - set(MMENGINE_DEFAULT_HOOKS):
        del hooks[name]


def runner_config(config: str, launcher: str, cfg_options: Optional[dict],
                  work_dir: Optional[str]) -> Config:
    """The config file with ``--launcher``, ``--cfg-options`` and ``--work-dir`` applied as
    mmseg's tools do (default work directory ``./work_dirs/CONFIG_NAME``), and the default hooks
    it sets to None removed (:func:`drop_disabled_default_hooks`). Shared by ``tools/train.py``
    and ``tools/test.py``."""
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    drop_disabled_default_hooks(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


def describe_empty_dataset(dataset) -> str:
    prefix = getattr(dataset, 'data_prefix', {}) or {}
    where = ', '.join(f'{key}={value}' for key, value in prefix.items())
    suffix = getattr(dataset, 'img_suffix', None)
    ann_file = getattr(dataset, 'ann_file', '')
    return (f'no samples found ({where}' + (f', img_suffix={suffix!r}' if suffix else '') +
            (f', ann_file={ann_file}' if ann_file else '') + '); check data_root and data_prefix')


def check_datasets_not_empty(cfg, splits=('train', 'val', 'test')) -> None:
    """Raise :class:`DataError` naming the folders if a dataset of ``cfg`` (``{split}_dataloader``
    for each of ``splits``) has no sample.

    mmengine's datasets fail on an empty sample list with "need at least one array to
    concatenate" (serialisation), or, unserialised, make ``InfiniteSampler`` loop forever; a
    mistyped ``data_root``, ``data_prefix`` or ``img_suffix`` gives exactly that. Behind dataset
    wrappers (``RepeatDataset``, ``ConcatDataset``...) each wrapped dataset is checked.
    """
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    checked = set()
    for split in splits:
        dataset_cfg = (cfg.get(f'{split}_dataloader') or {}).get('dataset')
        for wrapped in underlying_dataset_configs(dataset_cfg) if dataset_cfg else []:
            if repr(wrapped) in checked:
                continue
            checked.add(repr(wrapped))
            dataset = DATASETS.build(
                dict(wrapped, pipeline=[], serialize_data=False, lazy_init=False))
            if len(dataset) == 0:
                raise DataError(f'The {split} dataset is empty: '
                                f'{describe_empty_dataset(dataset)}')
