"""Time and peak memory of MaskFormer's mask-loss path: the peer vs. our reference vs. fused ops.

Usage:
    python tools/benchmark_ops.py [--device cpu|cuda] [--quick] [--out benchmarks/RESULTS.md]

Contestants:
  peer       mmdet 3.3's MaskFormerHead loss path, as mmseg 1.2.2's MaskFormer runs it
             (``_seg_data_to_instance_data`` + ``loss_by_feat``); for single ops, the mmdet /
             mmcv functions that path calls
  reference  our pure-PyTorch criterion / ops (``loss_impl='reference'``)
  fused      our compiled ops, exact full-resolution losses (``loss_impl='fused'``)
  fused-pts  our compiled ops with point-sampled losses and matching (``num_points=12544``)

Each measurement runs in a fresh subprocess so that peak memory is its own: on CPU the growth of
the peak resident set over the resident set after the inputs were built (the peak is reset through
/proc/self/clear_refs), on CUDA ``torch.cuda.max_memory_allocated`` above the inputs. Times are
medians over repeats (CUDA events on a GPU). Ratios are to the peer (to the reference where the
peer cannot run, e.g. without OpenMMLab packages on the GPU machine). On a GPU, each fused op's
time is also divided by its DRAM-bandwidth floor: the bytes it must move (:func:`min_bytes`)
over the measured copy bandwidth.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

from mmseg_maskformer.utils.benchmarking import (fmt_ratio, machine_description, random_partition,
                                                reset_peak_rss, rss_bytes, run_worker)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASSES = 150
LAYERS = 6
QUERIES = 100
LOW = 128
HIGH = 512
POINTS = 12544
MEMORY_LIMIT_BYTES = 18 * 2**30  # keeps a too-large CPU case from taking the machine down


# --------------------------------------------------------------------------------------------
# inputs


def criterion_inputs(batch, segments, device):
    generator = torch.Generator().manual_seed(0)
    cls = torch.randn(LAYERS, batch, QUERIES, NUM_CLASSES + 1, generator=generator)
    masks = 4 * torch.randn(LAYERS, batch, QUERIES, LOW // 8, LOW // 8, generator=generator)
    masks = torch.nn.functional.interpolate(masks.flatten(0, 1), size=(LOW, LOW), mode='bilinear')
    masks = masks.view(LAYERS, batch, QUERIES, LOW, LOW)
    sem_seg = random_partition(batch, segments, HIGH, generator, device)
    return (cls.to(device).requires_grad_(), masks.to(device).requires_grad_(), sem_seg)


# --------------------------------------------------------------------------------------------
# contestants: each returns a closure running one forward + backward


def criterion_case(impl, batch, segments, device):
    cls, masks, sem_seg = criterion_inputs(batch, segments, device)
    if impl == 'peer':
        from mmengine.registry import init_default_scope
        from mmengine.structures import PixelData
        from mmseg.registry import MODELS
        from mmseg.structures import SegDataSample
        init_default_scope('mmseg')
        from mmengine.config import Config
        cfg = Config.fromfile(os.path.join(
            os.path.dirname(__import__('mmseg').__file__),
            '.mim/configs/maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py'))
        head = MODELS.build(cfg.model.decode_head).to(device)
        samples = []
        for seg in sem_seg:
            sample = SegDataSample(gt_sem_seg=PixelData(data=seg[None]))
            sample.set_metainfo(dict(img_shape=(HIGH, HIGH), pad_shape=(HIGH, HIGH)))
            samples.append(sample)

        def step():
            instances, metas = head._seg_data_to_instance_data(samples)
            losses = head.loss_by_feat(cls, masks, instances, metas)
            sum(v for k, v in losses.items() if 'loss' in k).backward()
        return step

    from mmseg_maskformer.core import HungarianMatcher, SetCriterion, semantic_to_segments
    loss_impl = 'reference' if impl == 'reference' else 'fused'
    num_points = POINTS if impl == 'fused-pts' else None
    matcher = HungarianMatcher(loss_impl=loss_impl, num_points=num_points)
    criterion = SetCriterion(NUM_CLASSES, matcher, loss_impl=loss_impl, num_points=num_points)

    def step():
        segments_ = [semantic_to_segments(seg, NUM_CLASSES) for seg in sem_seg]
        losses = criterion(cls, masks, [s[0] for s in segments_], [s[1] for s in segments_])
        sum(v for k, v in losses.items() if 'loss' in k).backward()
    return step


def op_inputs(num_masks, device):
    generator = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(num_masks, LOW, LOW, generator=generator)
    targets = torch.rand(num_masks, HIGH, HIGH, generator=generator) > 0.5
    return logits.to(device), targets.to(torch.uint8).to(device)


def loss_op_case(impl, num_masks, device):
    logits, targets = op_inputs(num_masks, device)
    logits.requires_grad_()
    if impl == 'peer':
        from mmdet.models.losses import DiceLoss, FocalLoss
        focal = FocalLoss(use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=20.0)
        dice = DiceLoss(use_sigmoid=True, activate=True, naive_dice=True, eps=1.0)

        def step():
            up = torch.nn.functional.interpolate(logits[:, None], size=(HIGH, HIGH),
                                                 mode='bilinear', align_corners=False)[:, 0]
            x = up.reshape(-1, 1)
            t = (1 - targets.long()).reshape(-1)  # mmdet's class-index convention
            loss = focal(x, t, avg_factor=num_masks * HIGH * HIGH) + dice(up, targets, avg_factor=num_masks)
            loss.backward()
        return step
    fn = _ops(impl).sigmoid_focal_dice_loss

    def step():
        f, d = fn(logits, targets)
        (20 * f.sum() + d.sum()).backward()
    return step


def cost_op_case(impl, num_masks, device):
    logits, _ = op_inputs(QUERIES, device)
    _, targets = op_inputs(num_masks, device)
    if impl == 'peer':
        from mmdet.models.task_modules.assigners import DiceCost, FocalLossCost
        from mmengine.structures import InstanceData
        focal = FocalLossCost(weight=20.0, binary_input=True)
        dice = DiceCost(weight=1.0, pred_act=True, eps=1.0)

        def step():
            with torch.no_grad():
                gt = torch.nn.functional.interpolate(targets[:, None].float(), size=(LOW, LOW),
                                                     mode='nearest')[:, 0].long()
                pred, gt_ = InstanceData(masks=logits), InstanceData(masks=gt)
                focal(pred, gt_) + dice(pred, gt_)
        return step
    fn = _ops(impl).pairwise_mask_costs

    def step():
        with torch.no_grad():
            fn(logits, targets)
    return step


def point_sample_case(impl, num_masks, channels, device):
    """One channel per mask with backward (the criterion's predictions), or many channels at
    shared points without (the matcher: 6 layers × 100 queries of an image at the image's
    points; it samples them a layer at a time, the same work)."""
    generator = torch.Generator().manual_seed(0)
    inputs = 4 * torch.randn(num_masks, channels, LOW, LOW, generator=generator)
    inputs = inputs.to(device).requires_grad_(channels == 1)
    points = torch.rand(num_masks, POINTS, 2, generator=torch.Generator().manual_seed(1)).to(device)
    if impl == 'peer':
        from mmcv.ops import point_sample as fn
    else:
        fn = _ops(impl).point_sample

    def step():
        if channels == 1:
            fn(inputs, points).sum().backward()
        else:
            with torch.no_grad():
                fn(inputs, points)
    return step


def point_sample_targets_case(impl, num_masks, device):
    """bool ground-truth masks at the points: mmdet converts them to float first; our compiled op
    reads them as they are."""
    _, targets = op_inputs(num_masks, device)
    targets = targets.bool()[:, None]
    points = torch.rand(num_masks, POINTS, 2, generator=torch.Generator().manual_seed(1)).to(device)
    if impl == 'peer':
        from mmcv.ops import point_sample as mmcv_point_sample

        def fn(masks, points):
            return mmcv_point_sample(masks.float(), points)
    else:
        fn = _ops(impl).point_sample

    def step():
        with torch.no_grad():
            fn(targets, points)
    return step


def uncertain_points_case(impl, num_masks, device):
    logits, _ = op_inputs(num_masks, device)
    if impl == 'peer':
        from mmdet.models.utils import get_uncertain_point_coords_with_randomness

        def step():
            get_uncertain_point_coords_with_randomness(logits[:, None], None, POINTS, 3.0, 0.75)
        return step
    fn = _ops(impl).sample_uncertain_points

    def step():
        fn(logits, POINTS)
    return step


def _ops(impl):
    from mmseg_maskformer import ops
    return ops.reference if impl == 'reference' else ops.fused


def min_bytes(case, args):
    """Bytes a kernel must move at least (each input read once, each output written once), for
    the DRAM-bandwidth floor on a GPU; None for the criterion, which is many kernels."""
    if case == 'criterion':
        return None
    n = args[0]
    if case == 'sigmoid_focal_dice_loss':  # fwd + bwd: logits and uint8 targets twice, grad once
        return 3 * n * LOW * LOW * 4 + 2 * n * HIGH * HIGH
    if case == 'pairwise_mask_costs':  # Q logits, the M targets' sampled pixels, two Q×M outputs
        return QUERIES * LOW * LOW * 4 + n * LOW * LOW + 2 * QUERIES * n * 4
    if case == 'point_sample':
        n, channels = args
        if channels > 1:  # fwd: each input pixel at most once, points, output
            return n * channels * LOW * LOW * 4 + n * POINTS * 8 + n * channels * POINTS * 4
        # fwd + bwd: input, points twice, output and its grad, grad_input
        return 2 * n * LOW * LOW * 4 + 2 * n * POINTS * 8 + 2 * n * POINTS * 4
    if case == 'point_sample_targets':  # each mask byte at most once, points, float output
        return n * HIGH * HIGH + n * POINTS * 8 + n * POINTS * 4
    # sample_uncertain_points: logits, candidates written and read, points written
    return n * LOW * LOW * 4 + 2 * n * 3 * POINTS * 8 + n * POINTS * 8


def copy_bandwidth(device):
    """Measured device copy bandwidth in bytes/s (read + write of a 1 GiB buffer)."""
    src = torch.empty(2**28, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        dst.copy_(src)
    end.record()
    torch.cuda.synchronize()
    return 10 * 2 * src.numel() * 4 / (start.elapsed_time(end) / 1e3)


CASES = {
    'criterion': (criterion_case, ('peer', 'reference', 'fused', 'fused-pts')),
    'sigmoid_focal_dice_loss': (loss_op_case, ('peer', 'reference', 'fused')),
    'pairwise_mask_costs': (cost_op_case, ('peer', 'reference', 'fused')),
    'point_sample': (point_sample_case, ('peer', 'reference', 'fused')),
    'point_sample_targets': (point_sample_targets_case, ('peer', 'reference', 'fused')),
    'sample_uncertain_points': (uncertain_points_case, ('peer', 'reference', 'fused')),
}


# --------------------------------------------------------------------------------------------
# measurement (worker side)


def measure(spec):
    device = torch.device(spec['device'])
    builder = CASES[spec['case']][0]
    args = spec['args']
    if device.type == 'cpu':
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    step = builder(spec['impl'], *args, device)
    step()  # warm-up (and first-touch of lazily built state)
    times = []
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        for _ in range(spec['repeats']):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        peak = torch.cuda.max_memory_allocated() - base
    else:
        import gc
        gc.collect()
        base = rss_bytes('VmRSS')
        reset_peak_rss()  # VmHWM, the peak resident set
        for _ in range(spec['repeats']):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        peak = rss_bytes('VmHWM') - base
    result = dict(time_s=statistics.median(times), peak_bytes=max(peak, 0))
    floor_bytes = min_bytes(spec['case'], args)
    if device.type == 'cuda' and spec['impl'] == 'fused' and floor_bytes is not None:
        result['floor_ratio'] = result['time_s'] / (floor_bytes / copy_bandwidth(device))
    return result


# --------------------------------------------------------------------------------------------
# driver


def plan(quick):
    batches = (2, ) if quick else (2, 8)
    segments = (20, ) if quick else (20, 100)
    for b in batches:
        for m in segments:
            yield 'criterion', (b, m), f'B={b}, M={m}'
    for n in ((40, ) if quick else (40, 160)):
        yield 'sigmoid_focal_dice_loss', (n, ), f'N={n}, {LOW}²→{HIGH}²'
    yield 'pairwise_mask_costs', (20, ), f'Q={QUERIES}, M=20, {LOW}²'
    yield 'point_sample', (40, 1), f'N=40, P={POINTS}'
    yield 'point_sample', (1, LAYERS * QUERIES), f'C={LAYERS * QUERIES}, P={POINTS}, no grad'
    yield 'point_sample_targets', (40, ), f'N=40 bool {HIGH}², P={POINTS}'
    yield 'sample_uncertain_points', (40, ), f'N=40, P={POINTS}'


LEGEND = (
    'peer = mmdet 3.3 MaskFormerHead loss path as mmseg 1.2.2 runs it (single ops: the mmdet / '
    'mmcv functions it calls); reference = our pure-PyTorch criterion / ops; fused = compiled ops, '
    'exact losses; fused-pts = compiled ops, 12544 point-sampled losses and matching. Criterion: 6 '
    f'decoder layers, Q={QUERIES}, {LOW}² mask logits, {HIGH}² ground truth, {NUM_CLASSES} '
    'classes, matching + losses, forward + backward. Peak memory: growth over the inputs '
    f'(CPU: resident set, separate process per row, capped at {MEMORY_LIMIT_BYTES // 2**30} GiB; '
    'CUDA: max_memory_allocated). Ratios to the peer, or to the reference where the peer could '
    'not run.')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--quick', action='store_true', help='smallest sizes only')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--timeout', type=int, default=900, help='seconds per measurement')
    parser.add_argument('--out', help='also write the table (markdown) to this file')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))), flush=True)
        return

    from mmseg_maskformer import ops
    if not ops.extension_available():
        sys.exit('the compiled extension is not built: run `pip install -e . --no-build-isolation`')
    rows = []
    header = ('| case | size | impl | time | peak memory | time / peer | memory / peer | time / DRAM floor |\n'
              '|---|---|---|---|---|---|---|---|')
    print(header, flush=True)
    for case, case_args, size in plan(args.quick):
        results = {}
        for impl in CASES[case][1]:
            spec = dict(case=case, impl=impl, args=case_args, device=args.device,
                        repeats=args.repeats)
            results[impl] = run_worker(__file__, spec, args.timeout)
        # Ratios to the peer; to our reference where the peer could not run (e.g. no mmdet).
        ref = results['peer'] if 'error' not in results['peer'] else results['reference']
        for impl, r in results.items():
            if 'error' in r:
                row = f'| {case} | {size} | {impl} | {r["error"]} | | | | |'
            else:
                floor = f'{r["floor_ratio"]:.1f}×' if 'floor_ratio' in r else '—'
                row = (f'| {case} | {size} | {impl} | {r["time_s"] * 1e3:.1f} ms | '
                       f'{r["peak_bytes"] / 2**20:.0f} MiB | '
                       f'{fmt_ratio(r["time_s"], ref.get("time_s"))} | '
                       f'{fmt_ratio(r["peak_bytes"], ref.get("peak_bytes"))} | {floor} |')
            print(row, flush=True)
            rows.append(row)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(f'# Benchmark: MaskFormer mask-loss path ({args.device})\n\n'
                    f'Command: `python tools/benchmark_ops.py {" ".join(sys.argv[1:])}`  \n'
                    f'Machine: {machine_description(args.device)}  \n'
                    f'Date: {time.strftime("%Y-%m-%d")}\n\n{LEGEND}\n\n' + header + '\n' +
                    '\n'.join(rows) + '\n')


if __name__ == '__main__':
    main()
