"""Run a trained model on your own images: label maps, overlays and (panoptic) COCO-panoptic files.

Usage: python tools/infer.py CONFIG CHECKPOINT INPUT [INPUT ...] [--out-dir DIR] [--batch-size N]
       [--device cpu|cuda] [--opacity 0.5] [--trust-checkpoint] [--cfg-options k=v ...]

INPUT: image files, directories (their images, not recursive) or glob patterns ('photos/**/*.jpg',
quoted). Any mode Pillow reads is accepted: grayscale, palette and RGBA images are converted to
RGB (alpha dropped); each image keeps its own size. Written per image NAME (the file name
without its extension):

- ``labels/NAME.png``: the semantic label map, one class id per pixel (uint8, or 16-bit when the
  model has more than 256 classes), at the image's size;
- ``overlays/NAME.png``: the image blended with the class colours, with a legend of the classes
  present;
- panoptic models (``test_cfg.mode='panoptic'``): ``panoptic/NAME.png`` in the COCO panoptic PNG
  encoding (segment id = R + 256·G + 256²·B, 0 = void), ``panoptic_overlays/NAME.png``
  (segments in their class colour, instances shaded, white outlines, legend) and one
  ``panoptic.json`` with the COCO-panoptic ``annotations`` (``segments_info`` with ``id``,
  ``category_id`` = class index, ``isthing``, ``area``, ``bbox``, ``iscrowd``) and
  ``categories`` of the whole run.

Images go through the config's test pipeline without its annotation loading, then the model's
``test_step`` (the same path as ``mmseg.apis.inference_model``); consecutive images of one size
are batched.

Class names and colours (legends, ``categories``) are those the checkpoint's ``meta.dataset_meta``
names (mmseg 0.x: ``meta.CLASSES`` / ``PALETTE``); without a palette, mmseg's seeded colours. A
checkpoint naming another number of classes than the model predicts (``decode_head.num_classes``
of CONFIG) is refused: it belongs to another config. A checkpoint naming no classes (e.g. one
converted before ``tools/convert_checkpoint.py`` wrote them) gets the names ``class 0`` ..
``class K-1`` and a warning, where ``mmseg.apis.init_model`` would take the names of whichever
dataset has as many classes, else Cityscapes' 19 (wrong names, and too few for a larger model).
"""
import argparse
import glob
import os
import os.path as osp
import sys
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.dataset import Compose
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from mmseg_maskformer.converters import checkpoint_dataset_meta, random_palette
from mmseg_maskformer.evaluation.prediction_files import (write_label_map, write_panoptic_json,
                                                          write_panoptic_png)
from mmseg_maskformer.models.segmentor import thing_labels_of_meta
from mmseg_maskformer.utils.checkpoint import TRUST_CHECKPOINT_HELP, trust_checkpoint
from mmseg_maskformer.visualization import (add_legend, blend, colourise, colourise_segments,
                                            segment_borders)

IMAGE_EXTENSIONS = ('.bmp', '.jpeg', '.jpg', '.png', '.tif', '.tiff', '.webp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Segment your own images with a trained model')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('inputs', nargs='+', metavar='INPUT',
                        help='image files, directories or glob patterns')
    parser.add_argument('--out-dir', default='work_dirs/infer')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per forward pass (consecutive images of one size)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--opacity', type=float, default=0.5, help='of the colours in overlays')
    parser.add_argument('--trust-checkpoint', action='store_true', help=TRUST_CHECKPOINT_HELP)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs (mmseg syntax)')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be at least 1, got {args.batch_size}')
    return args


def find_images(inputs: Sequence[str]) -> List[str]:
    """Files, directories (their images, sorted) and glob patterns -> image paths, in order."""
    paths = []
    for item in inputs:
        if osp.isdir(item):
            found = sorted(osp.join(item, name) for name in os.listdir(item)
                           if name.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise FileNotFoundError(f'no image ({", ".join(IMAGE_EXTENSIONS)}) in directory '
                                        f'{item}')
        elif osp.isfile(item):
            found = [item]
        else:
            found = sorted(p for p in glob.glob(item, recursive=True) if osp.isfile(p))
            if not found:
                raise FileNotFoundError(f'{item} is neither a file, a directory nor a glob '
                                        'pattern that matches files')
        paths.extend(found)
    names = {}
    for path in paths:
        name = osp.splitext(osp.basename(path))[0]
        if name in names and osp.abspath(names[name]) != osp.abspath(path):
            raise ValueError(f'{names[name]} and {path} would write the same output files '
                             f'({name}.png): run them with different --out-dir')
        names[name] = path
    return list(dict.fromkeys(paths))


def read_rgb(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of any image Pillow reads (grayscale, palette, RGBA, 16-bit...)."""
    try:
        with Image.open(path) as image:
            if image.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
                # 16/32-bit grayscale: scale to 8 bits instead of clipping at 255.
                values = np.asarray(image, dtype=np.float64)
                peak = max(values.max(), 1.0)
                gray = np.rint(values * (255.0 / (65535.0 if peak <= 65535 else peak)))
                return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=-1)
            return np.asarray(image.convert('RGB'))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f'cannot read image {path}: {error}') from error


def inference_pipeline(cfg) -> Compose:
    """The config's test pipeline reading an in-memory BGR image, without annotation loading."""
    steps = cfg.get('test_pipeline') or cfg.test_dataloader.dataset.pipeline
    steps = [dict(step) for step in steps if not step['type'].endswith('Annotations')]
    if steps[0]['type'] != 'LoadImageFromFile':
        raise ValueError(f"the test pipeline must start with LoadImageFromFile, got {steps[0]}")
    steps[0] = dict(type='LoadImageFromNDArray')
    return Compose(steps)


def thing_labels_of(model) -> List[int]:
    """Class indices with instances: the head's ``test_cfg.thing_classes``, else the
    ``thing_classes`` names of the checkpoint's dataset metainfo."""
    from_cfg = model.decode_head.test_cfg.get('thing_classes')
    if from_cfg is not None:
        return [int(c) for c in from_cfg]
    from_meta = thing_labels_of_meta(getattr(model, 'dataset_meta', None))
    if from_meta is None:
        print('warning: neither test_cfg.thing_classes nor the checkpoint metainfo names the thing '
              'classes: every class is treated as stuff', file=sys.stderr)
    return from_meta or []


class Writer:
    """Writes the per-image files and collects the panoptic annotations."""

    def __init__(self, out_dir: str, classes: Sequence[str], palette: np.ndarray, opacity: float,
                 panoptic: bool, thing_labels: Sequence[int]):
        self.out_dir = out_dir
        self.classes = list(classes)
        self.palette = palette
        self.opacity = opacity
        self.panoptic = panoptic
        self.thing_labels = set(thing_labels)
        self.annotations = []
        folders = ['labels', 'overlays'] + (['panoptic', 'panoptic_overlays'] if panoptic else [])
        for folder in folders:
            os.makedirs(osp.join(out_dir, folder), exist_ok=True)

    def legend(self, labels) -> List:
        return [(self.classes[label], self.palette[label]) for label in labels]

    def write(self, path: str, image: np.ndarray, sample) -> None:
        name = osp.splitext(osp.basename(path))[0]
        labels = sample.pred_sem_seg.data[0].cpu().numpy()
        write_label_map(osp.join(self.out_dir, 'labels', f'{name}.png'), labels, len(self.classes))
        overlay = blend(image, colourise(labels, self.palette), self.opacity)
        add_legend(overlay, self.legend(np.unique(labels))).save(
            osp.join(self.out_dir, 'overlays', f'{name}.png'))
        if not self.panoptic:
            return
        segment_map = sample.pred_panoptic_seg.data[0].cpu().numpy()
        annotation = write_panoptic_png(self.out_dir, name, segment_map, sample.pred_segments_info)
        segments = annotation['segments_info']
        colours = colourise_segments(
            segment_map, {s['id']: s['category_id'] for s in segments}, self.palette)
        overlay = blend(image, colours, self.opacity)
        overlay[segment_borders(segment_map)] = 255  # outlines at full strength
        shown = sorted({s['category_id'] for s in segments})
        add_legend(overlay, self.legend(shown)).save(
            osp.join(self.out_dir, 'panoptic_overlays', f'{name}.png'))
        self.annotations.append(annotation)

    def close(self) -> None:
        if self.panoptic:
            write_panoptic_json(self.out_dir, self.annotations, self.classes, self.thing_labels)


def load_model(config, checkpoint: str, device: str, cfg_options=None):
    """``mmseg.apis.init_model(config, checkpoint)`` whose ``dataset_meta`` holds the class names
    and colours the checkpoint names, one per class of the model, or generated ones (with a
    warning) when it names none: see the module's docstring.

    Raises:
        ValueError: the checkpoint names another number of classes than the model predicts.
    """
    from mmengine.runner import load_checkpoint
    from mmseg.apis import init_model

    # init_model without a checkpoint, then its loading step, so that the checkpoint's meta is
    # seen as it is, not with the class names init_model invents when it has none.
    model = init_model(config, None, device=device, cfg_options=cfg_options)
    loaded = load_checkpoint(model, checkpoint, map_location='cpu')
    num_classes = model.decode_head.num_classes
    meta = checkpoint_dataset_meta(loaded.get('meta'), checkpoint, num_classes)
    if meta is None:
        print(f'warning: {checkpoint} names no classes (no meta.dataset_meta): they are called '
              f"'class 0' .. 'class {num_classes - 1}'. tools/convert_checkpoint.py SOURCE "
              'OUT_DIR --config CONFIG writes the names of the dataset of CONFIG.',
              file=sys.stderr)
        meta = dict(classes=tuple(f'class {i}' for i in range(num_classes)),
                    palette=random_palette(num_classes))
    model.dataset_meta = meta
    return model


def run_batch(model, batch: List[Dict], writer: Writer) -> None:
    with torch.no_grad():
        results = model.test_step(dict(inputs=[item['packed']['inputs'] for item in batch],
                                       data_samples=[item['packed']['data_samples']
                                                     for item in batch]))
    for item, sample in zip(batch, results):
        writer.write(item['path'], item['image'], sample)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.model import revert_sync_batchnorm

    paths = find_images(args.inputs)
    if args.trust_checkpoint:
        trust_checkpoint(args.checkpoint)
    model = load_model(args.config, args.checkpoint, args.device, args.cfg_options)
    model = revert_sync_batchnorm(model)  # SyncBN refuses to run outside a process group
    panoptic = model.decode_head.test_cfg.get('mode', 'semantic') == 'panoptic'
    thing_labels = thing_labels_of(model) if panoptic else []
    classes = model.dataset_meta['classes']
    palette = np.asarray(model.dataset_meta['palette'], dtype=np.uint8)
    pipeline = inference_pipeline(model.cfg)
    writer = Writer(args.out_dir, classes, palette, args.opacity, panoptic, thing_labels)

    batch = []
    for path in tqdm(paths, desc='images', unit='img', file=sys.stderr):
        image = read_rgb(path)
        packed = pipeline(dict(img=np.ascontiguousarray(image[..., ::-1])))  # mmseg reads BGR
        packed['data_samples'].set_metainfo(dict(img_path=path, thing_labels=thing_labels))
        if batch and (len(batch) == args.batch_size or
                      batch[-1]['packed']['inputs'].shape != packed['inputs'].shape):
            run_batch(model, batch, writer)
            batch = []
        batch.append(dict(path=path, image=image, packed=packed))
    if batch:
        run_batch(model, batch, writer)
    writer.close()
    print(f'{len(paths)} images segmented; results in {osp.abspath(args.out_dir)}', flush=True)


if __name__ == '__main__':
    main()
