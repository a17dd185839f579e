"""PNG charts: training curves, per-class IoU, benchmark tables (matplotlib, no display needed).

Usage:
  python tools/plot.py curves WORK_DIR --out curves.png
      losses (total and last-layer terms) and learning rate against the iteration, from the
      ``vis_data/scalars.json`` mmengine's LocalVisBackend writes under WORK_DIR.
  python tools/plot.py iou TEST_LOG --out iou.png
      per-class IoU bars from the "per class results" table mmseg's IoUMetric writes to the log
      of ``tools/test.py`` (a .log file, or a directory searched for the newest one).
  python tools/plot.py benchmark RESULTS.md [--out-dir DIR]
      one PNG per case of the markdown tables (columns ``case | size | impl | time | peak memory
      | ...``, or the training-step tables' ``B | segments | model | time | peak memory | ...``):
      time and peak memory per size, one bar per implementation.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import textwrap
from collections import OrderedDict
from typing import Dict, List

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

LOSS_KEYS = ('loss', 'loss_cls', 'loss_mask', 'loss_dice')


def newest(pattern: str) -> str:
    found = glob.glob(pattern, recursive=True)
    if not found:
        raise FileNotFoundError(f'nothing matches {pattern}')
    return max(found, key=osp.getmtime)


def read_scalars(work_dir: str) -> List[dict]:
    """Training records (those with ``lr``) of the newest ``vis_data/scalars.json``."""
    # WORK_DIR/<timestamp>/vis_data: the training runs, not the test runs of WORK_DIR/test/.
    path = work_dir if work_dir.endswith('.json') else newest(
        osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if 'lr' in r and 'iter' in r]


def plot_curves(work_dir: str, out: str) -> None:
    records = read_scalars(work_dir)
    if not records:
        raise ValueError(f'no training records (with lr) in the scalars of {work_dir}')
    iters = [r['iter'] for r in records]
    fig, (losses, lr) = plt.subplots(1, 2, figsize=(11, 4))
    for name in LOSS_KEYS:
        # mmseg logs the decode head's terms as decode.<name>.
        key = next((k for k in (name, f'decode.{name}') if k in records[0]), None)
        if key is not None:
            losses.plot(iters, [r[key] for r in records], label=name)
    losses.set_yscale('log')
    losses.set_xlabel('iteration')
    losses.set_title('training losses (last decoder layer terms, weighted; loss = all layers)')
    losses.legend()
    lr.plot(iters, [r['lr'] for r in records], color='black', label='lr')
    lr.set_xlabel('iteration')
    lr.set_title('learning rate')
    lr.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def read_class_iou(log: str) -> Dict[str, float]:
    """Class -> IoU from the last "per class results" table in a test log."""
    path = log if osp.isfile(log) else newest(osp.join(log, '**', '*.log'))
    with open(path) as f:
        text = f.read()
    start = text.rfind('per class results')
    if start < 0:
        raise ValueError(f'{path} has no "per class results" table (IoUMetric)')
    ious = OrderedDict()
    for line in text[start:].splitlines()[1:]:
        if line.startswith('+'):
            continue
        if not line.startswith('|'):
            if ious:
                break
            continue
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if cells[0] != 'Class':
            ious[cells[0]] = float(cells[1])
    if not ious:
        raise ValueError(f'could not parse the per-class table of {path}')
    return ious


def plot_iou(log: str, out: str) -> None:
    ious = read_class_iou(log)
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(ious) + 2), 4))
    bars = ax.bar(list(ious), list(ious.values()), color='tab:blue')
    ax.bar_label(bars, fmt='%.1f')
    ax.set_ylim(0, 105)
    ax.set_ylabel('IoU (%)')
    ax.set_title(f'per-class IoU (mIoU {sum(ious.values()) / len(ious):.2f})')
    plt.setp(ax.get_xticklabels(), rotation=30, ha='right')
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


# A value in a table cell, in the charts' unit (ms, MiB): the unit's factor.
UNITS = {'ms': {'ms': 1.0, 's': 1e3}, 'MiB': {'MiB': 1.0, 'GiB': 1024.0}}


def parse_value(cell: str, unit: str):
    """``'568.9 ms'`` -> 568.9 with unit 'ms'; ``'9.6 s'`` -> 9600 ms, ``'2.5 GiB'`` -> 2560 MiB;
    None for text such as 'out of memory'."""
    match = re.match(r'([0-9.]+)\s*([A-Za-z]+)', cell.strip())
    factor = UNITS.get(unit, {unit: 1.0}).get(match.group(2)) if match else None
    return float(match.group(1)) * factor if factor is not None else None


def read_benchmark_rows(markdown: str) -> List[dict]:
    """Rows of every table whose header starts with ``case | size | impl``, and of the training
    step tables (``B | segments | model``, case 'training step', size 'B=…, M=…'; inside a
    ``<!-- name -->`` … ``<!-- /name -->`` section, as tools/benchmark_train_step.py writes one per
    model, case 'training step (name)')."""
    rows, header, section = [], None, None
    with open(markdown) as f:
        for line in f:
            marker = re.fullmatch(r'<!-- (/?)([\w-]+) -->', line.strip())
            if marker:
                section = None if marker.group(1) else marker.group(2)
            if not line.startswith('|'):
                header = None
                continue
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if cells[:3] in (['case', 'size', 'impl'], ['B', 'segments', 'model']):
                header = cells
            elif header and not set(line.strip()) <= set('|-: '):
                row = dict(zip(header, cells))
                if 'model' in row:
                    case = f'training step ({section})' if section else 'training step'
                    row.update(case=case, size=f'B={row["B"]}, M={row["segments"]}',
                               impl=row['model'])
                if 'time' in row:  # the per-phase tables have no time column
                    rows.append(row)
    return rows


def plot_benchmark(markdown: str, out_dir: str) -> List[str]:
    rows = read_benchmark_rows(markdown)
    if not rows:
        raise ValueError(f'{markdown} has no table with columns case | size | impl | ...')
    cases = OrderedDict()
    for row in rows:
        cases.setdefault(row['case'], []).append(row)
    written = []
    for case, case_rows in cases.items():
        sizes = list(OrderedDict.fromkeys(r['size'] for r in case_rows))
        impls = list(OrderedDict.fromkeys(r['impl'] for r in case_rows))
        fig, axes = plt.subplots(1, 2, figsize=(max(8, 2.2 * len(sizes) + 4), 4))
        for ax, column, unit, label in ((axes[0], 'time', 'ms', 'time (ms)'),
                                        (axes[1], 'peak memory', 'MiB', 'peak memory (MiB)')):
            width = 0.8 / len(impls)
            lowest = None
            for k, impl in enumerate(impls):
                cells = []
                for size in sizes:
                    match = [r for r in case_rows if r['size'] == size and r['impl'] == impl]
                    cells.append(match[0].get(column, '') if match else '')
                values = [parse_value(cell, unit) for cell in cells]
                xs = [i + (k - (len(impls) - 1) / 2) * width for i in range(len(sizes))]
                shown = [(x, v) for x, v in zip(xs, values) if v is not None]
                if shown:
                    ax.bar([x for x, _ in shown], [v for _, v in shown], width, label=impl)
                    positive = [v for _, v in shown if v > 0] + ([lowest] if lowest else [])
                    lowest = min(positive) if positive else lowest
                for x, value, cell in zip(xs, values, cells):
                    if value == 0 or (value is None and cell):  # "0 MiB", "out of memory": as text
                        ax.text(x, 0.02, cell[:24], transform=ax.get_xaxis_transform(), ha='center',
                                va='bottom', fontsize=7, rotation=90)
            ax.set_xticks(range(len(sizes)))
            ax.set_xticklabels([textwrap.fill(size, 16) for size in sizes], fontsize=8)
            ax.set_ylabel(label)
            ax.set_yscale('log')
            if lowest:  # bars start a decade below the smallest value, so their heights compare
                ax.set_ylim(bottom=lowest / 10)
            ax.legend(fontsize=8)
        fig.suptitle(f'{case} ({osp.basename(markdown)}; log scale, lower is better)')
        fig.tight_layout()
        slug = re.sub(r'[^A-Za-z0-9]+', '_', case).strip('_')
        path = osp.join(out_dir, f'{osp.splitext(osp.basename(markdown))[0]}_{slug}.png')
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description='PNG charts of training, test and benchmarks')
    sub = parser.add_subparsers(dest='command', required=True)
    curves = sub.add_parser('curves', help='losses and learning rate of a training run')
    curves.add_argument('work_dir')
    curves.add_argument('--out', required=True)
    iou = sub.add_parser('iou', help='per-class IoU of a tools/test.py run')
    iou.add_argument('log')
    iou.add_argument('--out', required=True)
    bench = sub.add_parser('benchmark', help='time and memory charts of a benchmark table')
    bench.add_argument('markdown')
    bench.add_argument('--out-dir', help='default: next to the markdown file')
    args = parser.parse_args(argv)
    if args.command == 'curves':
        plot_curves(args.work_dir, args.out)
        print(f'wrote {args.out}')
    elif args.command == 'iou':
        plot_iou(args.log, args.out)
        print(f'wrote {args.out}')
    else:
        out_dir = args.out_dir or osp.dirname(osp.abspath(args.markdown))
        os.makedirs(out_dir, exist_ok=True)
        for path in plot_benchmark(args.markdown, out_dir):
            print(f'wrote {path}')


if __name__ == '__main__':
    main()
