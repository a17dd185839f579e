"""Check a config's datasets before training.

For every sample of the chosen splits: the image and its annotation exist, decode and have the same
size; labels are within the classes or the ignore value; for panoptic data, the PNG's segment ids
and the JSON's ``segments_info`` agree. Prints per-class pixel and image counts and the ignored
fraction, lists every problem with its file, and exits with status 1 if there was any.

mmengine's dataset wrappers (``RepeatDataset``, ``ConcatDataset``, ...) are looked through: each
dataset under them is read once, and a split's table counts each of its files once.

    python tools/check_dataset.py CONFIG [--splits train val] [--cfg-options k=v ...]
"""
import argparse
import sys
from typing import List, NamedTuple, Optional, Tuple

import mmcv
import numpy as np
from mmengine.config import Config, DictAction
from mmengine.fileio import get
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from mmseg_maskformer.datasets.panoptic import load_panoptic_png
from mmseg_maskformer.datasets.validation import (DataError, check_labels,
                                                  check_panoptic_segments, check_same_size)
from mmseg_maskformer.datasets.wrappers import underlying_dataset_configs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Check the datasets of an mmseg config')
    parser.add_argument('config')
    parser.add_argument('--splits', nargs='+', default=['train', 'val', 'test'],
                        choices=['train', 'val', 'test'])
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs (mmseg syntax)')
    return parser.parse_args(argv)


def read_semantic(info: dict) -> np.ndarray:
    """Labels as mmseg's LoadAnnotations produces them (label_map, reduce_zero_label)."""
    labels = mmcv.imfrombytes(get(info['seg_map_path']), flag='unchanged').squeeze()
    if labels.ndim != 2:
        raise DataError(f'{info["seg_map_path"]}: a semantic annotation must have one channel, '
                        f'got shape {labels.shape}')
    labels = labels.astype(np.int64)
    if info.get('label_map'):
        mapped = labels.copy()
        for old, new in info['label_map'].items():
            mapped[labels == old] = new
        labels = mapped
    if info.get('reduce_zero_label'):
        labels = np.where(labels == 0, 255, labels - 1)
        labels[labels == 254] = 255
    return labels


def read_panoptic(info: dict, ignore_index: int) -> np.ndarray:
    """Semantic labels of a panoptic PNG after checking its ids against the JSON."""
    ids = load_panoptic_png(info['seg_map_path'])
    check_panoptic_segments(ids, [s['id'] for s in info['segments_info']], info['seg_map_path'])
    labels = np.full(ids.shape, ignore_index, dtype=np.int64)
    for segment in info['segments_info']:
        labels[ids == segment['id']] = segment['label']
    return labels


def check_samples(dataset, num_classes: int, ignore_index: int):
    """Returns (errors, pixels per class, images per class, ignored pixels, all pixels)."""
    errors = []
    pixels = np.zeros(num_classes, dtype=np.int64)
    images = np.zeros(num_classes, dtype=np.int64)
    ignored = total = 0
    if len(dataset) == 0:
        errors.append(f'no samples found (data_prefix={dict(dataset.data_prefix)}, '
                      f'img_suffix={getattr(dataset, "img_suffix", None)!r})')
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        try:
            image = mmcv.imfrombytes(get(info['img_path']))
            if image is None:
                raise DataError(f'{info["img_path"]}: not a readable image')
            if 'segments_info' in info:
                labels = read_panoptic(info, ignore_index)
            else:
                labels = read_semantic(info)
            check_same_size(image.shape, labels.shape, info['img_path'], info['seg_map_path'])
            check_labels(labels, num_classes, ignore_index, info['seg_map_path'])
        except (DataError, OSError) as error:
            errors.append(str(error))
            continue
        except Exception as error:  # a decoder's own error: report it with the file
            errors.append(f'{info["img_path"]} / {info.get("seg_map_path")}: '
                          f'{type(error).__name__}: {error}')
            continue
        counts = np.bincount(labels[labels != ignore_index].ravel(), minlength=num_classes)
        pixels += counts
        images += counts > 0
        ignored += int((labels == ignore_index).sum())
        total += labels.size
    return errors, pixels, images, ignored, total


def format_table(classes, pixels, images, ignored, total) -> str:
    width = max([len('class')] + [len(name) for name in classes])
    lines = [f'{"class":<{width}}  {"pixels":>12}  {"share":>7}  {"images":>7}']
    for name, count, image_count in zip(classes, pixels, images):
        share = count / max(total, 1)
        lines.append(f'{name:<{width}}  {count:>12d}  {share:>7.2%}  {image_count:>7d}')
    lines.append(f'{"(ignored)":<{width}}  {ignored:>12d}  {ignored / max(total, 1):>7.2%}')
    return '\n'.join(lines)


class DatasetCheck(NamedTuple):
    """What :func:`check_dataset` found in one (unwrapped) dataset; ``classes`` is None when the
    dataset could not be built."""
    samples: int
    classes: Optional[Tuple[str, ...]]
    errors: List[str]
    pixels: Optional[np.ndarray] = None
    images: Optional[np.ndarray] = None
    ignored: int = 0
    total: int = 0


def check_dataset(dataset_cfg, ignore_index: int) -> DatasetCheck:
    try:
        dataset = DATASETS.build(dict(dataset_cfg, pipeline=[], lazy_init=False))
    except (OSError, ValueError) as error:
        return DatasetCheck(0, None, [f'cannot build the dataset: {error}'])
    classes = tuple(dataset.metainfo['classes'])
    return DatasetCheck(len(dataset), classes, *check_samples(dataset, len(classes), ignore_index))


def report_split(split: str, checks: List[DatasetCheck], ignore_index: int,
                 wrapper: Optional[str] = None) -> bool:
    """Prints the table and the problems of a split made of the datasets of ``checks`` (under a
    dataset wrapper of type ``wrapper``, if any); returns whether there was a problem."""
    errors = [error for check in checks for error in check.errors]
    built = [check for check in checks if check.classes is not None]
    if built:
        classes = built[0].classes
        counted = [check for check in built if check.classes == classes]
        if len(counted) < len(built):  # mmengine's ConcatDataset refuses them as well
            errors.append(f'the datasets under {wrapper} differ in classes; only those with the '
                          f'classes of the first are counted')
        samples = f'{sum(check.samples for check in built)} samples'
        if wrapper is not None:
            samples += (f' ({wrapper} of {len(checks)} dataset{"s" * (len(checks) > 1)}, each '
                        f'sample counted once)')
        print(f'[{split}] {samples}, {len(classes)} classes, ignore value {ignore_index}')
        print(format_table(classes, sum(check.pixels for check in counted),
                           sum(check.images for check in counted),
                           sum(check.ignored for check in counted),
                           sum(check.total for check in counted)))
    for error in errors:
        print(f'[{split}] ERROR: {error}')
    return bool(errors)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    ignore_index = cfg.model.get('decode_head', {}).get('ignore_index', 255)
    failed = False
    checks = {}  # by repr of the dataset config: a dataset in several splits is read once
    reported = []
    for split in args.splits:
        dataset_cfg = cfg.get(f'{split}_dataloader', {}).get('dataset')
        if dataset_cfg is None:
            continue
        underlying = underlying_dataset_configs(dataset_cfg)
        keys = [repr(c) for c in underlying]
        if keys in reported:
            continue  # test_dataloader is often val_dataloader
        reported.append(keys)
        for key, underlying_cfg in zip(keys, underlying):
            if key not in checks:
                checks[key] = check_dataset(underlying_cfg, ignore_index)
        wrapper = None if underlying == [dataset_cfg] else dataset_cfg.get('type')
        failed |= report_split(split, [checks[key] for key in keys], ignore_index, wrapper)
    print('FAILED' if failed else 'OK')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
