"""The ``dataset_meta`` of a checkpoint: the class names and colours of what the model predicts.

mmseg's ``init_model`` reads ``meta.dataset_meta`` of a checkpoint to name the classes; where it
is missing, it takes the first dataset of mmseg's with ``num_classes`` classes, else Cityscapes'
19 names (mmseg 1.2.2 ``mmseg/apis/inference.py``), which is wrong for 847 (ADE20K-Full), 133
(COCO panoptic) or 65 (Vistas) classes. A runner writes the training dataset's metainfo there; a
converted checkpoint gets it from :func:`config_dataset_meta`, from the config alone.
"""
import json
import os.path as osp
from typing import List, Mapping, Optional

import numpy as np

from .panoptic_categories import released_panoptic_categories

# Metainfo keys a checkpoint carries: what predictions are drawn and named with.
CHECKPOINT_META_KEYS = ('classes', 'palette', 'thing_classes', 'stuff_classes')


def random_palette(num_classes: int) -> List[List[int]]:
    """The colours mmseg gives a dataset without a palette (mmseg 1.2.2
    ``BaseSegDataset._update_palette``: ``np.random.seed(42)``, then
    ``np.random.randint(0, 255, size=(num_classes, 3))``), without touching numpy's global
    random state."""
    return np.random.RandomState(42).randint(0, 255, size=(num_classes, 3)).tolist()


def _palette_of(metainfo: Mapping, label_map: Optional[Mapping[int, int]],
                source: str) -> list:
    """The palette of a dataset's metainfo as mmseg 1.2.2 ``BaseSegDataset._update_palette`` sets
    it: as given when it has one colour per class, :func:`random_palette` when there is none,
    the kept classes' colours when ``classes`` selects a subset of the dataset's."""
    palette = list(metainfo.get('palette') or [])
    classes = metainfo.get('classes') or []
    if len(palette) == len(classes):
        return palette
    if not palette:
        return random_palette(len(classes))
    if len(palette) >= len(classes) and label_map is not None:
        kept = sorted((new_id, old_id) for old_id, new_id in label_map.items() if new_id != 255)
        return [palette[old_id] for _, old_id in kept]
    raise ValueError(f'{source}: the palette has {len(palette)} colours for {len(classes)} '
                     'classes')


def _dataset_config(cfg) -> Mapping:
    """The dataset whose classes a model of ``cfg`` predicts: the test set's, else the
    validation or training set's."""
    for loader in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset')
        if dataset:
            return dataset
    raise ValueError('the config has no test_dataloader (nor val/train_dataloader) dataset to '
                     'take the class names from')


def _dataset_class(dataset_cfg: Mapping, default_scope: str):
    import mmseg.datasets  # noqa: F401  registers mmseg's datasets
    from mmseg.registry import DATASETS

    import mmseg_maskformer.datasets  # noqa: F401  registers ours
    scope = dataset_cfg.get('_scope_', default_scope)
    with DATASETS.switch_scope_and_registry(scope) as registry:
        dataset_class = registry.get(dataset_cfg['type'])
    if dataset_class is None:
        raise ValueError(f"dataset type {dataset_cfg['type']!r} is not registered (scope "
                         f"{scope!r}): is its module in the config's custom_imports?")
    return dataset_class


def _panoptic_file_categories(dataset_cfg: Mapping) -> List[dict]:
    """The ``categories`` of a COCO-panoptic-format annotation file: read from the file where it
    is on disk, else those of the released file of that name."""
    ann_file = dataset_cfg.get('ann_file', '')
    data_root = dataset_cfg.get('data_root')
    path = ann_file if data_root is None or osp.isabs(ann_file) else osp.join(data_root, ann_file)
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f)['categories']
    categories = released_panoptic_categories(ann_file)
    if categories is None:
        raise ValueError(f'{dataset_cfg["type"]} takes its classes from the categories of '
                         f'{path}, which is not on disk nor a released annotation file: set '
                         'metainfo=dict(classes=..., thing_classes=..., palette=...) in the '
                         'dataset config')
    return categories


def _wrapped_datasets_metainfo(dataset_cfg: Mapping, default_scope: str) -> dict:
    """The metainfo of the dataset(s) behind wrappers (RepeatDataset, ConcatDataset...), which
    mmengine's wrappers take from their (first) dataset, refusing datasets whose classes differ."""
    from mmseg_maskformer.datasets import underlying_dataset_configs
    metainfos = [_seg_dataset_metainfo(cfg, default_scope)
                 for cfg in underlying_dataset_configs(dataset_cfg)]
    for other in metainfos[1:]:
        if list(other['classes']) != list(metainfos[0]['classes']):
            raise ValueError(f"the datasets of {dataset_cfg['type']} have different classes")
    return metainfos[0]


def _seg_dataset_metainfo(dataset_cfg: Mapping, default_scope: str) -> dict:
    """What ``dataset.metainfo`` of the built segmentation dataset would hold (classes,
    palette, ...), found without building it."""
    from mmseg.datasets import BaseSegDataset

    from mmseg_maskformer.datasets import CocoPanopticSegDataset
    dataset_class = _dataset_class(dataset_cfg, default_scope)
    if not issubclass(dataset_class, BaseSegDataset):
        raise ValueError(f"dataset type {dataset_cfg['type']!r} is not a segmentation dataset "
                         "(mmseg's BaseSegDataset) nor a wrapper of one")
    metainfo = dict(dataset_cfg.get('metainfo') or {})
    if issubclass(dataset_class, CocoPanopticSegDataset):
        # As CocoPanopticSegDataset.__init__: the annotation file's categories, under the config's
        # metainfo.
        categories = _panoptic_file_categories(dataset_cfg)
        defaults = dict(classes=tuple(c['name'] for c in categories),
                        thing_classes=tuple(c['name'] for c in categories if c.get('isthing')))
        if all('color' in c for c in categories):
            defaults['palette'] = [list(c['color']) for c in categories]
        metainfo = dict(defaults, **metainfo)
    # What BaseSegDataset.__init__ does with the class's METAINFO and the config's metainfo.
    full = dataset_class._load_metainfo(metainfo)
    if not full.get('classes'):
        raise ValueError(f"dataset type {dataset_cfg['type']!r} names no classes: set "
                         'metainfo=dict(classes=...) in the dataset config')
    label_map = dataset_class.get_label_map(full['classes'])
    full['palette'] = _palette_of(full, label_map, f"dataset {dataset_cfg['type']}")
    return full


def _head_num_classes(cfg) -> int:
    """``num_classes`` of the model's (last) decode head."""
    head = cfg.get('model', {}).get('decode_head')
    if isinstance(head, (list, tuple)):
        head = head[-1]
    if not head or 'num_classes' not in head:
        raise ValueError('the config has no model.decode_head.num_classes')
    return int(head['num_classes'])


def config_dataset_meta(cfg) -> dict:
    """``dataset_meta`` for a checkpoint of ``cfg``'s model: ``classes`` and ``palette`` (and
    ``thing_classes`` / ``stuff_classes`` where the dataset names them) of the config's test
    dataset, as the dataset would set them, without building it (its data need not exist).

    The dataset's are its class's ``METAINFO`` under the config's ``metainfo=``, as mmseg's
    ``BaseSegDataset`` merges them (a subset of the classes keeps their colours; no palette gives
    mmseg's seeded one, :func:`random_palette`); a ``CocoPanopticSegDataset`` reads them from its
    annotation file, or when that is not on disk knows those of the released COCO, ADE20K and
    Shapes files. Thing / stuff classes are kept in the order of ``classes``, those among them.

    Raises:
        ValueError: the config has no dataset or no decode head, the dataset names no classes,
            or not as many as the head's ``num_classes``.
    """
    metainfo = _wrapped_datasets_metainfo(_dataset_config(cfg),
                                          cfg.get('default_scope', 'mmseg'))
    classes = tuple(str(name) for name in metainfo['classes'])
    num_classes = _head_num_classes(cfg)
    if len(classes) != num_classes:
        raise ValueError(f'the config\'s dataset has {len(classes)} classes but its model '
                         f'predicts {num_classes} (model.decode_head.num_classes)')
    # Plain str / int containers: what safe (weights_only) checkpoint loading reads back.
    meta = dict(classes=classes, palette=[[int(c) for c in colour]
                                          for colour in metainfo['palette']])
    for key in ('thing_classes', 'stuff_classes'):
        if key in metainfo:
            named = set(metainfo[key])
            meta[key] = tuple(name for name in classes if name in named)
    return meta


def checkpoint_dataset_meta(meta: Optional[Mapping], checkpoint: str,
                            num_classes: int) -> Optional[dict]:
    """``classes`` and ``palette`` (and ``thing_classes``...) a checkpoint's ``meta`` names:
    its ``dataset_meta`` (mmseg 1.x), else ``CLASSES`` / ``PALETTE`` (mmseg 0.x); ``None`` when it
    names no classes. A missing palette becomes :func:`random_palette`, as mmseg's datasets do.

    Raises:
        ValueError: naming ``checkpoint``, when the class list is not ``num_classes`` long (the
            model would predict classes the list does not have, or the checkpoint belongs to
            another config) or the palette does not give one RGB colour per class.
    """
    meta = meta or {}
    if meta.get('dataset_meta'):
        found = {k: v for k, v in meta['dataset_meta'].items() if k in CHECKPOINT_META_KEYS}
    elif meta.get('CLASSES'):
        found = dict(classes=meta['CLASSES'], palette=meta.get('PALETTE'))
    else:
        return None
    if not found.get('classes'):
        return None
    classes = tuple(found['classes'])
    if len(classes) != num_classes:
        raise ValueError(
            f'{checkpoint} names {len(classes)} classes in its meta (dataset_meta) but the '
            f'config\'s model predicts {num_classes} (model.decode_head.num_classes): use the '
            'config the checkpoint was trained or converted with, or convert the released '
            'weights again with tools/convert_checkpoint.py SOURCE OUT_DIR --config CONFIG')
    palette = found.get('palette')
    if palette is None or len(palette) == 0:
        palette = random_palette(len(classes))
    colours = np.asarray(palette)
    if colours.shape != (len(classes), 3) or colours.min() < 0 or colours.max() > 255:
        raise ValueError(f'{checkpoint}: the palette of its meta is not one RGB colour (0-255) '
                         f'per class: shape {colours.shape} for {len(classes)} classes')
    return dict(found, classes=classes, palette=colours.astype(int).tolist())
