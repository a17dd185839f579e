"""Train a segmentor from an mmseg config (MMSegmentation's ``tools/train.py`` interface)."""
import argparse
import logging
import os

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint

from mmseg_maskformer.engine.preflight import check_datasets_not_empty, runner_config
from mmseg_maskformer.utils.checkpoint import TRUST_CHECKPOINT_HELP, trust_checkpoint
from mmseg_maskformer.utils.dist import destroy_process_group_on_exit, setup_cpu_distributed

# --amp replaces an optimizer wrapper by its mixed-precision twin.
AMP_TWINS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'mmseg_maskformer.NonFiniteGuardOptimWrapper': 'mmseg_maskformer.NonFiniteGuardAmpOptimWrapper',
}


def parse_args(argv=None):
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
                        help=TRUST_CHECKPOINT_HELP)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torch.distributed launchers pass --local-rank (or --local_rank).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_amp(cfg, dtype: str) -> None:
    """Replace the optimizer wrapper by its mixed-precision twin computing in ``dtype``."""
    optim_wrapper = cfg.optim_wrapper.type
    if optim_wrapper in AMP_TWINS.values():
        print_log('AMP training is already enabled in your config.', logger='current',
                  level=logging.WARNING)
        return
    if optim_wrapper not in AMP_TWINS:
        raise ValueError(f'--amp needs an optimizer wrapper of type {sorted(AMP_TWINS)}, the '
                         f'config has {optim_wrapper}')
    cfg.optim_wrapper.type = AMP_TWINS[optim_wrapper]
    cfg.optim_wrapper.dtype = dtype
    # bf16 has the exponent range of fp32, so its gradients need no scaling: a static scale of 1
    # (mmengine's AmpOptimWrapper takes a float as a fixed scale; None is a TypeError there).
    cfg.optim_wrapper.loss_scale = 'dynamic' if dtype == 'float16' else 1.0


def checkpoints_named(cfg) -> list:
    """The checkpoints this command names: ``load_from`` and, with ``--resume`` and no
    ``load_from``, the latest checkpoint of the work directory (what mmengine's Runner resumes)."""
    named = [cfg.load_from] if cfg.get('load_from') else []
    if cfg.get('resume') and not named:
        latest = find_latest_checkpoint(cfg.work_dir)
        named += [latest] if latest else []
    return named


def build_config(args) -> Config:
    cfg = runner_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    if args.amp:
        enable_amp(cfg, args.amp_dtype)
    cfg.resume = args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    if args.trust_checkpoint:
        for checkpoint in checkpoints_named(cfg):
            trust_checkpoint(checkpoint)

    check_datasets_not_empty(cfg, splits=('train', 'val'))
    setup_cpu_distributed(cfg, args.launcher)
    with destroy_process_group_on_exit():
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        runner.train()


if __name__ == '__main__':
    main()
