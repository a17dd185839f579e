#!/usr/bin/env python3
"""Compile, link and load the CUDA kernels of csrc/ without a GPU.

A broken ``.cu`` file is otherwise only noticed on a GPU machine. This script

1. creates (once; later runs reuse it) a virtual environment with a CUDA build of torch
   (default ``.venv-cuda`` beside this repository's ``.venv``, ``torch==2.14.1``), ninja and
   setuptools;
2. re-runs itself inside it and JIT-builds every ``csrc`` source, ``.cu`` included, with
   ``torch.utils.cpp_extension.load`` and nvcc (``CUDA_HOME``, default ``/usr/local/cuda``) for
   ``TORCH_CUDA_ARCH_LIST`` (default 9.0); the CUDA library headers that ``/usr/local/cuda``
   lacks come from the pip wheels' ``nvidia/cu13/include``. Builds are incremental
   (``build/cuda_check``);
3. loads the library, checks that CUDA kernels are registered, and runs its CPU kernels against
   the pure-PyTorch references.

Prints one ``CUDA BUILD CHECK: PASSED`` / ``FAILED`` line; exits non-zero on failure.

    python tools/check_cuda_build.py [--venv DIR] [--torch VERSION] [--arch LIST]
"""
import argparse
import glob
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS = ('sigmoid_focal_dice_loss', 'sigmoid_focal_dice_loss_backward', 'pairwise_mask_costs',
       'point_sample', 'point_sample_backward')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--venv', default=os.path.join(ROOT, '.venv-cuda'))
    parser.add_argument('--torch', default='2.14.1', help='CUDA build of torch to compile against')
    parser.add_argument('--arch', default=os.environ.get('TORCH_CUDA_ARCH_LIST', '9.0'))
    parser.add_argument('--verbose', action='store_true', help='show the compiler commands and '
                        'warnings')
    parser.add_argument('--inner', action='store_true', help=argparse.SUPPRESS)
    return parser.parse_args()


def ensure_venv(venv: str, torch_version: str) -> str:
    python = os.path.join(venv, 'bin', 'python')
    probe = ('import ninja, numpy, setuptools, torch; '
             f'assert torch.__version__.split("+")[0] == "{torch_version}", torch.__version__; '
             'assert torch.version.cuda, "CPU-only torch"')
    if os.path.exists(python) and subprocess.run([python, '-c', probe],
                                                 capture_output=True).returncode == 0:
        return python
    print(f'creating {venv} with torch=={torch_version} (a CUDA build, several GB)', flush=True)
    subprocess.run([sys.executable, '-m', 'venv', venv], check=True)
    # setuptools < 82 still ships pkg_resources; torch declares >= 77.
    subprocess.run([python, '-m', 'pip', 'install', '-q', f'torch=={torch_version}', 'ninja',
                    'numpy', 'setuptools>=77,<82'], check=True)
    subprocess.run([python, '-c', probe], check=True)
    return python


def build_and_load(arch: str, verbose: bool) -> None:
    import torch
    from torch.utils import cpp_extension

    os.environ['TORCH_CUDA_ARCH_LIST'] = arch
    if cpp_extension.CUDA_HOME is None:
        raise RuntimeError('no CUDA toolkit found: set CUDA_HOME (e.g. /usr/local/cuda)')
    sources = sorted(
        glob.glob(os.path.join(ROOT, 'csrc', '**', '*.cpp'), recursive=True) +
        glob.glob(os.path.join(ROOT, 'csrc', 'ops', 'cuda', '*.cu')))
    # /usr/local/cuda has the compiler and runtime headers but not cuSPARSE & co., which
    # ATen/cuda/CUDAContext.h includes; the CUDA build of torch brings them as wheels.
    wheel_include = os.path.join(os.path.dirname(torch.__file__), '..', 'nvidia', 'cu13', 'include')
    build_dir = os.path.join(ROOT, 'build', 'cuda_check')
    os.makedirs(build_dir, exist_ok=True)
    cpp_extension.load(
        name='mmseg_maskformer_cuda_check',
        sources=sources,
        extra_cflags=['-O2', '-DWITH_CUDA'],
        # torch >= 2.14 headers need C++20 (the kernels themselves are C++17).
        extra_cuda_cflags=['-O2', '-DWITH_CUDA', '-std=c++20'],
        extra_include_paths=[os.path.abspath(wheel_include)],
        build_directory=build_dir,
        is_python_module=False,
        verbose=verbose)

    missing = [op for op in OPS if not torch._C._dispatch_has_kernel_for_dispatch_key(
        f'mmseg_maskformer::{op}', 'CUDA')]
    if missing:
        raise RuntimeError(f'no CUDA kernel registered for {missing}')
    smoke_test_cpu_kernels()


def smoke_test_cpu_kernels() -> None:
    """The library's CPU kernels against the references (the GPU ones cannot run here)."""
    import torch
    sys.path.insert(0, ROOT)
    # The freshly built library already holds the mmseg_maskformer namespace.
    os.environ['MMSEG_MASKFORMER_NO_EXTENSION'] = '1'
    from mmseg_maskformer.ops import reference

    ops = torch.ops.mmseg_maskformer
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 9, 11, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.rand(4, 20, 23, generator=g) > 0.5
    focal, dice, sums = ops.sigmoid_focal_dice_loss(logits, targets, 0.25, 2.0, 1.0)
    ref_focal, ref_dice = reference.sigmoid_focal_dice_loss(logits, targets)
    torch.testing.assert_close((focal, dice), (ref_focal, ref_dice))
    ones = torch.ones_like(focal)
    grad = ops.sigmoid_focal_dice_loss_backward(ones, ones, logits, targets, sums, 0.25, 2.0, 1.0)
    ref_grad, = torch.autograd.grad((ref_focal + ref_dice).sum(), logits)
    torch.testing.assert_close(grad, ref_grad)
    costs = ops.pairwise_mask_costs(logits.detach(), targets, 0.25, 2.0, 1.0)
    torch.testing.assert_close(costs, reference.pairwise_mask_costs(logits.detach(), targets))
    inputs = torch.randn(2, 3, 7, 5, generator=g, dtype=torch.float64)
    points = torch.rand(2, 6, 2, generator=g, dtype=torch.float64)
    torch.testing.assert_close(ops.point_sample(inputs, points, False),
                               reference.point_sample(inputs, points))


def main() -> int:
    args = parse_args()
    start = time.monotonic()
    try:
        if args.inner:
            build_and_load(args.arch, args.verbose)
            return 0
        os.environ.setdefault('CUDA_HOME', '/usr/local/cuda')
        python = ensure_venv(args.venv, args.torch)
        result = subprocess.run([python, os.path.abspath(__file__), '--inner', '--arch', args.arch] +
                                (['--verbose'] if args.verbose else []))
        ok = result.returncode == 0
        reason = '' if ok else f' (build/load/smoke test exited {result.returncode}, see above)'
    except Exception as exc:  # reported in the one status line below
        if args.inner:
            print(f'{type(exc).__name__}: {exc}', file=sys.stderr)
            return 1
        ok, reason = False, f' ({type(exc).__name__}: {exc})'
    elapsed = f'{time.monotonic() - start:.0f} s'
    if ok:
        print(f'CUDA BUILD CHECK: PASSED: csrc/ compiled with nvcc for TORCH_CUDA_ARCH_LIST='
              f'{args.arch}, linked and loaded against torch {args.torch}, CUDA kernels '
              f'registered, CPU kernels match the references ({elapsed})', flush=True)
        return 0
    print(f'CUDA BUILD CHECK: FAILED{reason} ({elapsed})', flush=True)
    return 1


if __name__ == '__main__':
    sys.exit(main())
