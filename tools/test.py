"""Test (and evaluate) a checkpoint with an mmseg config; prints the metrics (mIoU, ...)."""
import argparse
import numbers
import os

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mmseg_maskformer.evaluation  # noqa: F401  (LabelMapIoUMetric, for --out)
from mmseg_maskformer.engine.preflight import check_datasets_not_empty, runner_config
from mmseg_maskformer.utils.checkpoint import TRUST_CHECKPOINT_HELP, trust_checkpoint
from mmseg_maskformer.utils.dist import destroy_process_group_on_exit, setup_cpu_distributed


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='MMSeg test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for logs and the metrics json')
    parser.add_argument('--out', type=str,
                        help='directory for the predictions: label maps NAME.png (as mmseg), and '
                        'for panoptic configs panoptic/NAME.png + panoptic.json (COCO panoptic)')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images will be saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs (mmseg syntax)')
    parser.add_argument('--trust-checkpoint', action='store_true', default=False,
                        help=TRUST_CHECKPOINT_HELP)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--tta', action='store_true', help='test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError('--show / --show-dir need a visualization hook in default_hooks, '
                           "e.g. visualization=dict(type='SegVisualizationHook')")
    hook = default_hooks['visualization']
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        cfg.visualizer['save_dir'] = args.show_dir
    return cfg


def save_predictions_to(cfg, out_dir: str) -> None:
    """Every metric of ``test_evaluator`` (one, or a list as in the panoptic configs) writes its
    predictions to ``out_dir`` as well as evaluating them (mmseg's ``IoUMetric`` replaced by
    :class:`mmseg_maskformer.evaluation.LabelMapIoUMetric`, which writes more than 256 classes
    correctly)."""
    metrics = cfg.test_evaluator
    for metric in metrics if isinstance(metrics, (list, tuple)) else [metrics]:
        if metric['type'] in ('IoUMetric', 'mmseg.IoUMetric'):
            metric['type'] = 'LabelMapIoUMetric'  # 16-bit label maps above 256 classes
        metric['output_dir'] = out_dir
        metric['keep_results'] = True


def build_config(args) -> Config:
    cfg = runner_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        if not cfg.get('tta_model') or not cfg.get('tta_pipeline'):
            raise SystemExit(f'--tta: {args.config} defines no tta_model / tta_pipeline (test-time '
                             'augmentation of panoptic outputs is not part of the official '
                             'MaskFormer code)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        save_predictions_to(cfg, args.out)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    if args.trust_checkpoint:
        trust_checkpoint(args.checkpoint)

    check_datasets_not_empty(cfg, splits=('test', ))
    setup_cpu_distributed(cfg, args.launcher)
    with destroy_process_group_on_exit():
        runner = Runner.from_cfg(cfg)
        metrics = runner.test()
    if runner.rank == 0:
        print(' '.join(f'{key}: {float(value):.2f}' if isinstance(value, numbers.Real) else
                       f'{key}: {value}' for key, value in metrics.items()), flush=True)
    return metrics


if __name__ == '__main__':
    main()
