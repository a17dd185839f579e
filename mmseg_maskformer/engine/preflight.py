"""Checks of a config's data that must run before the Runner builds its loops."""
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from ..datasets.validation import DataError


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
    mistyped ``data_root``, ``data_prefix`` or ``img_suffix`` gives exactly that. Dataset
    wrappers (``ConcatDataset``...) are not checked here.
    """
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    checked = set()
    for split in splits:
        dataset_cfg = (cfg.get(f'{split}_dataloader') or {}).get('dataset')
        if dataset_cfg is None or 'dataset' in dataset_cfg or 'datasets' in dataset_cfg:
            continue
        if repr(dataset_cfg) in checked:
            continue
        checked.add(repr(dataset_cfg))
        dataset = DATASETS.build(
            dict(dataset_cfg, pipeline=[], serialize_data=False, lazy_init=False))
        if len(dataset) == 0:
            raise DataError(f'The {split} dataset is empty: {describe_empty_dataset(dataset)}')
