"""Train a config for many iterations and check that resident memory does not grow.

Runs ``tools/train.py`` in a subprocess, samples the resident set size (RSS, from /proc) of the
training process and its dataloader workers, and compares the RSS after warm-up with the RSS at the
end. Prints a table, writes it to ``--out`` and exits with status 1 if memory grew by more than
``--max-growth``.

    python tools/long_run_check.py [--iters 500] [--warmup 100] [--out benchmarks/LONG_RUN.md]
"""
import argparse
import os
import platform
import re
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO, 'configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-128x128.py')
ITER_LINE = re.compile(r'Iter\(train\) \[\s*(\d+)/')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--data-root', default=os.path.join(REPO, 'data/shapes'),
                        help='Shapes data (made here if missing)')
    parser.add_argument('--work-dir', default=os.path.join(REPO, 'work_dirs/long_run_check'))
    parser.add_argument('--iters', type=int, default=500)
    parser.add_argument('--warmup', type=int, default=100,
                        help='iteration after which the reference RSS is taken')
    parser.add_argument('--max-growth', type=float, default=0.05)
    parser.add_argument('--out', default=os.path.join(REPO, 'benchmarks/LONG_RUN.md'))
    return parser.parse_args()


def tree_rss_bytes(pid: int) -> int:
    """RSS of ``pid`` and all its descendants (Linux /proc)."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    parent = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        try:
            with open(f'/proc/{current}/status') as f:
                total += next(int(line.split()[1]) * 1024 for line in f
                              if line.startswith('VmRSS:'))
        except (OSError, StopIteration):
            pass
    return total


def main() -> int:
    args = parse_args()
    if not os.path.isdir(os.path.join(args.data_root, 'img_dir')):
        sys.path.insert(0, REPO)
        from mmseg_maskformer.datasets.shapes import generate_shapes_dataset
        generate_shapes_dataset(args.data_root)
    # The config's 100-iteration learning-rate warm-up, shortened for short checks.
    warmup_iters = min(100, args.iters // 5)
    options = [f'{split}_dataloader.dataset.data_root={args.data_root}'
               for split in ('train', 'val', 'test')] + [
        f'train_cfg.max_iters={args.iters}', f'train_cfg.val_interval={args.iters + 1}',
        f'default_hooks.checkpoint.interval={args.iters}', 'default_hooks.logger.interval=10',
        f'param_scheduler.0.end={warmup_iters}', f'param_scheduler.1.begin={warmup_iters}',
        f'param_scheduler.1.end={args.iters}'
    ]
    command = [sys.executable, os.path.join(REPO, 'tools/train.py'), args.config, '--work-dir',
               args.work_dir, '--cfg-options'] + options
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    start = time.time()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    samples = []  # (seconds, iteration, rss)
    state = dict(iteration=0, stop=False)

    def sample():
        while not state['stop']:
            samples.append((time.time() - start, state['iteration'], tree_rss_bytes(process.pid)))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tail = []
    for line in process.stdout:
        tail = (tail + [line])[-40:]
        found = ITER_LINE.search(line)
        if found:
            state['iteration'] = int(found.group(1))
    process.wait()
    state['stop'] = True
    sampler.join()
    if process.returncode != 0:
        sys.stdout.write(''.join(tail))
        return process.returncode
    warm = [rss for _, it, rss in samples if args.warmup <= it < args.warmup + 10]
    end = [rss for _, it, rss in samples if it >= args.iters - 10]
    peak = max(rss for _, _, rss in samples)
    warm_mib, end_mib = warm[0] / 2**20, end[0] / 2**20
    growth = end_mib / warm_mib - 1
    ok = growth <= args.max_growth
    table = '\n'.join([
        '| iterations | RSS after warm-up (iter ' + f'{args.warmup}) | RSS at the end | growth | '
        'peak | training time | result |', '|---|---|---|---|---|---|---|',
        f'| {args.iters} | {warm_mib:.0f} MiB | {end_mib:.0f} MiB | {growth:+.1%} | '
        f'{peak / 2**20:.0f} MiB | {time.time() - start:.0f} s | '
        f'{"OK" if ok else "FAIL"} (limit {args.max_growth:+.0%}) |'])
    print(table)
    with open(args.out, 'w') as f:
        f.write('# Long-run memory check\n\n'
                f'`python tools/long_run_check.py --iters {args.iters} --warmup {args.warmup}`: '
                f'`{os.path.relpath(args.config, REPO)}` on the Shapes data, RSS of the training '
                f'process and its dataloader workers sampled every 0.5 s.\n\n'
                f'Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python '
                f'{platform.python_version()}.\n\n{table}\n')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
