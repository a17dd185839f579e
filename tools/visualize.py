"""Write PNG panels (image | ground truth | prediction) for the first images of a test set.

Semantic models: image | ground truth | prediction. Panoptic models (``pred_panoptic_seg``):
image | ground-truth segments | predicted segments, each segment in its class colour, instances
of a thing class in shades of it, segment borders in white. A legend names the class colours.

Class names and colours are those of the config's test dataset, which must have one class per
class the model predicts (``decode_head.num_classes``), as must the checkpoint's
``meta.dataset_meta`` where it names classes. Ground-truth pixels of the head's ``ignore_index``
(255; 65 for Vistas, 65535 for ADE20K-Full) are white; predictions show every class's colour.

Usage: python tools/visualize.py CONFIG CHECKPOINT [--out-dir DIR] [--num N] [--device cpu]
       [--trust-checkpoint] [--cfg-options k=v ...]
"""
import argparse
import os
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from mmseg_maskformer.converters import checkpoint_dataset_meta
from mmseg_maskformer.utils.checkpoint import TRUST_CHECKPOINT_HELP, trust_checkpoint
from mmseg_maskformer.visualization import add_legend, colourise, colourise_segments, panel


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Write prediction panels as PNG files')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out-dir', default='work_dirs/panels')
    parser.add_argument('--num', type=int, default=6, help='number of test images')
    parser.add_argument('--scale', type=int, default=2, help='integer zoom of each panel')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--trust-checkpoint', action='store_true', help=TRUST_CHECKPOINT_HELP)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs (mmseg syntax)')
    return parser.parse_args(argv)


def check_classes(classes, num_classes: int, config: str, checkpoint: str, checkpoint_meta):
    """The dataset's and the checkpoint's class lists must have one entry per class the model
    predicts: a shorter one leaves classes without a name and colour, a longer one means that
    the model and the data (or the weights) belong to different configs."""
    if len(classes) != num_classes:
        raise ValueError(f'the test dataset of {config} has {len(classes)} classes but its model '
                         f'predicts {num_classes} (model.decode_head.num_classes): make them '
                         'agree in the config')
    checkpoint_dataset_meta(checkpoint_meta, checkpoint, num_classes)


def main(argv=None):
    args = parse_args(argv)
    from mmseg.registry import DATASETS, MODELS

    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    model = MODELS.build(cfg.model)
    if args.trust_checkpoint:
        trust_checkpoint(args.checkpoint)
    checkpoint = load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.to(args.device).eval()
    check_classes(dataset.metainfo['classes'], model.decode_head.num_classes, args.config,
                  args.checkpoint, checkpoint.get('meta'))
    ignore_index = model.decode_head.ignore_index
    palette = np.array(dataset.metainfo['palette'], dtype=np.uint8)
    legend = list(zip(dataset.metainfo['classes'], palette))

    os.makedirs(args.out_dir, exist_ok=True)
    for index in range(min(args.num, len(dataset))):
        data = dataset[index]
        with torch.no_grad():
            result = model.test_step(dict(inputs=[data['inputs']], data_samples=[data['data_samples']]))[0]
        image = np.ascontiguousarray(data['inputs'].numpy().transpose(1, 2, 0)[..., ::-1])  # BGR->RGB
        if 'pred_panoptic_seg' in result:
            gt_labels = dict(enumerate(result.panoptic_labels, start=1))
            gt = colourise_segments(result.gt_panoptic_seg.data[0].cpu().numpy(), gt_labels, palette)
            pred_labels = {s['id']: s['category_id'] for s in result.pred_segments_info}
            pred = colourise_segments(result.pred_panoptic_seg.data[0].cpu().numpy(), pred_labels,
                                      palette)
        else:
            gt = colourise(result.gt_sem_seg.data[0].cpu().numpy(), palette, ignore_index)
            pred = colourise(result.pred_sem_seg.data[0].cpu().numpy(), palette)
        name = osp.splitext(osp.basename(result.img_path))[0]
        path = osp.join(args.out_dir, f'{name}.png')
        add_legend(np.asarray(panel([image, gt, pred], args.scale)), legend).save(path)
    print(f'panels (image | ground truth | prediction) written to {osp.abspath(args.out_dir)}',
          flush=True)


if __name__ == '__main__':
    main()
