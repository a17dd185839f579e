"""Inference speed and peak memory of MaskFormer R50: mmseg's own, ours in PyTorch, ours in ONNX.

Usage:
    python tools/benchmark_inference.py [--sizes 512x512 1024x2048] [--batch 1] [--repeats 3]
                                        [--device cpu|cuda] [--out benchmarks/INFERENCE.md]

Contestants (random weights, eval mode, one whole image per forward, float32):
  peer          mmseg 1.2.2's MaskFormer (``mmseg::maskformer/maskformer_r50-d32_8xb2-160k_ade20k-
                512x512.py``, mmdet 3.3's head), ``EncoderDecoder.encode_decode``
  ours          ``configs/maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py``,
                ``EncoderDecoder.encode_decode``
  ours-onnx     the same network exported by ``tools/export_onnx.py`` (static shape), run by
                onnxruntime (CPUExecutionProvider, or CUDAExecutionProvider on a GPU)

Both produce the (B, 150, H, W) semantic scores. Each row runs in a fresh subprocess: the time
is the median over repeats after one warm-up, images/s = batch / time; the peak memory is the
growth of the peak resident set over the resident set once model and inputs are built (CPU; the
warm-up included, so onnxruntime's arena counts), or ``torch.cuda.max_memory_allocated`` above
the model (CUDA; not measured for onnxruntime).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark_ops import _rss_bytes, fmt_ratio, machine_description, run_worker  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = 'maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py'
IMPLS = ('peer', 'ours', 'ours-onnx')


def build(impl, batch, height, width, device):
    """A no-argument callable running one forward pass."""
    from export_onnx import build_model, export

    if impl == 'peer':
        import mmseg  # its configs ship inside the package, in .mim/configs
        from mmengine.model import revert_sync_batchnorm
        from mmseg.apis import init_model
        config = os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'configs', CONFIG)
        model = revert_sync_batchnorm(init_model(config, device='cpu')).eval()
    else:
        model, _ = build_model(os.path.join(REPO, 'configs', CONFIG))
    inputs = torch.randn(batch, 3, height, width)
    if impl == 'ours-onnx':
        import onnxruntime
        path = os.path.join(tempfile.mkdtemp(), 'model.onnx')
        export(model, path, (height, width))
        providers = ['CPUExecutionProvider']
        if device == 'cuda':
            providers.insert(0, 'CUDAExecutionProvider')
        session = onnxruntime.InferenceSession(path, providers=providers)
        del model
        feed = {'inputs': inputs.numpy()}
        return lambda: session.run(None, feed)
    model.to(device)
    inputs = inputs.to(device)
    shape = (height, width)
    metas = [dict(img_shape=shape, pad_shape=shape, ori_shape=shape, batch_input_shape=shape)
             for _ in range(batch)]

    def step():
        with torch.no_grad():
            return model.encode_decode(inputs, metas)

    return step


def measure(spec):
    device = spec['device']
    step = build(spec['impl'], spec['batch'], spec['height'], spec['width'], device)
    times = []
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        import gc
        gc.collect()
        base = _rss_bytes('VmRSS')
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # resets VmHWM, the peak resident set
    step()  # warm-up
    for _ in range(spec['repeats']):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device == 'cuda':
        peak = None if spec['impl'] == 'ours-onnx' else torch.cuda.max_memory_allocated() - base
    else:
        peak = _rss_bytes('VmHWM') - base
    return dict(time_s=statistics.median(times), peak_bytes=peak)


HEADER = ('| case | size | impl | time | peak memory | images / s | time / peer | memory / peer |\n'
          '|---|---|---|---|---|---|---|---|')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--sizes', nargs='+', default=['512x512', '1024x2048'], help='HxW')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--impls', nargs='+', default=list(IMPLS), choices=IMPLS)
    parser.add_argument('--timeout', type=int, default=1800, help='seconds per measurement')
    parser.add_argument('--out', help='also write the table (markdown) to this file')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))), flush=True)
        return

    rows = []
    print(HEADER, flush=True)
    for size in args.sizes:
        height, width = (int(v) for v in size.lower().split('x'))
        results = {}
        for impl in args.impls:
            spec = dict(impl=impl, batch=args.batch, height=height, width=width,
                        device=args.device, repeats=args.repeats)
            results[impl] = run_worker(spec, args.timeout, __file__)
        ref = results.get('peer', {})
        for impl, r in results.items():
            label = f'{height}×{width}, B={args.batch}'
            if 'error' in r:
                row = f'| R50 inference | {label} | {impl} | {r["error"]} | | | | |'
            else:
                memory = '—' if r['peak_bytes'] is None else f'{r["peak_bytes"] / 2**20:.0f} MiB'
                row = (f'| R50 inference | {label} | {impl} | {r["time_s"] * 1e3:.1f} ms | '
                       f'{memory} | {args.batch / r["time_s"]:.2f} | '
                       f'{fmt_ratio(r["time_s"], ref.get("time_s"))} | '
                       f'{fmt_ratio(r["peak_bytes"], ref.get("peak_bytes"))} |')
            print(row, flush=True)
            rows.append(row)
    if args.out:
        legend = ('peer = mmseg 1.2.2 MaskFormer R50 (mmdet 3.3 head); ours = this project\'s R50 '
                  'MaskFormer in PyTorch; ours-onnx = the same exported with tools/export_onnx.py, '
                  'run by onnxruntime. Random weights, 150 classes, whole-image forward to '
                  'semantic '
                  'scores. Peak memory: growth of the peak resident set over model + inputs (CPU), '
                  'separate process per row.')
        with open(args.out, 'w') as f:
            f.write(f'# Benchmark: MaskFormer R50 inference ({args.device})\n\n'
                    f'Command: `python tools/benchmark_inference.py {" ".join(sys.argv[1:])}`  \n'
                    f'Machine: {machine_description(args.device)}  \n'
                    f'Date: {time.strftime("%Y-%m-%d")}\n\n{legend}\n\n' + HEADER + '\n' +
                    '\n'.join(rows) + '\n')


if __name__ == '__main__':
    main()
