"""Checks of a config's data that must run before the Runner builds its loops."""
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from ..datasets.validation import DataError
from ..datasets.wrappers import underlying_dataset_configs


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
