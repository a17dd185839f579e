"""Time and peak memory of one whole MaskFormer or Mask2Former training step: mmseg's vs. ours.

Usage:
    python tools/benchmark_train_step.py [--model maskformer|mask2former] [--device cpu|cuda]
                                         [--quick] [--out benchmarks/TRAIN_STEP.md]

The paper's ADE20K R50 model (512² crops, 150 classes, 100 queries), random weights, random
images and Voronoi label maps with exactly the requested number of segments per image. One step =
forward, matching, losses, backward and the recipe's optimiser step (AdamW, backbone lr ×0.1,
gradient clipping at L2 norm 0.01). ``--model maskformer`` (the default): MaskFormer, 6 decoder
layers with deep supervision, exact full-resolution mask losses. ``--model mask2former``:
Mask2Former, 9 masked-attention decoder layers with deep supervision on their predictions and the
one before the first layer (10 prediction sets), matching and losses on 12544 points per mask.

MaskFormer rows:

  peer       mmseg 1.2.2's own MaskFormer (``configs/maskformer/maskformer_r50-d32_8xb2-160k_
             ade20k-512x512.py`` of mmseg, mmdet 3.3's head, assigner and losses)
  fused      ours (the same-named config of this repository), ``loss_impl='fused'``
  reference  ours, ``loss_impl='reference'``
  fused-pts  ours, ``loss_impl='fused'``, ``num_points=12544``
  floor      our network's forward and backward of a loss that touches every output but does no
             matching (each output times 0, summed), and the same optimiser step

Mask2Former rows:

  peer       mmseg 1.2.2's own Mask2Former (``configs/mask2former/mask2former_r50_8xb2-160k_
             ade20k-512x512.py`` of mmseg, mmdet 3.3's head, assigner and losses; 12544 points)
  fused      ours (the same-named config of this repository), ``loss_impl='fused'`` (12544
             points)
  reference  ours, ``loss_impl='reference'`` (12544 points)
  floor      our network's forward and backward of a loss that touches every output of all 10
             prediction sets but does no matching (each output times 0, summed), and the same
             optimiser step

Each row runs in a fresh subprocess so that its memory is its own. Peak memory is the most the
tensors held at once (weights, gradients and AdamW state included): on CUDA
``torch.cuda.max_memory_allocated``, on CPU the tensors alive when a step starts plus the CPU
allocator's running total over one more step under ``torch.profiler`` (``profile_memory``). A
second table gives the process's own peak: on CPU the peak resident set during the timed steps, on
CUDA ``torch.cuda.max_memory_reserved`` (the caching allocator's footprint). On CPU the two differ
by more than the interpreter and libraries: glibc's malloc raises its mmap threshold as large
blocks are freed (up to 32 MiB), freed blocks below it stay in the heap, and how much of that
heap stays resident depends on the order of allocations, not only on their sizes. Time is the
median over ``--repeats`` steps after one warm-up step. A third table splits the steps into
phases: forward (backbone and head), matching (our matcher / mmdet's assigner; for mmdet's
Mask2Former its ``_get_targets_single``: the uniform points of the matching costs, the assigner
and the targets, as our matcher samples its points too), losses (the rest of the loss
computation), backward, optimiser.

The floor's loss gives every output a dense zero gradient, as a real loss gives a dense one. (A
plain sum times 0 gives stride-0 gradients, with which Mask2Former's backward ran 0.3-0.6 s
slower at B = 2 / 60 on a 2-core CPU — 5.74-6.00 s against 5.42-5.48 s, three alternating
runs — flattering every ratio to the floor; MaskFormer's backward took the same time either way.
Results made before 2026-12-06 used the plain sum.)

With ``--rounds R`` every row of a size runs R times, the rows taking turns (fused, floor, fused,
floor, ...), so that a slow spell of a shared machine falls on all of them: times, memory and
phases are then medians over the rounds, and a ratio is the median of the R per-round ratios,
followed by their range.

With ``--out FILE`` the tables of a model go to their own section of FILE, between
``<!-- maskformer -->`` and ``<!-- /maskformer -->`` (or ``mask2former``), each with its command,
machine and date: a run replaces its model's section and keeps the other's. A file without
markers is one MaskFormer section (what this tool wrote before it had ``--model``).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import textwrap
import time

import torch

from mmseg_maskformer.utils.benchmarking import (machine_description, random_partition, reset_peak_rss,
                                                rss_bytes, run_worker)

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)

MODELS = ('maskformer', 'mask2former')
# The same path in mmseg's package (its .mim) and in this repository.
CONFIGS = dict(maskformer='configs/maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py',
               mask2former='configs/mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py')
TITLES = dict(maskformer='MaskFormer', mask2former='Mask2Former')
POINTS = 12544
IMPLS = ('peer', 'fused', 'reference', 'fused-pts', 'floor')
MODEL_IMPLS = dict(maskformer=IMPLS,  # Mask2Former always samples points: no fused-pts row
                   mask2former=('peer', 'fused', 'reference', 'floor'))
PHASES = ('forward', 'matching', 'losses', 'backward', 'optimiser')
MEMORY_LIMIT_BYTES = 16 * 2**30  # keeps a too-large CPU case from taking the machine down


# --------------------------------------------------------------------------------------------
# worker side


def build_model(impl, device, model_name='maskformer'):
    """The model of the peer's or our config with random weights, and its optimiser wrapper."""
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    if impl == 'peer':
        cfg = Config.fromfile(os.path.join(os.path.dirname(__import__('mmseg').__file__), '.mim',
                                           CONFIGS[model_name]))
    else:
        import mmseg_maskformer.models  # noqa: F401  (what the config's custom_imports does)
        cfg = Config.fromfile(os.path.join(REPO, CONFIGS[model_name]))
        if impl != 'floor':  # the floor computes no loss: the config's defaults
            cfg.model.decode_head.loss_impl = 'reference' if impl == 'reference' else 'fused'
            if model_name == 'maskformer':  # Mask2Former's config keeps its 12544 points
                cfg.model.decode_head.num_points = POINTS if impl == 'fused-pts' else None
    cfg.model.backbone.init_cfg = None  # random weights, no download
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).to(device).train()
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


def make_batch(batch, segments, size, device):
    """Normalised random images and samples whose label maps have exactly ``segments`` classes."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=generator).to(device)
    samples = []
    for labels in random_partition(batch, segments, size, generator, device):
        found = labels.unique().numel()
        if found != segments:
            raise RuntimeError(f'label map has {found} segments instead of {segments}')
        sample = SegDataSample(gt_sem_seg=PixelData(data=labels[None]))
        sample.set_metainfo(dict(img_shape=(size, size), pad_shape=(size, size),
                                 ori_shape=(size, size), batch_input_shape=(size, size)))
        samples.append(sample)
    return images, samples


class PhaseTimer:
    """Wall-clock marks at phase ends (device-synchronised), plus time spent in matching."""

    def __init__(self, device):
        self.sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
        self.marks, self.matching = {}, 0.0

    def start(self):
        self.sync()
        self.marks, self.matching = {'start': time.perf_counter()}, 0.0

    def mark(self, name):
        self.sync()
        self.marks[name] = time.perf_counter()

    def mark_before(self, obj, method, name):
        inner = getattr(obj, method)

        def marked(*args, **kwargs):
            self.mark(name)
            return inner(*args, **kwargs)
        setattr(obj, method, marked)

    def wrap_matching(self, obj, method):
        inner = getattr(obj, method)

        def timed(*args, **kwargs):
            self.sync()
            start = time.perf_counter()
            result = inner(*args, **kwargs)
            self.sync()
            self.matching += time.perf_counter() - start
            return result
        setattr(obj, method, timed)

    def phases(self):
        m = self.marks
        return dict(forward=m['forward'] - m['start'], matching=self.matching,
                    losses=m['losses'] - m['forward'] - self.matching,
                    backward=m['backward'] - m['losses'], optimiser=m['optimiser'] - m['backward'])


def make_step(impl, model, optim_wrapper, images, samples, timer, model_name='maskformer'):
    head = model.decode_head
    if impl in ('peer', 'floor'):
        head.register_forward_hook(lambda *_: timer.mark('forward'))
    else:  # our loss runs the head layer by layer, then builds the targets
        timer.mark_before(head, 'segments_from_samples', 'forward')
    if impl == 'peer' and model_name == 'mask2former':
        # mmdet's Mask2Former samples the points of the matching costs (predictions and targets)
        # before calling the assigner, as our matcher does inside match_layers.
        timer.wrap_matching(head, '_get_targets_single')
    elif impl == 'peer':
        timer.wrap_matching(head.assigner, 'assign')
    elif impl != 'floor':
        timer.wrap_matching(head.matcher, 'match_layers')

    def step():
        timer.start()
        if impl == 'floor':
            # MaskFormer: two (L, B, Q, ...) tensors; Mask2Former: two lists of 10 predictions.
            outputs = head(model.extract_feat(images), samples)
            loss = sum((t * 0).sum() for part in outputs
                       for t in (part if isinstance(part, (list, tuple)) else [part]))
        else:
            loss, _ = model.parse_losses(model.loss(images, samples))
        timer.mark('losses')
        loss.backward()
        timer.mark('backward')
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        timer.mark('optimiser')
        return timer.phases()
    return step


def live_tensor_bytes(model, optim_wrapper, images, samples):
    """Bytes of the distinct storages of the weights, buffers, gradients, optimiser state and
    the batch: what the tensors hold between steps."""
    tensors = list(model.parameters()) + list(model.buffers()) + [images]
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    tensors += [v for state in optim_wrapper.optimizer.state.values() for v in state.values()
                if isinstance(v, torch.Tensor)]
    tensors += [s.gt_sem_seg.data for s in samples]
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())


def peak_tensor_bytes(step, live_bytes):
    """The most the tensors held at once during one ``step()``: ``live_bytes`` (what was alive
    when it started) plus the peak of the CPU allocator's running total of what the step
    allocated, read from ``torch.profiler``'s memory events. The CPU counterpart of CUDA's
    ``max_memory_allocated``: unlike the resident set, it does not depend on which freed blocks
    the C library returns to the system."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    held, pending = 0, list(prof.profiler.kineto_results.experimental_event_tree())
    while pending:
        event = pending.pop()
        pending.extend(event.children)
        if event.tag == _EventType.Allocation and event.extra_fields.device.type == 'cpu':
            held = max(held, event.extra_fields.total_allocated)
    return live_bytes + held


def measure(spec):
    device = torch.device(spec['device'])
    if device.type == 'cpu':
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    torch.manual_seed(0)
    model_name = spec.get('model', 'maskformer')
    model, optim_wrapper = build_model(spec['impl'], device, model_name)
    images, samples = make_batch(spec['batch'], spec['segments'], spec['size'], device)
    step = make_step(spec['impl'], model, optim_wrapper, images, samples, PhaseTimer(device),
                     model_name)
    step()  # warm-up: allocator, AdamW state, lazily built buffers
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    else:
        reset_peak_rss()  # VmHWM, the peak resident set
    runs = [step() for _ in range(spec['repeats'])]
    if device.type == 'cuda':
        peak, process = torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()
    else:
        process = rss_bytes('VmHWM')  # before the profiled step, which holds its events too
        peak = peak_tensor_bytes(step, live_tensor_bytes(model, optim_wrapper, images, samples))
    totals = [sum(run.values()) for run in runs]
    return dict(time_s=statistics.median(totals), peak_bytes=peak, process_bytes=process,
                phases={p: statistics.median(run[p] for run in runs) for p in PHASES})


# --------------------------------------------------------------------------------------------
# driver


def combine_rounds(runs):
    """One result from the worker results of the rounds of a row: medians over the rounds that
    succeeded (the first error if none did); ``rounds`` keeps every round, None where it failed,
    for the per-round ratios."""
    ok = [r for r in runs if 'error' not in r]
    if not ok:
        return runs[0]
    return dict(time_s=statistics.median(r['time_s'] for r in ok),
                peak_bytes=statistics.median(r['peak_bytes'] for r in ok),
                process_bytes=statistics.median(r['process_bytes'] for r in ok),
                phases={p: statistics.median(r['phases'][p] for r in ok) for p in PHASES},
                rounds=[None if 'error' in r else r for r in runs])


def ratio(result, ref, key):
    """result / ref for key; over several rounds, the median of the rounds' own ratios and their
    range."""
    if 'error' in result or ref is None or 'error' in ref:
        return '—'
    ratios = [r[key] / f[key] for r, f in zip(result['rounds'], ref['rounds'])
              if r is not None and f is not None]
    if len(ratios) > 1:
        return f'{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})'
    return f'{result[key] / ref[key]:.2f}×'


def legend_markdown(model_name='maskformer'):
    """The module docstring's description of a model's rows and of the measures, for the results
    file."""
    rows = __doc__.split(f'\n{TITLES[model_name]} rows:\n\n', 1)[1].split('\n\n', 1)[0]
    rest = __doc__[__doc__.index('Each row runs'):__doc__.index('With ``--out FILE``')]
    return f'Rows:\n\n```text\n{textwrap.dedent(rows)}\n```\n\n{rest.strip()}'


def section_markers(model_name):
    return f'<!-- {model_name} -->', f'<!-- /{model_name} -->'


def write_section(path, model_name, text):
    """Writes ``text`` as ``model_name``'s section of ``path``: in place of that section where the
    file has it, else before the first section of a later model (in the order of MODELS) or at the
    end. The rest of the file stays as it is; a file without any marker is taken as one MaskFormer
    section (the tool wrote only those before it had ``--model``)."""
    old = open(path).read().strip() if os.path.exists(path) else ''
    if old and not any(section_markers(m)[0] in old for m in MODELS):
        old = '\n'.join((section_markers('maskformer')[0], old, section_markers('maskformer')[1]))
    begin, end = section_markers(model_name)
    block = f'{begin}\n{text.strip()}\n{end}'
    if begin in old and end in old[old.index(begin):]:
        start = old.index(begin)
        new = old[:start] + block + old[old.index(end, start) + len(end):]
    else:
        later = [old.index(section_markers(m)[0]) for m in MODELS[MODELS.index(model_name) + 1:]
                 if section_markers(m)[0] in old]
        at = min(later) if later else len(old)
        new = '\n\n'.join(part for part in (old[:at].rstrip(), block, old[at:].lstrip()) if part)
    with open(path, 'w') as f:
        f.write(new.rstrip() + '\n')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='maskformer', choices=MODELS,
                        help="the peer's and our model (default: maskformer)")
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--quick', action='store_true', help='B=1, 20 segments, 2 repeats')
    parser.add_argument('--batches', type=int, nargs='+', default=[2, 4])
    parser.add_argument('--segments', type=int, nargs='+', default=[20, 60])
    parser.add_argument('--size', type=int, default=512, help='square crop size')
    parser.add_argument('--impls', nargs='+', choices=IMPLS,
                        help='rows (default: all of the model: ' + '; '.join(
                            f'{m}: {" ".join(MODEL_IMPLS[m])}' for m in MODELS) + ')')
    parser.add_argument('--repeats', type=int, default=3, help='timed steps after the warm-up')
    parser.add_argument('--rounds', type=int, default=1,
                        help='runs of every row, taking turns with the other rows of its size')
    parser.add_argument('--timeout', type=int, default=1800, help='seconds per row')
    parser.add_argument('--out', help="also write the tables (markdown) to the model's section "
                        'of this file')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))), flush=True)
        return
    if args.quick:
        args.batches, args.segments, args.repeats = [1], [20], min(args.repeats, 2)
    if args.impls is None:
        args.impls = list(MODEL_IMPLS[args.model])
    unknown = [impl for impl in args.impls if impl not in MODEL_IMPLS[args.model]]
    if unknown:
        parser.error(f'--model {args.model} has no row {" ".join(unknown)} (its rows: '
                     f'{" ".join(MODEL_IMPLS[args.model])})')

    header = ('| B | segments | model | time | peak memory | time / peer | memory / peer | '
              'time / floor | memory / floor |\n|---|---|---|---|---|---|---|---|---|')
    process_name = 'peak resident set' if args.device == 'cpu' else 'max_memory_reserved'
    process_header = (f'| B | segments | model | {process_name} | / peer | / floor |\n'
                      '|---|---|---|---|---|---|')
    phase_header = ('| B | segments | model | ' + ' | '.join(PHASES) + ' |\n|---|---|---|' +
                    '---|' * len(PHASES))
    print(header, flush=True)
    rows, process_rows, phase_rows = [], [], []
    for batch in args.batches:
        for segments in args.segments:
            runs = {impl: [] for impl in args.impls}
            for _ in range(args.rounds):
                for impl in args.impls:
                    spec = dict(impl=impl, model=args.model, batch=batch, segments=segments,
                                size=args.size, device=args.device, repeats=args.repeats)
                    runs[impl].append(run_worker(__file__, spec, args.timeout))
            results = {impl: combine_rounds(impl_runs) for impl, impl_runs in runs.items()}
            peer, floor = results.get('peer'), results.get('floor')
            for impl, r in results.items():
                if 'error' in r:
                    row = f'| {batch} | {segments} | {impl} | {r["error"]} | | | | | |'
                else:
                    row = (f'| {batch} | {segments} | {impl} | {r["time_s"]:.3f} s | '
                           f'{r["peak_bytes"] / 2**30:.2f} GiB | '
                           f'{ratio(r, peer, "time_s")} | {ratio(r, peer, "peak_bytes")} | '
                           f'{ratio(r, floor, "time_s")} | {ratio(r, floor, "peak_bytes")} |')
                    process_rows.append(
                        f'| {batch} | {segments} | {impl} | {r["process_bytes"] / 2**30:.2f} GiB | '
                        f'{ratio(r, peer, "process_bytes")} | {ratio(r, floor, "process_bytes")} |')
                    phase_rows.append(f'| {batch} | {segments} | {impl} | ' + ' | '.join(
                        f'{r["phases"][p]:.3f} s' for p in PHASES) + ' |')
                print(row, flush=True)
                rows.append(row)
    tables = (f'Process memory (medians):\n\n{process_header}\n' + '\n'.join(process_rows) +
              f'\n\nPer phase (medians):\n\n{phase_header}\n' + '\n'.join(phase_rows) + '\n')
    print('\n' + tables, flush=True)
    if args.out:
        write_section(args.out, args.model,
                      f'# Benchmark: one {TITLES[args.model]} R50 training step ({args.device}, '
                      f'{args.size}² crops)\n\n'
                      f'Command: `python tools/benchmark_train_step.py {" ".join(sys.argv[1:])}`'
                      f'  \nMachine: {machine_description(args.device)}  \n'
                      f'Date: {time.strftime("%Y-%m-%d")}\n\n'
                      f'{legend_markdown(args.model)}\n\n{header}\n' + '\n'.join(rows) +
                      '\n\n' + tables)


if __name__ == '__main__':
    main()
