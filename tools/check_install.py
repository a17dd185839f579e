#!/usr/bin/env python3
"""Install the package by each public route into a fresh environment that has only torch, and run
the ops there (compiled on first use), comparing them with the ahead-of-time build of this checkout.

Routes, in one fresh virtual environment (``python -m venv`` + the torch version of the running
interpreter from pip's index or cache), uninstalled between routes:

  sdist      ``python -m build --sdist`` of this checkout, then ``pip install dist/*.tar.gz``
  wheel      ``pip install .`` (pip builds a wheel in an isolated environment without torch)
  editable   ``pip install -e .``
  mim        ``mim install -e .`` (openmim installed with ``--no-deps`` plus its run-time
             requirements: its ``opendatalab`` dependency pulls a large download client that mim's
             install, train, test, run and search commands do not use)

After each route a fresh process runs :data:`PROBE` (a few ops at fixed seeds, their results saved)
with an empty ops cache for the first route and the shared cache afterwards (so the first route
shows the compile time and the others the cache), and the results must equal those of this
interpreter's build. Prints one table and ``INSTALL CHECK: PASSED`` / ``FAILED``.

    python tools/check_install.py [--routes sdist wheel editable mim] [--work-dir DIR]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUTES = ('sdist', 'wheel', 'editable', 'mim')
# openmim 0.3.9's run-time requirements besides opendatalab (see the docstring); mim imports
# pkg_resources, which setuptools 82 removed.
MIM_REQUIREMENTS = ['openmim==0.3.9', 'Click', 'colorama', 'model-index', 'rich', 'tabulate',
                    'requests', 'pandas', 'setuptools<82']

PROBE = '''
import sys, time, torch
start = time.perf_counter()
from mmseg_maskformer import ops
assert ops.extension_available(), ops._extension.load_error()
loaded = time.perf_counter() - start
g = torch.Generator().manual_seed(0)
logits, targets = 3 * torch.randn(4, 9, 11, generator=g), torch.rand(4, 30, 40, generator=g) > 0.5
cls_logits, mask_logits = torch.randn(5, 7, generator=g), 4 * torch.randn(5, 9, 11, generator=g)
results = dict(
    loss=ops.fused.sigmoid_focal_dice_loss(logits, targets),
    costs=ops.fused.pairwise_mask_costs(logits, targets),
    labels=ops.fused.semantic_labels(cls_logits, mask_logits, (36, 44), (50, 61),
                                     crop=(0, 0, 33, 40), flip='horizontal', return_scores=True),
    file=ops.__file__, load_seconds=loaded)
torch.save(results, sys.argv[1])
'''


def run(cmd, env=None, cwd=ROOT, check=True):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f'{" ".join(map(str, cmd))} exited {result.returncode}:\n'
                           f'{result.stdout[-3000:]}{result.stderr[-3000:]}')
    return result


def probe(python, out, env, cwd):
    result = run([python, '-c', PROBE, out], env=env, cwd=cwd)
    import torch
    return torch.load(out, weights_only=False), result.stderr


def equal(got, want):
    import torch
    if isinstance(got, (tuple, list)):
        return all(equal(g, w) for g, w in zip(got, want))
    return torch.equal(got, want)


CONFIG = 'maskformer_r18-tiny_1xb8-2k_shapes-128x128.py'


def tiny_options(data_root, iters=2):
    """--cfg-options for a short run on a small Shapes copy (no dataloader workers)."""
    options = [f'{loader}.{key}' for loader in ('train_dataloader', 'val_dataloader',
                                                'test_dataloader')
               for key in (f'dataset.data_root={data_root}', 'num_workers=0',
                           'persistent_workers=False')]
    return options + ['train_dataloader.batch_size=2', f'train_cfg.max_iters={iters}',
                      f'train_cfg.val_interval={iters}', f'default_hooks.checkpoint.interval={iters}',
                      f'param_scheduler.1.end={iters}', 'param_scheduler.0.end=1',
                      'param_scheduler.1.begin=1']


def check_mim(work, env):
    """mim search / run / train / test against a regular (non-editable) install of this checkout
    in a folder on PYTHONPATH, from a folder outside the checkout, with this interpreter's mim and
    OpenMMLab stack. Returns the rows of the table."""
    target, cwd = os.path.join(work, 'mim-install'), os.path.join(work, 'mim-cwd')
    os.makedirs(cwd, exist_ok=True)
    run([sys.executable, '-m', 'pip', '-q', 'install', '--no-deps', '--target', target, ROOT],
        env=env, cwd=cwd)
    mim = [os.path.join(os.path.dirname(sys.executable), 'mim')]
    mim_env = dict(env, PYTHONPATH=target, OMP_NUM_THREADS='1')
    data, work_dir = os.path.join(cwd, 'shapes'), os.path.join(cwd, 'train')
    config = os.path.join(target, 'mmseg_maskformer', '.mim', 'configs', 'maskformer', CONFIG)
    steps = [
        ('mim search mmseg_maskformer', ['search', 'mmseg_maskformer'],
         'maskformer_r50-d32_8xb2-160k_ade20k-512x512'),
        ('mim run mmseg_maskformer make_shapes_dataset',
         ['run', 'mmseg_maskformer', 'make_shapes_dataset', '--out', data, '--num-train', '8',
          '--num-val', '4', '--size', '64'], ''),
        (f'mim train mmseg_maskformer {CONFIG}',
         ['train', 'mmseg_maskformer', CONFIG, '--work-dir', work_dir, '--cfg-options'] +
         tiny_options(data), ''),
        (f'mim test mmseg_maskformer {CONFIG}',
         ['test', 'mmseg_maskformer', CONFIG, '--checkpoint',
          os.path.join(work_dir, 'iter_2.pth'), '--cfg-options'] + tiny_options(data), 'mIoU'),
        ('mim run mmseg_maskformer infer',
         ['run', 'mmseg_maskformer', 'infer', config, os.path.join(work_dir, 'iter_2.pth'),
          os.path.join(data, 'img_dir', 'val'), '--out-dir', os.path.join(cwd, 'infer')], ''),
    ]
    rows = []
    for label, args, expected in steps:
        start = time.perf_counter()
        result = run(mim + args, env=mim_env, cwd=cwd, check=False)
        output = result.stdout + result.stderr
        ok = result.returncode == 0 and expected in output
        if ok and args[:2] == ['run', 'mmseg_maskformer'] and args[2] == 'infer':
            ok = len(os.listdir(os.path.join(cwd, 'infer', 'labels'))) == 4
        rows.append((label, 'pass' if ok else f'FAIL: exit {result.returncode}: '
                     f'{output[-300:]!r}', f'{time.perf_counter() - start:.0f} s', ''))
        print(f'  {label}: {rows[-1][1]}', flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--routes', nargs='*', default=list(ROUTES), choices=ROUTES)
    parser.add_argument('--skip-mim-commands', action='store_true',
                        help='skip mim search / run / train / test')
    parser.add_argument('--work-dir', help='default: a temporary folder, removed afterwards')
    args = parser.parse_args(argv)
    import torch

    work = args.work_dir or tempfile.mkdtemp(prefix='mmseg-maskformer-install-')
    os.makedirs(work, exist_ok=True)
    venv = os.path.join(work, 'venv')
    python = os.path.join(venv, 'bin', 'python')
    pip = [python, '-m', 'pip', '-q']
    cache = os.path.join(work, 'ops-cache')
    # A clean environment: no PYTHONPATH, and a working directory outside the checkout.
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'MMSEG_MASKFORMER_NO_EXTENSION', 'VIRTUAL_ENV')}
    env['MMSEG_MASKFORMER_OPS_CACHE'] = cache
    want, _ = probe(sys.executable, os.path.join(work, 'aot.pt'), dict(env, PYTHONPATH=ROOT),
                    work)
    rows, ok = [], True
    start = time.perf_counter()
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, '-m', 'venv', venv])
    run(pip + ['install', f'torch=={torch.__version__.split("+")[0]}'], env=env)
    rows.append(('fresh venv + torch', 'ok', f'{time.perf_counter() - start:.0f} s', ''))
    for route in args.routes:
        start = time.perf_counter()
        try:
            if route == 'sdist':
                dist = os.path.join(work, 'dist')
                run(pip + ['install', 'build'], env=env)
                run([python, '-m', 'build', '--sdist', '--outdir', dist, ROOT], env=env)
                sdist = next(os.path.join(dist, f) for f in os.listdir(dist))
                run(pip + ['install', sdist], env=env, cwd=work)
            elif route == 'wheel':
                run(pip + ['install', ROOT], env=env, cwd=work)
            elif route == 'editable':
                run(pip + ['install', '-e', ROOT], env=env, cwd=work)
            else:
                run(pip + ['install', '--no-deps'] + MIM_REQUIREMENTS[:1], env=env)
                run(pip + ['install'] + MIM_REQUIREMENTS[1:], env=env)
                run([os.path.join(venv, 'bin', 'mim'), 'install', '-e', ROOT], env=env, cwd=work)
            installed = time.perf_counter() - start
            got, stderr = probe(python, os.path.join(work, f'{route}.pt'), env, work)
            compiled = [line for line in stderr.splitlines() if 'compiling the C++' in line]
            same = all(equal(got[key], want[key]) for key in ('loss', 'costs', 'labels'))
            ok &= same
            rows.append((route, 'pass' if same else 'FAIL: results differ from the AOT build',
                         f'install {installed:.0f} s, first op {got["load_seconds"]:.0f} s',
                         (compiled[0].split(' ... ')[-1] if compiled else 'cache reused') +
                         f'; {os.path.relpath(got["file"], venv) if got["file"].startswith(venv) else got["file"]}'))
        except Exception as exc:  # one failed route must not hide the others
            ok = False
            rows.append((route, f'FAIL: {str(exc)[:400]}', f'{time.perf_counter() - start:.0f} s',
                         ''))
        run(pip + ['uninstall', '-y', 'mmseg-maskformer'], env=env, check=False)
        print(f'  {route}: {rows[-1][1]}', flush=True)
    if not args.skip_mim_commands:
        try:
            rows += check_mim(work, env)
        except Exception as exc:
            rows.append(('mim commands', f'FAIL: {str(exc)[:400]}', '', ''))
        ok &= all(row[1] == 'pass' for row in rows[-5:])
    print('| route | result | time | ops |\n|---|---|---|---|')
    for row in rows:
        print('| ' + ' | '.join(row) + ' |')
    print(f'INSTALL CHECK: {"PASSED" if ok else "FAILED"}')
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
