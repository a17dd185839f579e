#!/usr/bin/env python3
"""One command on a GPU machine: build the ops, test them, compare devices, benchmark, summarise.

Needs torch (a CUDA build for ``--device cuda``), ninja, a CUDA toolkit and pytest; no OpenMMLab
package and no network. Steps (each can be skipped):

1. ``build``: ``python setup.py build_ext --inplace`` (the project's build flags), for the local
   GPU's compute capability only (``TORCH_CUDA_ARCH_LIST`` overrides it);
2. ``tests``: ``pytest tests/ops`` with ``MMSEG_MASKFORMER_REQUIRE_EXTENSION=1`` (CPU and, on a
   GPU, CUDA cases);
3. ``compare``: every op (:data:`CASES`) at real sizes (128²→512² and 256²→1024×2048 targets,
   N up to 400): the fused op on the device against the pure-PyTorch reference in float64 on the
   same device, and, on a GPU, against the fused CPU kernels (values and gradients);
4. ``benchmark``: ``tools/benchmark_ops.py --device DEVICE`` (reference vs fused: time, peak
   memory, DRAM-floor ratio on a GPU).

Prints one summary table (per check: pass/fail, max error against its tolerance, time), writes it
with the benchmark table to ``--out`` (markdown) and exits non-zero if any check failed.

    python tools/gpu_check.py [--device cuda|cpu] [--quick] [--skip-build] [--skip-tests]
                              [--skip-benchmark] [--tests PATH] [--out FILE]
"""
import argparse
import os
import subprocess
import sys
import time
import traceback

import torch

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
sys.path.insert(0, ROOT)  # the package, when the tool runs from a checkout without an install
from mmseg_maskformer.ops.build_config import build_with_setup_py  # noqa: E402
from mmseg_maskformer.utils.benchmarking import machine_description  # noqa: E402

# Fused float32 against the float64 reference: relative 1e-4 per element, as tests/ops, plus an
# absolute floor of 1e-5 of the largest reference magnitude (gradients of near-zero pixels).
RTOL = 1e-4
ATOL_SCALE = 1e-5
POINTS = 12544


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda', choices=('cuda', 'cpu'))
    parser.add_argument('--quick', action='store_true',
                        help='small sizes and benchmark_ops.py --quick (for CI on a CPU)')
    parser.add_argument('--skip-build', action='store_true', help='use the extension as built')
    parser.add_argument('--skip-tests', action='store_true')
    parser.add_argument('--skip-benchmark', action='store_true')
    parser.add_argument('--tests', default=os.path.join(ROOT, 'tests', 'ops'),
                        help='what pytest runs (default tests/ops)')
    parser.add_argument('--out', help='results file (markdown); default '
                        'benchmarks/GPU_CHECK_<device>.md')
    return parser.parse_args()


# --------------------------------------------------------------------------------------------
# the op cases: each returns {output name: tensor} for one implementation (module of ops)


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


def _dense_inputs(num_masks, low, high):
    """Smooth (N, h, w) logits (spatially correlated, as a network makes them) and binary
    (N, H, W) uint8 targets with a random number of blobs."""
    g = _generator()
    coarse = 4 * torch.randn(num_masks, 1, max(low[0] // 8, 1), max(low[1] // 8, 1), generator=g)
    logits = torch.nn.functional.interpolate(coarse, size=low, mode='bilinear')[:, 0]
    field = torch.randn(num_masks, 1, 16, 16, generator=g)
    targets = torch.nn.functional.interpolate(field, size=high, mode='bilinear')[:, 0] > 0.5
    return logits, targets.to(torch.uint8)


def loss_case(ops, device, dtype, num_masks, low, high):
    logits, targets = _dense_inputs(num_masks, low, high)
    logits = logits.to(device, dtype).requires_grad_()
    focal, dice = ops.sigmoid_focal_dice_loss(logits, targets.to(device))
    grad, = torch.autograd.grad(20 * focal.sum() + dice.sum(), logits)
    return dict(focal=focal, dice=dice, grad_logits=grad)


# Mask2Former's mask loss and cost: the focal form with γ = 0 and no α weighting (BCE), weights 5/5.
BCE = dict(alpha=-1.0, gamma=0.0)


def point_loss_case(ops, device, dtype, num_masks, num_points, bce=False):
    g = _generator()
    logits = (4 * torch.randn(num_masks, num_points, generator=g)).to(device, dtype)
    targets = torch.rand(num_masks, num_points, generator=g).to(device)  # soft targets
    logits.requires_grad_()
    focal, dice = ops.sigmoid_focal_dice_loss(logits, targets, **(BCE if bce else {}))
    weight = 5 if bce else 20
    grad, = torch.autograd.grad(weight * focal.sum() + dice.sum(), logits)
    return dict(focal=focal, dice=dice, grad_logits=grad)


def point_sampled_loss_case(ops, device, dtype, num_masks, low, num_points):
    """Mask2Former's mask losses: BCE + dice (weights 5 / 5) of logits sampled at points."""
    g = _generator()
    logits = (4 * torch.randn(num_masks, *low, generator=g)).to(device, dtype).requires_grad_()
    points = torch.rand(num_masks, num_points, 2, generator=g).to(device, dtype)
    targets = torch.rand(num_masks, num_points, generator=g).to(device)
    focal, dice = ops.point_sampled_focal_dice_loss(logits, points, targets, weights=(5.0, 5.0),
                                                    **BCE)
    grad, = torch.autograd.grad(5 * focal.sum() + 5 * dice.sum(), logits)
    return dict(focal=focal, dice=dice, grad_logits=grad)


def cost_case(ops, device, dtype, queries, segments, low, high):
    logits, _ = _dense_inputs(queries, low, low)
    _, targets = _dense_inputs(segments, low, high)
    focal, dice = ops.pairwise_mask_costs(logits.to(device, dtype), targets.to(device))
    return dict(focal_cost=focal, dice_cost=dice)


def point_cost_case(ops, device, dtype, queries, segments, num_points, bce=False):
    g = _generator()
    logits = (4 * torch.randn(queries, num_points, generator=g)).to(device, dtype)
    targets = (torch.rand(segments, num_points, generator=g) > 0.5).to(device)
    focal, dice = ops.pairwise_mask_costs(logits, targets, **(BCE if bce else {}))
    return dict(focal_cost=focal, dice_cost=dice)


def point_sample_case(ops, device, dtype, num_masks, low, num_points):
    logits, _ = _dense_inputs(num_masks, low, low)
    inputs = logits[:, None].to(device, dtype).requires_grad_()
    points = torch.rand(num_masks, num_points, 2, generator=_generator(1)).to(device, dtype)
    sampled = ops.point_sample(inputs, points)
    weights = torch.randn(sampled.shape, generator=_generator(2)).to(device, dtype)
    grad, = torch.autograd.grad((sampled * weights).sum(), inputs)
    return dict(sampled=sampled, grad_inputs=grad)


def uncertain_points_case(ops, device, dtype, num_masks, low, num_points):
    """The uniform draws must be equal; the importance-sampled points are compared through their
    uncertainty (-|logit|, sorted), since float rounding may swap near-equal candidates."""
    from mmseg_maskformer.ops import reference

    logits, _ = _dense_inputs(num_masks, low, low)
    logits = logits.to(device)
    # Random draws come from a generator of the device itself: compared on one device only.
    generator = torch.Generator(device=device).manual_seed(0)
    points = ops.sample_uncertain_points(logits.to(dtype), num_points, generator=generator)
    num_uncertain = int(0.75 * num_points)  # the default importance_sample_ratio
    chosen = reference.point_sample(logits.double()[:, None], points[:, :num_uncertain].double())
    uncertainty = (-chosen[:, 0].abs()).sort(dim=1, descending=True).values
    return dict(uniform_points=points[:, num_uncertain:], importance_uncertainty=uncertainty)


def select_uncertain_case(ops, device, dtype, num_masks, num_candidates, num_uncertain):
    """Candidates on a line, so that each chosen point names its candidate; compared through the
    sorted |logit| of the chosen ones (the op returns them in no particular order, and equal
    |logit| may be chosen either way)."""
    logits = 4 * torch.randn(num_masks, num_candidates, generator=_generator(), dtype=torch.float64)
    logits = logits.to(device=device, dtype=dtype)
    x = (torch.arange(num_candidates, dtype=torch.float64) + 0.5) / num_candidates
    candidates = torch.stack([x, torch.full_like(x, 0.5)], dim=-1).float().to(device)
    chosen = ops.select_uncertain_points(logits, candidates.expand(num_masks, -1, -1),
                                         num_uncertain)
    index = (chosen[..., 0].double() * num_candidates - 0.5).round().long()
    return dict(chosen_uncertainty=logits.gather(1, index).abs().sort(dim=1).values)


def _inference_inputs(queries, classes, low):
    logits, _ = _dense_inputs(queries, low, low)
    cls_logits = 3 * torch.randn(queries, classes + 1, generator=_generator(3))
    return cls_logits, logits


def _chain_scores_float64(cls_logits, mask_logits, input_size, crop, output_size, flip):
    """The semantic chain's (K, H, W) scores in float64 with the reference ops."""
    from mmseg_maskformer.ops import reference

    scores = reference.semantic_scores(cls_logits[None].double(), mask_logits[None].double(),
                                       input_size)
    top, left, height, width = crop
    scores = scores[:, :, top:top + height, left:left + width]
    if flip:
        scores = scores.flip(-1)
    return torch.nn.functional.interpolate(scores, size=output_size, mode='bilinear')[0]


def semantic_scores_case(ops, device, dtype, queries, classes, low, size):
    cls_logits, mask_logits = _inference_inputs(queries, classes, low)
    return dict(scores=ops.semantic_scores(cls_logits[None].to(device, dtype),
                                           mask_logits[None].to(device, dtype), size))


def semantic_labels_case(ops, device, dtype, queries, classes, low, input_size, crop,
                         output_size):
    """Labels compared through the float64 score of the chosen class: near-ties may go either
    way, but a wrong label scores lower than the best."""
    cls_logits, mask_logits = _inference_inputs(queries, classes, low)
    cls_logits, mask_logits = cls_logits.to(device), mask_logits.to(device)
    labels, best = ops.semantic_labels(cls_logits.to(dtype), mask_logits.to(dtype), input_size,
                                       output_size, crop, 'horizontal', return_scores=True)
    exact = _chain_scores_float64(cls_logits, mask_logits, input_size, crop, output_size, True)
    return dict(best_score=best, float64_score_of_label=exact.gather(0, labels[None])[0])


def panoptic_assignment_case(ops, device, dtype, queries, low, input_size, crop, output_size):
    """The owner compared through the float64 score·σ it wins with; counts as they are."""
    _, mask_logits = _inference_inputs(queries, 1, low)
    mask_logits = mask_logits.to(device)
    scores = torch.linspace(0.8, 1.0, queries, dtype=torch.float64).to(device)
    owner, won, area = ops.panoptic_assignment(mask_logits.to(dtype), scores.to(dtype), input_size,
                                               output_size, crop, 'horizontal')
    logits = torch.nn.functional.interpolate(mask_logits[None].double(), size=input_size,
                                             mode='bilinear')
    top, left, height, width = crop
    logits = logits[:, :, top:top + height, left:left + width].flip(-1)
    probs = torch.nn.functional.interpolate(logits, size=output_size, mode='bilinear')[0].sigmoid()
    return dict(float64_value_of_owner=(scores[:, None, None] * probs).gather(0, owner[None])[0],
                pixels_won=won.double(), sigmoid_area=area.double())


# name -> (builder, full-size arguments, quick arguments, compare with the CPU kernels). The one
# list of ops this script checks: extend it when an op is added.
CASES = {
    'sigmoid_focal_dice_loss dense 128²→512²':
        (loss_case, (400, (128, 128), (512, 512)), (8, (32, 32), (128, 128)), True),
    'sigmoid_focal_dice_loss dense 256²→1024×2048':
        (loss_case, (100, (256, 256), (1024, 2048)), (4, (32, 64), (128, 256)), True),
    'sigmoid_focal_dice_loss points': (point_loss_case, (400, POINTS), (8, 500), True),
    'pairwise_mask_costs dense 128² (512² targets)':
        (cost_case, (100, 60, (128, 128), (512, 512)), (10, 6, (32, 32), (128, 128)), True),
    'pairwise_mask_costs dense 256² (1024×2048 targets)':
        (cost_case, (100, 100, (256, 256), (1024, 2048)), (10, 6, (32, 64), (128, 256)), True),
    'pairwise_mask_costs points': (point_cost_case, (100, 400, POINTS), (10, 8, 500), True),
    'sigmoid_focal_dice_loss points, BCE form (Mask2Former)':
        (point_loss_case, (400, POINTS, True), (8, 500, True), True),
    'point_sampled_focal_dice_loss 128², BCE form (Mask2Former)':
        (point_sampled_loss_case, (400, (128, 128), POINTS), (8, (32, 32), 500), True),
    'pairwise_mask_costs points, BCE form (Mask2Former)':
        (point_cost_case, (200, 100, POINTS, True), (10, 8, 500, True), True),
    'point_sample': (point_sample_case, (400, (128, 128), POINTS), (8, (32, 32), 500), True),
    'select_uncertain_points': (select_uncertain_case, (400, 3 * POINTS, 3 * POINTS // 4),
                                (8, 1500, 375), True),
    'sample_uncertain_points':
        (uncertain_points_case, (400, (128, 128), POINTS), (8, (32, 32), 500), False),
    'semantic_scores 128²→512², K=150':
        (semantic_scores_case, (100, 150, (128, 128), (512, 512)),
         (10, 15, (16, 16), (64, 64)), True),
    'semantic_labels 256×512→1024×2048 (cropped, flipped)→1000×1900, K=150':
        (semantic_labels_case, (100, 150, (256, 512), (1024, 2048), (0, 0, 1000, 2000),
                                (1000, 1900)),
         (10, 15, (16, 32), (64, 128), (0, 0, 60, 120), (90, 100)), True),
    'semantic_labels 128×171→512×683, K=847':
        (semantic_labels_case, (100, 847, (128, 171), (512, 683), (0, 0, 512, 683), (512, 683)),
         (10, 847, (8, 11), (32, 43), (0, 0, 32, 43), (32, 43)), True),
    'panoptic_assignment 256×512→1024×2048 (cropped, flipped)→1000×1900':
        (panoptic_assignment_case, (60, (256, 512), (1024, 2048), (0, 0, 1000, 2000),
                                    (1000, 1900)),
         (8, (16, 32), (64, 128), (0, 0, 60, 120), (90, 100)), True),
}


def case_label(name, quick):
    """The case's name, with the arguments of its builder instead of the full sizes in quick mode."""
    if not quick:
        return name
    builder, _, quick_args, _ = CASES[name]
    return f'{name.split()[0]} {builder.__name__}{quick_args}'


def max_error(got, expected):
    """(error, tolerance, ok) at the element nearest to or furthest over its tolerance."""
    got, expected = got.detach().double().cpu(), expected.detach().double().cpu()
    if got.shape != expected.shape:
        raise AssertionError(f'shape {tuple(got.shape)} != {tuple(expected.shape)}')
    if got.numel() == 0:
        return 0.0, 0.0, True
    diff = (got - expected).abs().flatten()
    allowed = (ATOL_SCALE * expected.abs().max() + RTOL * expected.abs()).flatten()
    worst = int((diff - allowed).nan_to_num(nan=float('inf')).argmax())
    ok = bool((diff <= allowed).all()) and bool(torch.isfinite(got).all())
    return diff[worst].item(), allowed[worst].item(), ok


def compare(name, got, expected, oracle):
    """One summary row per output: the error and tolerance of its worst element."""
    rows = []
    for key in got:
        err, tol, ok = max_error(got[key], expected[key])
        rows.append(dict(check=f'compare {name}: {key} vs {oracle}', ok=ok,
                         detail=f'worst err {err:.2e} (tol {tol:.2e})'))
    return rows


def _synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def run_comparisons(device, quick):
    from mmseg_maskformer.ops import fused, reference

    rows = []
    for name, (builder, full_args, quick_args, with_cpu) in CASES.items():
        args = quick_args if quick else full_args
        label = case_label(name, quick)
        start = time.perf_counter()
        try:
            got = builder(fused, device, torch.float32, *args)
            _synchronize(device)
            fused_s = time.perf_counter() - start
            # float64 for the reference, except where the draws depend on the dtype.
            ref_dtype = torch.float32 if builder is uncertain_points_case else torch.float64
            case_rows = compare(label, got, builder(reference, device, ref_dtype, *args),
                                f'reference {str(ref_dtype)[6:]} ({device.type})')
            if with_cpu and device.type != 'cpu':
                case_rows += compare(label, got, builder(fused, torch.device('cpu'),
                                                        torch.float32, *args),
                                     'fused CPU kernels')
            for row in case_rows:
                row['time'] = f'{fused_s * 1e3:.1f} ms fused (first call)'
            rows += case_rows
        except Exception as exc:  # one failed case must not hide the others
            traceback.print_exc()
            rows.append(dict(check=f'compare {label}', ok=False,
                             detail=f'{type(exc).__name__}: {str(exc)[:200]}'))
        rows[-1].setdefault('time', f'{time.perf_counter() - start:.1f} s')
        print(f'  {label}: {"ok" if all(r["ok"] for r in rows if label in r["check"]) else "FAIL"}',
              flush=True)
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    return rows


# --------------------------------------------------------------------------------------------
# steps


def step_build(device):
    env = dict(os.environ)
    env.pop('MMSEG_MASKFORMER_NO_EXTENSION', None)
    if device.type == 'cuda' and not env.get('TORCH_CUDA_ARCH_LIST'):
        env['TORCH_CUDA_ARCH_LIST'] = '{}.{}'.format(*torch.cuda.get_device_capability())
    build_with_setup_py(sys.executable, env, ['build_ext', '--inplace'], verbose=False)
    arch = env.get('TORCH_CUDA_ARCH_LIST', 'CPU only')
    return dict(check='build (setup.py build_ext --inplace)', ok=True, detail=f'arch {arch}')


def step_tests(tests):
    env = dict(os.environ, MMSEG_MASKFORMER_REQUIRE_EXTENSION='1',
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')])))
    result = subprocess.run([sys.executable, '-m', 'pytest', tests, '-q', '-p', 'no:cacheprovider'],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    sys.stdout.write(result.stdout[-3000:] + result.stderr[-2000:])
    summary = (result.stdout.strip().splitlines() or ['no output'])[-1].strip('= ')
    return dict(check=f'pytest {os.path.relpath(tests, ROOT)}', ok=result.returncode == 0,
                detail=summary)


def step_benchmark(device, quick):
    cmd = [sys.executable, os.path.join(TOOLS, 'benchmark_ops.py'), '--device', device.type]
    if quick:
        cmd += ['--quick', '--repeats', '1']
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')])))
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    table = '\n'.join(line for line in result.stdout.splitlines() if line.startswith('|'))
    sys.stdout.write(table + '\n' + result.stderr[-2000:])
    # A fused row that could not run (error text in the time column) fails the check.
    failed = [line for line in table.splitlines()[2:]
              if '| fused' in line and ' ms |' not in line]
    ok = result.returncode == 0 and bool(table) and not failed
    detail = f'{len(table.splitlines()) - 2} rows' + (f'; failed: {failed}' if failed else '')
    return dict(check=f'benchmark_ops.py --device {device.type}', ok=ok, detail=detail), table


def timed(rows, step, *args):
    start = time.perf_counter()
    try:
        result = step(*args)
    except Exception as exc:
        traceback.print_exc()
        result = dict(check=step.__name__.replace('step_', ''), ok=False,
                      detail=f'{type(exc).__name__}: {str(exc)[:200]}')
    row, extra = result if isinstance(result, tuple) else (result, None)
    row['time'] = f'{time.perf_counter() - start:.1f} s'
    rows.append(row)
    print(f'[gpu_check] {row["check"]}: {"PASS" if row["ok"] else "FAIL"} ({row["detail"]})',
          flush=True)
    return row['ok'], extra


def main():
    args = parse_args()
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        sys.exit('gpu_check: --device cuda needs a CUDA build of torch and a visible GPU '
                 f'(torch {torch.__version__}, CUDA {torch.version.cuda}); use --device cpu')
    out = args.out or os.path.join(ROOT, 'benchmarks', f'GPU_CHECK_{device.type}.md')
    start = time.perf_counter()
    rows, table = [], None
    built = True
    if not args.skip_build:
        built, _ = timed(rows, step_build, device)
    if built:
        if not args.skip_tests:
            timed(rows, step_tests, args.tests)
        print('[gpu_check] comparing ops at real sizes', flush=True)
        compare_start = time.perf_counter()
        compare_rows = run_comparisons(device, args.quick)
        rows += compare_rows
        print(f'[gpu_check] comparisons: {sum(r["ok"] for r in compare_rows)}/{len(compare_rows)} '
              f'pass ({time.perf_counter() - compare_start:.1f} s)', flush=True)
        if not args.skip_benchmark:
            _, table = timed(rows, step_benchmark, device, args.quick)

    passed = all(row['ok'] for row in rows)
    verdict = (f'GPU CHECK ({device.type}): {"PASSED" if passed else "FAILED"} — '
               f'{sum(r["ok"] for r in rows)}/{len(rows)} checks pass '
               f'({time.perf_counter() - start:.0f} s)')
    summary = ['| check | result | worst element: error (tolerance) / detail | time |',
               '|---|---|---|---|']
    summary += [f'| {r["check"]} | {"pass" if r["ok"] else "**FAIL**"} | {r["detail"]} | '
                f'{r["time"]} |' for r in rows]
    print('\n' + '\n'.join(summary) + '\n\n' + verdict, flush=True)
    with open(out, 'w') as f:
        f.write(f'# GPU check ({device.type})\n\n'
                f'Command: `python tools/gpu_check.py {" ".join(sys.argv[1:])}`  \n'
                f'Machine: {machine_description(device)}  \n'
                f'Date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}\n\n'
                f'**{verdict}**\n\n'
                f'Comparisons: fused float32 on the device against the pure-PyTorch reference in '
                f'float64 (same device) and, on a GPU, against the fused CPU kernels; an element '
                f'passes when |err| ≤ {ATOL_SCALE:g}·max|expected| + {RTOL:g}·|expected|.\n\n' +
                '\n'.join(summary) + '\n' +
                (f'\n## tools/benchmark_ops.py --device {device.type}\n\n{table}\n' if table
                 else ''))
    print(f'[gpu_check] results written to {out}', flush=True)
    return 0 if passed else 1


if __name__ == '__main__':
    sys.exit(main())
