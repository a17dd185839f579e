"""Whole-image semantic inference of MaskFormer R50: mmseg's own, ours with the PyTorch reference
post-processing, ours with the fused inference ops.

Usage:
    python tools/benchmark_inference.py [--cases ade20k cityscapes ...] [--repeats 1]
                                        [--device cpu|cuda] [--out benchmarks/INFERENCE.md]

Contestants (random weights, eval mode, batch 1, float32, the image's size is the network input):
  peer            mmseg 1.2.2's MaskFormer (``mmseg::maskformer/maskformer_r50-d32_8xb2-160k_ade20k-
                  512x512.py``, mmdet 3.3's head) with ``num_classes`` set per case
  ours-reference  ``configs/maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py`` with the
                  head's ``test_cfg.impl='reference'``
  ours-fused      the same with ``impl='fused'`` (the compiled ``semantic_labels`` op)

Two measurements per contestant, each in a fresh process:
  whole            ``segmentor.predict(inputs, data_samples)``: network and post-processing to the
                   labels at the original size, as ``tools/test.py`` and ``inference_model`` run
  post-processing  the same from precomputed last-layer logits (B, Q, K+1) and (B, Q, H/4, W/4):
                   for the peer, its head's ``predict`` (with ``forward`` returning the logits)
                   and ``postprocess_result``; for ours, ``predict_from_logits``

Time: median over ``--repeats`` after one warm-up. Peak memory: growth of the peak resident set
over the resident set once model and inputs exist (CPU, warm-up included), or
``torch.cuda.max_memory_allocated`` above the memory allocated then (CUDA).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

from mmseg_maskformer.utils.benchmarking import (fmt_ratio, machine_description, reset_peak_rss, rss_bytes,
                                                run_worker)


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = 'maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py'
IMPLS = ('peer', 'ours-reference', 'ours-fused')
PARTS = ('whole', 'post-processing')
# name: (label, classes, height, width)
CASES = {
    'ade20k': ('ADE20K', 150, 512, 512),
    'cityscapes': ('Cityscapes', 19, 1024, 2048),
    'large-150': ('150 classes', 150, 1024, 2048),
    'ade20k-full': ('ADE20K-Full', 847, 512, 683),
    '12mp': ('12 MP photo', 150, 3000, 4000),
}


def build_segmentor(impl, num_classes):
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmseg.apis import init_model

    if impl == 'peer':
        import mmseg  # its configs ship inside the package, in .mim/configs
        config = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'configs', CONFIG)
        options = {'model.decode_head.num_classes': num_classes}
    else:
        config = os.path.join(REPO, 'configs', CONFIG)
        options = {'model.decode_head.num_classes': num_classes,
                   'model.decode_head.test_cfg.impl': impl.split('-')[1]}
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    cfg.model.pop('pretrained', None)
    cfg.model.backbone.init_cfg = None
    return revert_sync_batchnorm(init_model(cfg, device='cpu')).eval()


def build(impl, part, num_classes, height, width, device):
    """A no-argument callable running one measured call."""
    from mmseg.structures import SegDataSample

    model = build_segmentor(impl, num_classes).to(device)
    shape = (height, width)
    meta = dict(img_shape=shape, pad_shape=shape, ori_shape=shape, batch_input_shape=shape,
                padding_size=[0, 0, 0, 0])

    def samples():
        return [SegDataSample(metainfo=dict(meta))]

    if part == 'whole':
        inputs = torch.randn(1, 3, height, width, device=device)

        def step():
            with torch.no_grad():
                return model.predict(inputs, samples())

        return step
    generator = torch.Generator().manual_seed(0)
    queries = 100
    cls_logits = torch.randn(1, queries, num_classes + 1, generator=generator).to(device)
    mask_logits = 4 * torch.randn(1, queries, -(-height // 4), -(-width // 4),
                                  generator=generator).to(device)
    if impl == 'peer':
        head = model.decode_head
        head.forward = lambda x, batch_data_samples: ([cls_logits], [mask_logits])

        def step():
            with torch.no_grad():
                batch = samples()
                scores = head.predict(None, [s.metainfo for s in batch], model.test_cfg)
                return model.postprocess_result(scores, batch)

        return step

    def step():
        with torch.no_grad():
            return model.predict_from_logits(cls_logits, mask_logits, samples())

    return step


def measure(spec):
    device = spec['device']
    step = build(spec['impl'], spec['part'], spec['classes'], spec['height'], spec['width'],
                 device)
    times = []
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        import gc
        gc.collect()
        base = rss_bytes('VmRSS')
        reset_peak_rss()  # VmHWM, the peak resident set
    labels = step()[0].pred_sem_seg.data  # warm-up
    for _ in range(spec['repeats']):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device == 'cuda':
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = rss_bytes('VmHWM') - base
    return dict(time_s=statistics.median(times), peak_bytes=peak,
                label_shape=list(labels.shape))


HEADER = ('| case | size | impl | time | peak memory | time / peer | memory / peer '
          '| memory / reference |\n|---|---|---|---|---|---|---|---|')


def fmt_memory(value):
    return f'{value / 2**20:.0f} MiB' if value < 10 * 2**30 else f'{value / 2**30:.1f} GiB'


def table_rows(part, case, results):
    label, classes, height, width = CASES[case]
    size = f'{label} {height}×{width}, K={classes}'
    peer, ref = results.get('peer', {}), results.get('ours-reference', {})
    rows = []
    for impl, r in results.items():
        if 'error' in r:
            rows.append(f'| {part} | {size} | {impl} | {r["error"]} | | | | |')
            continue
        rows.append(f'| {part} | {size} | {impl} | {r["time_s"] * 1e3:.0f} ms | '
                    f'{fmt_memory(r["peak_bytes"])} | '
                    f'{fmt_ratio(r["time_s"], peer.get("time_s"))} | '
                    f'{fmt_ratio(r["peak_bytes"], peer.get("peak_bytes"))} | '
                    f'{fmt_ratio(r["peak_bytes"], ref.get("peak_bytes"))} |')
    return rows


LEGEND = """\
peer = mmseg 1.2.2's MaskFormer R50 (mmdet 3.3 head); ours-reference = this project's R50
MaskFormer with the PyTorch post-processing (`test_cfg.impl='reference'`); ours-fused = the same
with the compiled `semantic_labels` op (`impl='fused'`, the default when the extension is built).
Random weights, batch 1, the image size is the network input and the original size. **whole** =
`segmentor.predict(inputs, data_samples)` to the labels at the original size; **post-processing** =
the same from precomputed last-layer logits (Q = 100 mask logits at 1/4 resolution). Peak memory:
growth of the peak resident set over model + inputs (CPU) or of `torch.cuda.max_memory_allocated`
(CUDA), one process per row. Each row's time is the median of the repeats after one warm-up."""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cases', nargs='+', default=list(CASES), choices=list(CASES))
    parser.add_argument('--impls', nargs='+', default=list(IMPLS), choices=IMPLS)
    parser.add_argument('--parts', nargs='+', default=list(PARTS), choices=PARTS)
    parser.add_argument('--repeats', type=int, default=1)
    parser.add_argument('--timeout', type=int, default=1800, help='seconds per measurement')
    parser.add_argument('--out', help='also write the tables (markdown) to this file')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))), flush=True)
        return

    tables = {part: [] for part in args.parts}
    print(HEADER, flush=True)
    for case in args.cases:
        _, classes, height, width = CASES[case]
        for part in args.parts:
            results = {}
            for impl in args.impls:
                spec = dict(impl=impl, part=part, classes=classes, height=height, width=width,
                            device=args.device, repeats=args.repeats)
                results[impl] = run_worker(__file__, spec, args.timeout)
            rows = table_rows(part, case, results)
            print('\n'.join(rows), flush=True)
            tables[part].extend(rows)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(f'# Benchmark: MaskFormer R50 whole-image inference ({args.device})\n\n'
                    f'Command: `python tools/benchmark_inference.py {" ".join(sys.argv[1:])}`  \n'
                    f'Machine: {machine_description(args.device)}  \n'
                    f'Date: {time.strftime("%Y-%m-%d")}\n\n{LEGEND}\n')
            for part, rows in tables.items():
                f.write(f'\n## {part}\n\n{HEADER}\n' + '\n'.join(rows) + '\n')


if __name__ == '__main__':
    main()
