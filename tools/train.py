"""Train a segmentor from an mmseg config (MMSegmentation's ``tools/train.py`` interface)."""
import argparse
import logging
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmseg_maskformer.engine.preflight import check_datasets_not_empty
from mmseg_maskformer.utils.checkpoint import TRUST_ENV
from mmseg_maskformer.utils.dist import setup_cpu_distributed

# --amp replaces an optimizer wrapper by its mixed-precision twin.
AMP_TWINS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'mmseg_maskformer.NonFiniteGuardOptimWrapper': 'mmseg_maskformer.NonFiniteGuardAmpOptimWrapper',
}


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', action='store_true', default=False,
                        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training (needs a GPU)')
    parser.add_argument('--amp-dtype', choices=['float16', 'bfloat16'], default='float16',
                        help='autocast dtype with --amp')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs (mmseg syntax)')
    parser.add_argument('--trust-checkpoint', action='store_true', default=False,
                        help='load checkpoints with full unpickling (can run code stored in the '
                        'file): only for files you trust; sets MMSEG_MASKFORMER_TRUST_CHECKPOINTS=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torch.distributed launchers pass --local-rank (or --local_rank).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if args.trust_checkpoint:
        os.environ[TRUST_ENV] = '1'
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper in AMP_TWINS.values():
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        else:
            assert optim_wrapper in AMP_TWINS, (
                f'`--amp` is only supported when the optimizer wrapper type is one of '
                f'{sorted(AMP_TWINS)} but got {optim_wrapper}.')
            cfg.optim_wrapper.type = AMP_TWINS[optim_wrapper]
            cfg.optim_wrapper.dtype = args.amp_dtype
            # bf16 has the range of fp32: dynamic loss scaling is for fp16 only.
            cfg.optim_wrapper.loss_scale = 'dynamic' if args.amp_dtype == 'float16' else None
    cfg.resume = args.resume

    check_datasets_not_empty(cfg, splits=('train', 'val'))
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
